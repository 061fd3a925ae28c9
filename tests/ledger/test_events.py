"""The ledger's outbox events (docs/events.md): every move of points writes exactly one event in
its own transaction, with the payload of the contract; a refused, replayed or rolled-back move
writes none."""

from __future__ import annotations

from datetime import timedelta

import pytest

from services.gateway.worker import run_job
from services.ledger import live
from services.ledger import service as ledger
from services.ledger.scheduled import activate_due_lots, expire_due_lots
from services.partners import catalog
from shared import clock
from shared.ids import global_id_sql, to_global_id
from tests.factories import (
    authorize,
    cancel,
    capture,
    earn,
    earn_with_coalition,
    enroll,
    link,
    make_partner,
    outbox,
    redeem,
    reverse,
    unique,
    void,
)

POINTS = ("points.earned", "points.redeemed", "points.reversed", "points.expired", "reward.redeemed")


def pid(partner) -> str:
    return to_global_id("Partner", partner.id)


def tid(entry_id: int) -> str:
    return to_global_id("Transaction", entry_id)


async def points_events(db, member) -> list[dict]:
    return await outbox(db, member_id=member.id, types=POINTS)


async def test_the_sql_global_id_is_the_python_one(db):
    from shared import sql

    ids = [1, 9, 10, 12345, 2**31, 2**63 - 1]
    async with sql.connection(db) as conn:
        rows = await conn.fetch(
            f"SELECT {global_id_sql('Transaction', 'x')} AS g FROM unnest($1::bigint[]) x", ids
        )
    assert [r["g"] for r in rows] == [to_global_id("Transaction", i) for i in ids]


async def test_an_earn_writes_one_points_earned_and_a_retry_none(db):
    cafe = await make_partner(db)
    member = await enroll(db, cafe)
    order, key = unique("order"), unique("key")
    first = await earn(db, cafe, member.member_number, "12.90", order_id=order, key=key)
    again = await earn(db, cafe, member.member_number, "12.90", order_id=order, key=key)
    assert again.result == first.result
    refused = await earn(db, cafe, member.member_number, "12.90", order_id=order)  # another key
    assert [e.code for e in refused.errors] == ["DUPLICATE_ORDER"]
    assert await points_events(db, member) == [
        {
            "type": "points.earned",
            "member_id": member.id,
            "partner_ids": [cafe.id],
            "data": {
                "memberNumber": member.member_number,
                "partnerId": pid(cafe),
                "transactionId": tid(first.result["transaction_id"]),
                "points": 12,
                "status": "AVAILABLE",  # no return window at this partner
                "orderId": order,
                "source": "PURCHASE",
                "coalitionPoints": 0,
            },
        }
    ]


async def test_pending_points_announce_themselves_again_when_the_worker_activates_them(db):
    shop = await make_partner(db, return_window_days=14)
    member = await enroll(db, shop)
    done = await earn(db, shop, member.member_number, "40")
    [pending] = await points_events(db, member)
    assert pending["data"]["status"] == "PENDING" and pending["data"]["points"] == 40
    later = clock.now() + timedelta(days=15)
    clock.set_clock(lambda: later)
    try:
        await run_job(db, activate_due_lots)
        await run_job(db, activate_due_lots)  # nothing left to activate: nothing more said
    finally:
        clock.set_clock(None)
    [_, available] = await points_events(db, member)
    assert available == {
        "type": "points.earned",
        "member_id": member.id,
        "partner_ids": [shop.id],
        "data": {**pending["data"], "status": "AVAILABLE"},
    }
    assert available["data"]["transactionId"] == tid(done.result["transaction_id"])


async def test_a_coalition_funded_earn_is_one_event_naming_the_coalitions_share(db):
    cafe = await make_partner(db)
    member = await enroll(db, cafe)
    done = await earn_with_coalition(db, cafe, member.member_number, 30, 10)
    [event] = await points_events(db, member)
    assert event["partner_ids"] == [cafe.id]
    assert event["data"]["points"] == 30 and event["data"]["coalitionPoints"] == 10
    assert event["data"]["transactionId"] == tid(done.result["transaction_id"])


async def test_an_earn_that_rolls_back_writes_no_event(db, monkeypatch):
    """The general path (a coalition share) fails after its statement wrote the event: the
    purchase and its event go together."""
    cafe = await make_partner(db)
    member = await enroll(db, cafe)

    async def broken(*args, **kwargs):
        raise RuntimeError("the database went away")

    monkeypatch.setattr(live, "notify", broken)
    with pytest.raises(RuntimeError):
        await earn_with_coalition(db, cafe, member.member_number, 30, 10)
    monkeypatch.undo()
    assert await points_events(db, member) == []


