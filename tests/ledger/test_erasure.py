"""Erasing a member: personal data gone, the number kept, the points forfeited to breakage as
ERASURE entries that settlement prices like expiry, the audit clean, and the member unusable."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import text

from services.gateway.app import listen
from services.identity.verifier import TokenVerifier
from services.ledger import erasure
from services.members import credentials
from services.members import service as members
from services.settlement import service as settlement
from shared import clock
from shared.database import Database
from shared.error_codes import UserErrorCode
from shared.errors import DomainError, Forbidden
from shared.ids import new_member_number
from tests.conftest import Gateway, member_token
from tests.e2e.conftest import run_cli
from tests.factories import (
    ADMIN,
    authorize,
    balance,
    earn,
    enroll,
    link,
    make_partner,
    redeem,
    unique,
    violations,
)
from tests.settlement.test_settlement import SETTLER

ERASE = """mutation($n: String!) { eraseMember(input: {memberNumber: $n}) {
  member { memberNumber } erasedAt forfeitedPoints userErrors { code field } } }"""


async def _scalar(db: Database, query: str, **params: object) -> object:
    async with db.sessions() as session:
        return (await session.execute(text(query), params)).scalar()


async def _rows(db: Database, query: str, **params: object) -> list[tuple[object, ...]]:
    async with db.sessions() as session:
        return [tuple(r) for r in (await session.execute(text(query), params)).all()]


async def test_erasure_forfeits_remaining_points_per_issuer_and_removes_personal_data(db: Database) -> None:
    cafe = await make_partner(db)
    airline = await make_partner(db, return_window_days=30)  # its points stay pending
    member = await enroll(db, cafe, ref=unique("ref"), email=f"{unique('m')}@example.org")
    await link(db, airline, member)
    await credentials.set_password(db, member.id, "a long enough password")
    assert (await earn(db, cafe, member.member_number, "100")).errors == []
    assert (await earn(db, airline, member.member_number, "50")).errors == []
    assert (await redeem(db, cafe, member.member_number, 30)).errors == []
    held = await authorize(db, cafe, member.member_number, 20)
    assert held.errors == []
    before = await balance(db, member.id)
    assert (before.available, before.pending, before.held) == (50, 50, 20)

    done = await erasure.erase_member(db, ADMIN, member.member_number)

    # 70 of the cafe's (the live hold released first) and 50 pending of the airline's.
    assert done.forfeited_points == 120
    assert done.forfeited_by_issuer == {cafe.id: 70, airline.id: 50}
    entries = await _rows(
        db,
        "SELECT partner_id, points FROM journal_entries WHERE member_id = :m AND kind = 'ERASURE'"
        " ORDER BY partner_id",
        m=member.id,
    )
    assert entries == sorted([(cafe.id, -70), (airline.id, -50)])
    breakage = await _rows(
        db,
        "SELECT issuing_partner_id, SUM(points) FROM lot_consumptions WHERE member_id = :m"
        " AND kind = 'ERASURE' GROUP BY 1 ORDER BY 1",
        m=member.id,
    )
    assert breakage == sorted([(cafe.id, 70), (airline.id, 50)])
    after = await balance(db, member.id)
    assert (after.available, after.pending, after.held) == (0, 0, 0)
    assert await _scalar(db, "SELECT balance FROM wallets WHERE member_id = :m", m=member.id) == 0
    assert await _scalar(db, "SELECT status FROM holds WHERE member_id = :m", m=member.id) == "VOIDED"
    assert await violations(db) == []

    row = await _rows(
        db,
        "SELECT member_number, email, password_hash, erased_at IS NOT NULL FROM members WHERE id = :m",
        m=member.id,
    )
    assert row == [(member.member_number, None, None, True)]  # the number stays as the key
    assert await _scalar(db, "SELECT count(*) FROM enrollments WHERE member_id = :m", m=member.id) == 0
    assert await credentials.authenticate(db, member.member_number, "a long enough password") is None

    again = await erasure.erase_member(db, ADMIN, member.member_number)
    assert again.already_erased and again.forfeited_points == 0 and again.erased_at == done.erased_at


async def test_an_erased_member_cannot_be_enrolled_linked_or_earn(db: Database) -> None:
    cafe = await make_partner(db)
    other = await make_partner(db)
    member = await enroll(db, cafe)
    assert (await earn(db, cafe, member.member_number, "10")).errors == []  # caches the member
    key = ("member", member.member_number, cafe.id)
    assert db.cache.get(key) is not None
    await erasure.erase_member(db, ADMIN, member.member_number)
    assert db.cache.get(key) is None  # the erasing process forgot at once

    for partner in (cafe, other):
        with pytest.raises(DomainError) as refused:
            await enroll(db, partner, member_number=member.member_number)
        assert refused.value.errors[0].code == UserErrorCode.MEMBER_NOT_FOUND
        earned = await earn(db, partner, member.member_number, "10")
        assert [e.code for e in earned.errors] == [UserErrorCode.MEMBER_NOT_FOUND]
    assert await _scalar(db, "SELECT count(*) FROM enrollments WHERE member_id = :m", m=member.id) == 0
    assert await members.find_member(db, cafe.principal, member.member_number) is None
    assert await violations(db) == []


async def test_an_erased_members_stale_cache_entry_still_earns_nothing(db: Database) -> None:
    """Even an entry a process had not forgotten yet cannot book points for an erased member."""
    cafe = await make_partner(db)
    member = await enroll(db, cafe)
    assert (await earn(db, cafe, member.member_number, "10")).errors == []
    key = ("member", member.member_number, cafe.id)
    cached = db.cache.get(key)
    await erasure.erase_member(db, ADMIN, member.member_number)
    db.cache.put(key, 60, cached)  # as if this process had not heard of the erasure
    earned = await earn(db, cafe, member.member_number, "10")
    assert [e.code for e in earned.errors] == [UserErrorCode.MEMBER_NOT_FOUND]
    db.cache.forget(key)
    assert await _scalar(db, "SELECT count(*) FROM lots WHERE member_id = :m", m=member.id) == 1


async def test_every_process_forgets_the_member_when_the_erasure_commits(
    db: Database, database_url: str
) -> None:
    other_process = Database(database_url, pool_size=2)  # another gateway's cache and listener
    listener, feed = await listen(other_process, TokenVerifier(other_process))
    try:
        assert listener.listening.is_set()
        cafe = await make_partner(db)
        member = await enroll(db, cafe)
        key = ("member", member.member_number, cafe.id)
        other_process.cache.put(key, 60, members.MemberAtPartner(member.id, True))
        untouched = ("member", "000000000000", cafe.id)
        other_process.cache.put(untouched, 60, members.MemberAtPartner(1, True))
        await erasure.erase_member(db, ADMIN, member.member_number)
        for _ in range(100):
            if other_process.cache.get(key) is None:
                break
            await asyncio.sleep(0.02)
        assert other_process.cache.get(key) is None
        assert other_process.cache.get(untouched) is not None
    finally:
        await feed.stop()
        await listener.stop()
        await other_process.dispose()


async def test_settlement_prices_an_erasure_like_an_expiry(db: Database) -> None:
    start = clock.now().replace(microsecond=0) - timedelta(days=3150)
    cafe = await make_partner(db, issue_price="0.010", breakage_share=Decimal("0.5"))
    shop = await make_partner(db, issue_price="0.020", breakage_share=Decimal("0.25"))
    member = await enroll(db, cafe)
    await link(db, shop, member)
    try:
        clock.set_clock(lambda: start + timedelta(hours=2))
        assert (await earn(db, cafe, member.member_number, "1000", occurred_at=start)).errors == []
        assert (await earn(db, shop, member.member_number, "400", occurred_at=start)).errors == []
        await erasure.erase_member(db, ADMIN, member.member_number)
        clock.set_clock(lambda: start + timedelta(days=2))
        run = await settlement.run_settlement(
            db, SETTLER, period_start=start, period_end=start + timedelta(days=1)
        )
    finally:
        clock.set_clock(None)
    breakage = {(x.partner_id, x.points, x.amount) for x in run.lines if x.kind == "BREAKAGE"}
    # The issuer's liability released at its issue price, the breakage share owed to the coalition.
    assert breakage == {
        (cafe.id, 1000, Decimal("-5.00")),  # 1000 x 0.010 x 0.5
        (None, 1000, Decimal("5.00")),
        (shop.id, 400, Decimal("-2.00")),  # 400 x 0.020 x 0.25
        (None, 400, Decimal("2.00")),
    }
    assert await violations(db) == []


async def test_only_admins_erase_and_each_erasure_is_audit_logged(
    db: Database, gateway: Gateway, admin_token: str
) -> None:
    cafe = await make_partner(db)
    member = await enroll(db, cafe)
    assert (await earn(db, cafe, member.member_number, "25")).errors == []
    with pytest.raises(Forbidden):
        await erasure.erase_member(db, cafe.principal, member.member_number)

    partner_token = await gateway.partner_token(cafe)
    refused = await gateway.gql(partner_token, ERASE, {"n": member.member_number})
    assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert await _scalar(db, "SELECT erased_at FROM members WHERE id = :m", m=member.id) is None

    unknown = await gateway.gql(admin_token, ERASE, {"n": new_member_number()})
    not_found = {"code": "MEMBER_NOT_FOUND", "field": "memberNumber"}
    assert unknown["data"]["eraseMember"]["userErrors"] == [not_found]
    malformed = await gateway.gql(admin_token, ERASE, {"n": "123"})
    assert malformed["data"]["eraseMember"]["userErrors"][0]["code"] == "INVALID_MEMBER_NUMBER"

    done = (await gateway.gql(admin_token, ERASE, {"n": member.member_number}))["data"]["eraseMember"]
    assert done["userErrors"] == [] and done["forfeitedPoints"] == 25
    assert done["member"]["memberNumber"] == member.member_number and done["erasedAt"]
    logged = await _rows(
        db,
        "SELECT action, details FROM admin_audit_log WHERE target = :t",
        t=f"Member:{member.member_number}",
    )
    assert len(logged) == 1 and logged[0][0] == "member.erase"
    assert logged[0][1]["forfeited_points"] == 25


async def test_the_cli_erases_a_member(db: Database, database_url: str) -> None:
    cafe = await make_partner(db)
    member = await enroll(db, cafe, email=f"{unique('m')}@example.org")
    assert (await earn(db, cafe, member.member_number, "40")).errors == []
    erased = await asyncio.to_thread(run_cli, database_url, "members", "erase", member.member_number)
    assert erased.returncode == 0, erased.stderr
    body = json.loads(erased.stdout)
    assert body["member_number"] == member.member_number and body["forfeited_points"] == 40
    assert await _scalar(db, "SELECT email FROM members WHERE id = :m", m=member.id) is None
    logged = await _scalar(
        db, "SELECT client_id FROM admin_audit_log WHERE target = :t", t=f"Member:{member.member_number}"
    )
    assert logged == "cli"
    bad = await asyncio.to_thread(run_cli, database_url, "members", "erase", "123")
    assert bad.returncode == 2 and "memberNumber" in bad.stdout
    assert await violations(db) == []


async def test_erasure_revokes_the_members_tokens_and_codes(
    db: Database, gateway: Gateway, admin_token: str
) -> None:
    cafe = await make_partner(db)
    member = await enroll(db, cafe)
    token = await member_token(db, member.id)
    me = "{ me { memberNumber } }"
    assert (await gateway.gql(token, me))["data"]["me"]["memberNumber"] == member.member_number
    code = await gateway.gql(token, "mutation { createSpendCode { code userErrors { code } } }")
    assert code["data"]["createSpendCode"]["code"]

    done = (await gateway.gql(admin_token, ERASE, {"n": member.member_number}))["data"]["eraseMember"]
    assert done["userErrors"] == []
    refused = await gateway.post(token, me)
    assert refused.status_code == 401, refused.text
    assert await _scalar(db, "SELECT count(*) FROM spend_codes WHERE member_id = :m", m=member.id) == 0
