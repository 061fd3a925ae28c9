"""Enrolment: member numbers, linking an existing member, and races on the same customer."""

from __future__ import annotations

import asyncio

import pytest

from services.members import service as members
from shared.errors import DomainError
from shared.ids import is_valid_member_number
from tests.factories import ADMIN, enroll, make_partner, unique


async def test_new_members_get_luhn_checked_12_digit_numbers(db):
    cafe = await make_partner(db)
    numbers = {(await enroll(db, cafe)).member_number for _ in range(20)}
    assert len(numbers) == 20
    assert all(len(n) == 12 and is_valid_member_number(n) for n in numbers)


async def test_the_same_customer_enrolled_concurrently_is_one_member(db):
    cafe = await make_partner(db)
    ref = unique("c")
    views = await asyncio.gather(*[enroll(db, cafe, ref) for _ in range(10)])
    assert len({v.id for v in views}) == 1


async def test_linking_with_a_ref_that_belongs_to_someone_else_is_refused(db):
    cafe = await make_partner(db)
    first = await enroll(db, cafe, "shared-ref")
    second = await enroll(db, cafe)
    with pytest.raises(DomainError) as caught:
        await enroll(db, cafe, "shared-ref", member_number=second.member_number)
    assert caught.value.errors[0].code == "REF_ALREADY_ENROLLED"
    again = await enroll(db, cafe, "shared-ref", member_number=first.member_number)
    assert again.id == first.id


async def test_unknown_or_malformed_member_numbers_when_linking(db):
    cafe = await make_partner(db)
    with pytest.raises(DomainError) as caught:
        await enroll(db, cafe, member_number="100000000008")
    assert caught.value.errors[0].code == "MEMBER_NOT_FOUND"
    with pytest.raises(DomainError) as caught:
        await enroll(db, cafe, member_number="100000000009")
    assert caught.value.errors[0].code == "INVALID_MEMBER_NUMBER"


async def test_bad_email_and_overlong_ref(db):
    cafe = await make_partner(db)
    with pytest.raises(DomainError) as caught:
        await members.enroll_member(db, cafe.principal, partner_customer_ref="x" * 201, email="not-an-email")
    assert {e.field for e in caught.value.errors} == {"partnerCustomerRef", "email"}


async def test_admins_see_every_member_partners_only_theirs(db):
    cafe = await make_partner(db)
    bookshop = await make_partner(db)
    member = await enroll(db, cafe)
    assert (await members.find_member(db, ADMIN, member.member_number)).id == member.id
    assert await members.find_member(db, bookshop.principal, member.member_number) is None