async def test_presenting_the_card_links_with_one_member_linked_event(db):
    cafe, airline = await make_partner(db), await make_partner(db)
    member = await enroll(db, cafe)
    await earn(db, airline, member.member_number, "10")
    await earn(db, airline, member.member_number, "10")  # linked already: no second event
    linked = await outbox(db, member_id=member.id, types=("member.linked",))
    assert linked[-1] == {
        "type": "member.linked",
        "member_id": member.id,
        "partner_ids": [airline.id],
        "data": {"memberNumber": member.member_number, "partnerId": pid(airline), "how": "CARD_PRESENTED"},
    }
    assert [e["partner_ids"] for e in linked] == [[cafe.id], [airline.id]]


async def test_a_bulk_batch_writes_one_event_per_accepted_purchase(db):
    cafe, airline = await make_partner(db), await make_partner(db)
    ann, bob = await enroll(db, cafe), await enroll(db, cafe)
    await link(db, airline, bob)
    from services.earning import service as earning
    from tests.factories import purchase

    taken = unique("order")
    await earn(db, airline, ann.member_number, "1", order_id=taken)
    batch = [
        purchase(ann.member_number, "10"),
        purchase(bob.member_number, "20"),
        purchase(ann.member_number, "30"),
        purchase(bob.member_number, "5", order_id=taken),  # DUPLICATE_ORDER
        purchase("000000000000", "5"),  # not a member number
    ]
    outcomes = await earning.record_purchases(db, airline.principal, batch)
    assert [bool(o.result) for o in outcomes] == [True, True, True, False, False]
    replayed = await earning.record_purchases(db, airline.principal, batch)
    assert [o.result for o in replayed] == [o.result for o in outcomes]

    ann_events = await outbox(db, member_id=ann.id, types=("points.earned",))
    bob_events = await outbox(db, member_id=bob.id, types=("points.earned",))
    assert [(e["data"]["points"], e["partner_ids"]) for e in ann_events] == [
        (1, [airline.id]),
        (10, [airline.id]),
        (30, [airline.id]),
    ]
    assert [e["data"]["transactionId"] for e in ann_events[1:]] == [
        tid(outcomes[0].result["transaction_id"]),
        tid(outcomes[2].result["transaction_id"]),
    ]
    assert [e["data"] for e in bob_events] == [
        {
            "memberNumber": bob.member_number,
            "partnerId": pid(airline),
            "transactionId": tid(outcomes[1].result["transaction_id"]),
            "points": 20,
            "status": "AVAILABLE",
            "orderId": batch[1].order_id,
            "source": "PURCHASE",
            "coalitionPoints": 0,
        }
    ]
    # ann was linked to the airline at the till by her single earn, bob by enrolment.
    assert [e["data"]["how"] for e in await outbox(db, member_id=ann.id, types=("member.linked",))] == [
        "ENROLLED",
        "CARD_PRESENTED",
    ]


async def test_a_bulk_batch_links_new_members_with_their_events(db):
    cafe, airline = await make_partner(db), await make_partner(db)
    ann = await enroll(db, cafe)
    from services.earning import service as earning
    from tests.factories import purchase

    await earning.record_purchases(
        db, airline.principal, [purchase(ann.member_number, "10"), purchase(ann.member_number, "10")]
    )
    linked = await outbox(db, member_id=ann.id, types=("member.linked",))
    assert [(e["data"]["how"], e["partner_ids"]) for e in linked] == [
        ("ENROLLED", [cafe.id]),
        ("CARD_PRESENTED", [airline.id]),
    ]


async def test_a_redemption_writes_one_event_a_refusal_or_a_retry_none(db):
    cafe = await make_partner(db)
    member = await enroll(db, cafe)
    await earn(db, cafe, member.member_number, "100")
    order, key = unique("order"), unique("key")
    spent = await redeem(db, cafe, member.member_number, 30, order_id=order, key=key)
    again = await redeem(db, cafe, member.member_number, 30, order_id=order, key=key)
    assert again.result == spent.result
    refused_key, refused_order = unique("key"), unique("order")
    refused = await redeem(db, cafe, member.member_number, 500, key=refused_key, order_id=refused_order)
    assert [e.code for e in refused.errors] == ["INSUFFICIENT_POINTS"]
    await earn(db, cafe, member.member_number, "1000")
    # The stored refusal, though the points are there now: still no event.
    retried = await redeem(db, cafe, member.member_number, 500, key=refused_key, order_id=refused_order)
    assert [e.code for e in retried.errors] == ["INSUFFICIENT_POINTS"]
    duplicate = await redeem(db, cafe, member.member_number, 1, order_id=order)
    assert [e.code for e in duplicate.errors] == ["DUPLICATE_ORDER"]
    redeemed = await outbox(db, member_id=member.id, types=("points.redeemed",))
    assert redeemed == [
        {
            "type": "points.redeemed",
            "member_id": member.id,
            "partner_ids": [cafe.id],
            "data": {
                "memberNumber": member.member_number,
                "partnerId": pid(cafe),
                "transactionId": tid(spent.result["transaction_id"]),
                "redemptionId": to_global_id("Redemption", spent.result["redemption_id"]),
                "points": 30,
                "orderId": order,
            },
        }
    ]


