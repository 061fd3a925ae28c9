"""Activities: points for what members do beyond buying, booked like a purchase's (a lot issued by
the activity's owner), within limits and cooldowns that hold under concurrency, exactly once per
key; surveys' NPS; what erasure takes."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from decimal import Decimal

from services.engagement import activities
from services.engagement.activity_models import ActivityKind
from services.engagement.activity_records import nps_score
from services.ledger import erasure
from services.ledger import service as ledger
from services.partners import coalition
from services.settlement import service as settlement
from shared import clock, sql
from shared.errors import DomainError
from tests.engagement.activity_helpers import codes, make_activity, record, records_of
from tests.engagement.referral_helpers import member_principal
from tests.factories import ADMIN, balance, enroll, make_partner, outbox, redeem, unique, violations
from tests.settlement.test_settlement import SETTLER


async def _entry(db, entry_id: int) -> dict:
    async with sql.connection(db) as conn:
        row = await conn.fetchrow("SELECT * FROM journal_entries WHERE id = $1", entry_id)
        lot = await conn.fetchrow("SELECT * FROM lots WHERE earn_entry_id = $1", entry_id)
    return {"entry": dict(row), "lot": dict(lot)}


async def test_an_activity_earns_points_issued_by_its_partner_available_at_once(db) -> None:
    shop = await make_partner(db, return_window_days=14)  # a window for purchases, none for this
    member = await enroll(db, shop)
    review = await make_activity(db, shop, points=75)

    outcome = await record(db, shop, member.member_number, review, data={"reviewId": "r-1"})

    assert outcome.errors == []
    assert outcome.result["points"] == 75 and outcome.result["partner_id"] == shop.id
    assert (await balance(db, member.id)).available == 75
    booked = await _entry(db, outcome.result["transaction_id"])
    assert booked["entry"]["kind"] == "ACTIVITY" and booked["entry"]["partner_id"] == shop.id
    assert booked["entry"]["coalition_points"] == 0
    assert booked["entry"]["order_id"] == f"activity:{review.code}"
    assert booked["lot"]["issuing_partner_id"] == shop.id and booked["lot"]["activated_at"] is not None
    [kept] = await records_of(db, member.id)
    assert kept["data"] == {"reviewId": "r-1"} and kept["nps_score"] is None
    [event] = await outbox(db, member_id=member.id, types=("points.earned",))
    assert event["data"]["source"] == "ACTIVITY" and event["partner_ids"] == [shop.id]
    assert event["data"]["status"] == "AVAILABLE" and event["data"]["points"] == 75
    assert await violations(db) == []


async def _status(db, member, entry_id: int) -> str:
    """The transaction's status as the member's history shows it."""
    page = await ledger.transactions(db, member_principal(member), member.id, first=50, after=None)
    [found] = [t for _, t in page.items if t.id == entry_id]
    return str(found.status)


async def test_an_activitys_transaction_is_available_then_expired_like_an_earn(db) -> None:
    shop = await make_partner(db)
    member = await enroll(db, shop)
    review = await make_activity(db, shop, points=40)
    entry_id = (await record(db, shop, member.member_number, review)).result["transaction_id"]

    assert await _status(db, member, entry_id) == "AVAILABLE"
    expires_at = (await _entry(db, entry_id))["lot"]["expires_at"]
    clock.set_clock(lambda: expires_at + timedelta(seconds=1))
    try:  # past the lot's expiry, before or after the worker posts it: EXPIRED
        assert await _status(db, member, entry_id) == "EXPIRED"
    finally:
        clock.set_clock(None)


async def test_a_coalition_activity_is_coalition_issued_for_any_member(db) -> None:
    shop = await make_partner(db)
    member = await enroll(db, shop)
    signup = await make_activity(
        db, None, kind=ActivityKind.NEWSLETTER_SIGNUP, points=120, per_member_limit=1
    )
    assert signup.by_coalition

    outcome = await record(db, ADMIN, member.member_number, signup)

    assert outcome.errors == []
    async with sql.connection(db) as conn:
        issuer = await coalition.coalition_issuer_id(conn)
    booked = await _entry(db, outcome.result["transaction_id"])
    assert booked["entry"]["partner_id"] == issuer and booked["entry"]["coalition_points"] == 120
    assert booked["lot"]["issuing_partner_id"] == issuer
    again = await record(db, ADMIN, member.member_number, signup)
    assert codes(again) == ["ACTIVITY_LIMIT_REACHED"]
    assert (await balance(db, member.id)).available == 120
    assert await violations(db) == []


async def test_who_may_record_what(db) -> None:
    shop, other = await make_partner(db), await make_partner(db)
    linked = await enroll(db, shop)
    stranger = await enroll(db, other)  # a member, but not the shop's
    review = await make_activity(db, shop)
    others = await make_activity(db, other)

    assert codes(await record(db, shop, stranger.member_number, review)) == ["MEMBER_NOT_FOUND"]
    assert codes(await record(db, shop, linked.member_number, others)) == ["ACTIVITY_NOT_FOUND"]
    assert codes(await record(db, shop, linked.member_number, "NO-SUCH-CODE")) == ["ACTIVITY_NOT_FOUND"]
    assert codes(await record(db, shop, linked.member_number, review.code.lower())) == []  # any case

    await activities.archive_activity(db, shop.principal, review.id)
    assert codes(await record(db, shop, linked.member_number, review)) == ["ACTIVITY_NOT_FOUND"]
    try:
        await activities.archive_activity(db, shop.principal, others.id)  # not its own
    except DomainError as exc:
        assert [e.code for e in exc.errors] == ["ACTIVITY_NOT_FOUND"]
    else:
        raise AssertionError("archived another partner's activity")
    assert (await balance(db, stranger.id)).available == 0
    assert (await balance(db, linked.id)).available == review.points


async def test_the_limit_holds_under_concurrent_records(db) -> None:
    shop = await make_partner(db)
    member = await enroll(db, shop)
    survey = await make_activity(db, shop, kind=ActivityKind.CUSTOM, points=10, per_member_limit=5)

    outcomes = await asyncio.gather(*(record(db, shop, member.member_number, survey) for _ in range(20)))

    assert sorted(tuple(codes(o)) for o in outcomes) == [()] * 5 + [("ACTIVITY_LIMIT_REACHED",)] * 15
    assert (await balance(db, member.id)).available == 50
    assert len(await records_of(db, member.id)) == 5
    assert await violations(db) == []


async def test_a_cooldown_holds_before_and_after_a_record(db) -> None:
    shop = await make_partner(db)
    member = await enroll(db, shop)
    daily = await make_activity(db, shop, points=5, cooldown=timedelta(days=1))
    t = clock.now() - timedelta(days=10)

    assert codes(await record(db, shop, member.member_number, daily, occurred_at=t)) == []
    too_soon = await record(db, shop, member.member_number, daily, occurred_at=t + timedelta(hours=2))
    assert codes(too_soon) == ["ACTIVITY_COOLDOWN"] and too_soon.errors[0].field == "occurredAt"
    backdated = await record(db, shop, member.member_number, daily, occurred_at=t - timedelta(hours=23))
    assert codes(backdated) == ["ACTIVITY_COOLDOWN"]
    assert codes(await record(db, shop, member.member_number, daily, occurred_at=t + timedelta(days=1))) == []
    assert codes(await record(db, shop, member.member_number, daily, occurred_at=t - timedelta(days=1))) == []
    assert (await balance(db, member.id)).available == 15


async def test_exactly_once_per_key(db) -> None:
    shop = await make_partner(db)
    member = await enroll(db, shop)
    review, other = await make_activity(db, shop), await make_activity(db, shop)
    key = unique("key")

    first, again = await asyncio.gather(
        record(db, shop, member.member_number, review, key=key),
        record(db, shop, member.member_number, review, key=key),
    )
    assert first.errors == [] and again.errors == []
    assert first.result["transaction_id"] == again.result["transaction_id"]
    assert codes(await record(db, shop, member.member_number, other, key=key)) == ["IDEMPOTENCY_KEY_REUSED"]
    assert (await balance(db, member.id)).available == review.points
    # A refusal that depends on state is the key's answer too.
    limited = await make_activity(db, shop, per_member_limit=1)
    assert codes(await record(db, shop, member.member_number, limited)) == []
    refused_key = unique("key")
    assert codes(await record(db, shop, member.member_number, limited, key=refused_key)) == [
        "ACTIVITY_LIMIT_REACHED"
    ]
    await activities.archive_activity(db, shop.principal, limited.id)
    assert codes(await record(db, shop, member.member_number, limited, key=refused_key)) == [
        "ACTIVITY_LIMIT_REACHED"
    ]


async def test_bad_input_names_the_field(db) -> None:
    shop = await make_partner(db)
    member = await enroll(db, shop)
    survey = await make_activity(db, shop, kind=ActivityKind.SURVEY)

    async def problems(**kwargs) -> list[tuple[str, str | None]]:
        try:
            outcome = await record(db, shop, member.member_number, survey, **kwargs)
        except DomainError as exc:
            return [(str(e.code), e.field) for e in exc.errors]
        return [(str(e.code), e.field) for e in outcome.errors]

    assert await problems(data={"comment": "no score"}) == [("INVALID", "data.npsScore")]
    assert await problems(data={"npsScore": 11}) == [("INVALID", "data.npsScore")]
    assert await problems(data={"npsScore": True}) == [("INVALID", "data.npsScore")]
    assert await problems(data={"npsScore": 7, "comment": "x" * 2001}) == [("TOO_LONG", "data.comment")]
    assert await problems(data={"npsScore": 7, "blob": "y" * 5000}) == [("TOO_LONG", "data")]
    assert await problems(data={"npsScore": 7}, occurred_at=clock.now() + timedelta(hours=1)) == [
        ("INVALID", "occurredAt")
    ]
    assert await problems(data={"npsScore": 7}, occurred_at=clock.now() - timedelta(days=3650)) == [
        ("TOO_OLD", "occurredAt")
    ]
    try:
        await make_activity(db, shop, points=0, code="bad code!", cooldown=timedelta(0))
    except DomainError as exc:
        assert {(str(e.code), e.field) for e in exc.errors} == {
            ("INVALID", "code"),
            ("INVALID_AMOUNT", "points"),
            ("INVALID_DURATION", "cooldown"),
        }
    else:
        raise AssertionError("a bad activity was created")
    taken = await make_activity(db, shop)
    try:
        await make_activity(db, shop, code=taken.code.lower())
    except DomainError as exc:
        assert [(str(e.code), e.field) for e in exc.errors] == [("CODE_TAKEN", "code")]
    else:
        raise AssertionError("a code was taken twice")
    assert (await balance(db, member.id)).available == 0


async def test_nps_is_promoters_minus_detractors_per_partner(db) -> None:
    shop, other = await make_partner(db), await make_partner(db)
    start = clock.now() - timedelta(days=400)
    surveys = {p.id: await make_activity(db, p, kind=ActivityKind.SURVEY, points=1) for p in (shop, other)}
    answers = {shop.id: [10, 9, 8, 3, 0, 10], other.id: [6, 6, 9]}
    for partner in (shop, other):
        for i, score in enumerate(answers[partner.id]):
            member = await enroll(db, partner)
            at = start + timedelta(days=1, hours=i)
            survey = surveys[partner.id]
            outcome = await record(
                db, partner, member.member_number, survey, occurred_at=at, data={"npsScore": score}
            )
            assert outcome.errors == []
    end = start + timedelta(days=2)

    mine = await nps_score(db, shop.principal, None, start, end)
    assert (mine.promoters, mine.passives, mine.detractors, mine.score) == (3, 1, 2, 17)  # 100/6 = 16.7
    theirs = await nps_score(db, ADMIN, other.id, start, end)
    assert (theirs.promoters, theirs.detractors, theirs.score) == (1, 2, -33)
    empty = await nps_score(db, shop.principal, None, end, end + timedelta(days=1))
    assert empty.responses == 0 and empty.score is None
    try:
        await nps_score(db, shop.principal, other.id, start, end)  # another partner's
    except DomainError as exc:
        assert [e.code for e in exc.errors] == ["PARTNER_NOT_FOUND"]
    else:
        raise AssertionError("a partner read another's NPS")


async def test_erasure_clears_the_members_words_and_keeps_the_score(db) -> None:
    shop = await make_partner(db)
    member = await enroll(db, shop)
    survey = await make_activity(db, shop, kind=ActivityKind.SURVEY)
    outcome = await record(
        db, shop, member.member_number, survey, data={"npsScore": 4, "comment": "my name is Ann"}
    )
    assert outcome.errors == []
    [before] = await records_of(db, member.id)
    assert before["comment"] == "my name is Ann"

    await erasure.erase_member(db, ADMIN, member.member_number)

    [after] = await records_of(db, member.id)
    assert after["comment"] is None and after["data"] is None and after["nps_score"] == 4
    assert await violations(db) == []


async def test_activity_points_settle_like_the_partners_own(db) -> None:
    """Issued by the partner: it pays its issue fee on them, and owes the partner where they are
    redeemed that partner's redeem price, exactly as for a purchase's points."""
    t0 = clock.now().replace(microsecond=0) - timedelta(days=7600)  # the period factories.py lists
    issuer = await make_partner(db, issue_fee_per_point=Decimal("0.001"))
    redeemer = await make_partner(db, redeem_price="0.010")
    member = await enroll(db, issuer)
    await enroll(db, redeemer, member_number=member.member_number)
    try:
        clock.set_clock(lambda: t0 + timedelta(hours=1))
        review = await make_activity(db, issuer, points=300)
        assert (await record(db, issuer, member.member_number, review)).errors == []
        clock.set_clock(lambda: t0 + timedelta(hours=2))
        assert (await redeem(db, redeemer, member.member_number, 200)).errors == []
        clock.set_clock(lambda: t0 + timedelta(days=11))
        run = await settlement.run_settlement(
            db, SETTLER, period_start=t0, period_end=t0 + timedelta(days=10)
        )
    finally:
        clock.set_clock(None)
    statements = {s.partner_id: s for s in run.statements}
    issuer_lines = {(x.kind, x.counterparty_id): (x.points, x.amount) for x in statements[issuer.id].lines}
    assert issuer_lines == {
        ("REDEMPTION_PAYABLE", redeemer.id): (200, Decimal("-2.00")),
        ("ISSUE_FEE", None): (300, Decimal("-0.30")),
    }
    assert sum((s.net for s in run.statements), Decimal(0)) == 0
    assert await violations(db) == []
