"""The members' read contract: the views re-engagement reads instead of the members' tables."""

from __future__ import annotations

from services.members.views import MEMBER_DIRECTORY, MEMBER_LINKS, VIEWS
from tests.view_contract import columns, migrated_matches_owner

TZ = "timestamp with time zone"


async def test_member_directory_columns(db):
    assert await columns(db, MEMBER_DIRECTORY.name) == [
        ("member_id", "bigint"),
        ("member_number", "text"),
        ("email", "text"),
        ("created_at", TZ),
        ("erased_at", TZ),
    ]


async def test_member_links_columns(db):
    assert await columns(db, MEMBER_LINKS.name) == [
        ("member_id", "bigint"),
        ("partner_id", "bigint"),
        ("partner_customer_ref", "text"),
        ("linked_at", TZ),
    ]


async def test_the_migrated_views_are_the_ones_members_define(db):
    for view in VIEWS:
        assert await migrated_matches_owner(db, view), f"{view.name} changed without a migration"