async def test_a_redemption_that_rolls_back_writes_no_event(db, monkeypatch):
    cafe = await make_partner(db)
    member = await enroll(db, cafe)
    await earn(db, cafe, member.member_number, "100")

    async def broken(*args, **kwargs):
        raise RuntimeError("the database went away")

    monkeypatch.setattr(live, "notify", broken)  # after the spend and its event, in its transaction
    with pytest.raises(RuntimeError):
        await redeem(db, cafe, member.member_number, 30)
    monkeypatch.undo()
    assert await outbox(db, member_id=member.id, types=("points.redeemed",)) == []


async def test_a_captured_hold_is_one_redemption_a_voided_one_none(db):
    cafe = await make_partner(db)
    member = await enroll(db, cafe)
    await earn(db, cafe, member.member_number, "100")
    held = await authorize(db, cafe, member.member_number, 40)
    hold_id = to_global_id("Authorization", held.result["authorization_id"])
    captured = await capture(db, cafe, hold_id, 25)
    assert [e.code for e in (await capture(db, cafe, hold_id)).errors] == ["AUTHORIZATION_NOT_ACTIVE"]
    other = await authorize(db, cafe, member.member_number, 10)
    await void(db, cafe, to_global_id("Authorization", other.result["authorization_id"]))
    [event] = await outbox(db, member_id=member.id, types=("points.redeemed",))
    assert event["data"]["points"] == 25 and event["partner_ids"] == [cafe.id]
    assert event["data"]["memberNumber"] == member.member_number
    assert event["data"]["transactionId"] == tid(captured.result["transaction_id"])


async def test_a_reward_writes_its_points_and_what_they_bought(db):
    cafe = await make_partner(db)
    member = await enroll(db, cafe)
    await earn(db, cafe, member.member_number, "100")
    reward = await catalog.create_reward(db, cafe.principal, name=unique("espresso"), points_cost=20)
    key = unique("key")

    async def buy():
        return await ledger.redeem_reward(
            db,
            cafe.principal,
            idempotency_key=key,
            member_number=member.member_number,
            reward_id=to_global_id("Reward", reward.id),
            quantity=2,
        )

    bought = await buy()
    assert (await buy()).result == bought.result
    events = await outbox(db, member_id=member.id, types=("points.redeemed", "reward.redeemed"))
    assert [e["type"] for e in events] == ["points.redeemed", "reward.redeemed"]
    assert events[0]["data"]["points"] == 40
    assert events[1] == {
        "type": "reward.redeemed",
        "member_id": member.id,
        "partner_ids": [cafe.id],
        "data": {
            "memberNumber": member.member_number,
            "partnerId": pid(cafe),
            "rewardId": to_global_id("Reward", reward.id),
            "rewardName": reward.name,
            "points": 40,
            "quantity": 2,
            "transactionId": tid(bought.result["transaction_id"]),
            "voucherCode": bought.result["voucher_code"],
        },
    }


async def test_refunds_and_cancellations_are_reversals(db):
    cafe = await make_partner(db)
    member = await enroll(db, cafe)
    order = unique("order")
    await earn(db, cafe, member.member_number, "100", order_id=order)
    key = unique("key")
    refund = await reverse(db, cafe, order, "40.00", key=key)
    assert (await reverse(db, cafe, order, "40.00", key=key)).result == refund.result
    assert [e.code for e in (await reverse(db, cafe, order, "100.00")).errors] == ["REFUND_EXCEEDS_PURCHASE"]
    redeemed_order = unique("order")
    spent = await redeem(db, cafe, member.member_number, 15, order_id=redeemed_order)
    redemption_id = to_global_id("Redemption", spent.result["redemption_id"])
    cancelled = await cancel(db, cafe, redemption_id)
    assert [e.code for e in (await cancel(db, cafe, redemption_id)).errors] == ["ALREADY_CANCELLED"]
    reversed_ = await outbox(db, member_id=member.id, types=("points.reversed",))
    assert reversed_ == [
        {
            "type": "points.reversed",
            "member_id": member.id,
            "partner_ids": [cafe.id],
            "data": {
                "memberNumber": member.member_number,
                "partnerId": pid(cafe),
                "transactionId": tid(refund.result["reversal_id"]),
                "points": 40,
                "kind": "REFUND",
                "orderId": order,
            },
        },
        {
            "type": "points.reversed",
            "member_id": member.id,
            "partner_ids": [cafe.id],
            "data": {
                "memberNumber": member.member_number,
                "partnerId": pid(cafe),
                "transactionId": tid(cancelled.result["cancellation_id"]),
                "points": 15,
                "kind": "CANCELLATION",
                "orderId": redeemed_order,
            },
        },
    ]


async def test_a_refund_whose_hook_fails_rolls_back_with_its_event(db, monkeypatch):
    cafe = await make_partner(db)
    member = await enroll(db, cafe)
    order = unique("order")
    await earn(db, cafe, member.member_number, "100", order_id=order)

    async def broken(*args, **kwargs):
        raise RuntimeError("the database went away")

    monkeypatch.setattr(live, "notify", broken)
    with pytest.raises(RuntimeError):
        await reverse(db, cafe, order, "40.00")
    monkeypatch.undo()
    assert await outbox(db, member_id=member.id, types=("points.reversed",)) == []


async def test_expiry_writes_one_event_per_member_with_each_issuers_points(db):
    cafe, airline = await make_partner(db), await make_partner(db)
    member = await enroll(db, cafe)
    other = await enroll(db, cafe)
    await earn(db, cafe, member.member_number, "30")
    await earn(db, cafe, member.member_number, "5")
    await earn(db, airline, member.member_number, "12")
    await earn(db, cafe, other.member_number, "7")
    later = clock.now() + timedelta(days=25 * 31)
    clock.set_clock(lambda: later)
    try:
        await run_job(db, expire_due_lots)
        await run_job(db, expire_due_lots)
    finally:
        clock.set_clock(None)
    [event] = await outbox(db, member_id=member.id, types=("points.expired",))
    assert event == {
        "type": "points.expired",
        "member_id": member.id,
        "partner_ids": sorted([cafe.id, airline.id]),
        "data": {
            "memberNumber": member.member_number,
            "points": 47,
            "byIssuer": [
                {"partnerId": pid(p), "points": n}
                for p, n in sorted([(cafe, 35), (airline, 12)], key=lambda x: x[0].id)
            ],
        },
    }
    [theirs] = await outbox(db, member_id=other.id, types=("points.expired",))
    assert theirs["data"]["points"] == 7 and theirs["partner_ids"] == [cafe.id]


async def test_a_cancelled_redemption_of_lapsed_points_expires_them_again_with_an_event(db):
    cafe = await make_partner(db)
    member = await enroll(db, cafe)
    await earn(db, cafe, member.member_number, "20")
    spent = await redeem(db, cafe, member.member_number, 20)  # all of the lot: nothing left to expire
    later = clock.now() + timedelta(days=25 * 31)
    clock.set_clock(lambda: later)
    try:
        await cancel(db, cafe, to_global_id("Redemption", spent.result["redemption_id"]))
    finally:
        clock.set_clock(None)
    events = await outbox(db, member_id=member.id, types=("points.reversed", "points.expired"))
    assert [(e["type"], e["data"]["points"]) for e in events] == [
        ("points.reversed", 20),
        ("points.expired", 20),
    ]


async def test_activation_names_the_purchase_once_for_both_lots_and_nothing_for_a_refunded_earn(db):
    shop = await make_partner(db, return_window_days=14)
    member = await enroll(db, shop)
    funded = await earn_with_coalition(db, shop, member.member_number, 30, 10)
    refunded_order = unique("order")
    await earn(db, shop, member.member_number, "25", order_id=refunded_order)
    await reverse(db, shop, refunded_order)  # all of it, inside the return window
    later = clock.now() + timedelta(days=15)
    clock.set_clock(lambda: later)
    try:
        await run_job(db, activate_due_lots)
    finally:
        clock.set_clock(None)
    earned = await outbox(db, member_id=member.id, types=("points.earned",))
    assert [(e["data"]["status"], e["data"]["points"]) for e in earned] == [
        ("PENDING", 30),
        ("PENDING", 25),
        ("AVAILABLE", 30),
    ]
    assert earned[-1]["data"]["transactionId"] == tid(funded.result["transaction_id"])
    assert earned[-1]["partner_ids"] == [shop.id] and earned[-1]["data"]["partnerId"] == pid(shop)
    assert earned[0]["data"]["coalitionPoints"] == earned[-1]["data"]["coalitionPoints"] == 10
