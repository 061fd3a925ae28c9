"""The rewards catalogue and buying rewards with points: stock, limits, vouchers."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from services.ledger import rewards
from services.partners import catalog
from shared import clock
from shared.errors import DomainError, Forbidden
from shared.ids import is_valid_voucher_code, new_voucher_code, to_global_id
from tests.factories import ADMIN, balance, cancel, earn, enroll, link, make_partner, unique, violations


async def _reward(db, partner, **terms):
    return await catalog.create_reward(
        db, partner.principal, **{"name": unique("Mug"), "points_cost": 10, **terms}
    )


async def _buy(db, partner, member_number, reward, quantity=1):
    return await rewards.redeem_reward(
        db,
        partner.principal,
        idempotency_key=unique("k"),
        member_number=member_number,
        reward_id=to_global_id("Reward", reward.id),
        quantity=quantity,
    )


def test_voucher_codes_carry_a_check_character():
    code = new_voucher_code()
    assert is_valid_voucher_code(code) and len(code) == 16
    raw = code.replace("-", "")
    changed = ("3" if raw[0] != "3" else "4") + raw[1:]
    swapped = raw[1] + raw[0] + raw[2:] if raw[0] != raw[1] else raw[:2] + raw[3] + raw[2] + raw[4:]
    assert not is_valid_voucher_code(changed)
    assert not is_valid_voucher_code(swapped) or swapped == raw
    assert not any(c in code for c in "01ILOU")


async def test_one_hundred_buyers_and_a_stock_of_ten(db):
    shop = await make_partner(db)
    reward = await _reward(db, shop, stock=10)
    buyers = [await enroll(db, shop) for _ in range(100)]
    for member in buyers:
        await earn(db, shop, member.member_number, "20")
    outcomes = await asyncio.gather(*[_buy(db, shop, m.member_number, reward) for m in buyers])
    sold = [o for o in outcomes if not o.errors]
    assert len(sold) == 10
    assert {e.code for o in outcomes if o.errors for e in o.errors} == {"OUT_OF_STOCK"}
    assert len({o.result["voucher_code"] for o in sold}) == 10
    assert all(is_valid_voucher_code(o.result["voucher_code"]) for o in sold)
    page = await catalog.list_rewards(db, shop.principal, partner_id=shop.id, first=10, after=None)
    assert [r.stock for _, r in page.items if r.id == reward.id] == [0]
    # Nobody who was refused lost points.
    spent = sum([20 - (await balance(db, m.id)).available for m in buyers])
    assert spent == 10 * 10
    assert await violations(db) == []


async def test_limits_windows_and_archive(db):
    shop = await make_partner(db)
    member = await enroll(db, shop)
    await earn(db, shop, member.member_number, "500")
    limited = await _reward(db, shop, max_per_member=2)
    assert (await _buy(db, shop, member.member_number, limited, 2)).errors == []
    again = await _buy(db, shop, member.member_number, limited)
    assert [e.code for e in again.errors] == ["LIMIT_REACHED"]
    later = await _reward(db, shop, valid_from=clock.now() + timedelta(days=1))
    assert [e.code for e in (await _buy(db, shop, member.member_number, later)).errors] == [
        "REWARD_NOT_AVAILABLE"
    ]
    archived = await _reward(db, shop)
    await catalog.archive_reward(db, shop.principal, archived.id)
    assert [e.code for e in (await _buy(db, shop, member.member_number, archived)).errors] == [
        "REWARD_NOT_AVAILABLE"
    ]
    other = await make_partner(db)
    await link(db, other, member)
    elsewhere = await _buy(db, other, member.member_number, limited)
    assert [e.code for e in elsewhere.errors] == ["REWARD_NOT_FOUND"]
    assert (await balance(db, member.id)).available == 500 - 20


async def test_cancelling_a_reward_redemption_restores_points_and_stock(db):
    shop = await make_partner(db)
    member = await enroll(db, shop)
    await earn(db, shop, member.member_number, "100")
    reward = await _reward(db, shop, stock=3, points_cost=30)
    bought = await _buy(db, shop, member.member_number, reward, 2)
    assert bought.result["points"] == 60
    rid = to_global_id("Redemption", bought.result["redemption_id"])
    assert (await cancel(db, shop, rid)).errors == []
    assert (await balance(db, member.id)).available == 100
    page = await catalog.list_rewards(db, shop.principal, partner_id=shop.id, first=100, after=None)
    assert [r.stock for _, r in page.items if r.id == reward.id] == [3]
    assert await violations(db) == []


async def test_only_the_owner_edits_and_bad_terms_are_named(db):
    shop = await make_partner(db)
    other = await make_partner(db)
    reward = await _reward(db, shop, stock=5)
    with pytest.raises(DomainError) as caught:
        await catalog.update_reward(db, other.principal, reward.id, {"stock": 9})
    assert caught.value.errors[0].code == "REWARD_NOT_FOUND"
    updated = await catalog.update_reward(db, shop.principal, reward.id, {"stock": None, "points_cost": 12})
    assert (updated.stock, updated.points_cost) == (None, 12)
    with pytest.raises(DomainError) as caught:
        await catalog.create_reward(db, shop.principal, name="", points_cost=0, stock=-1)
    assert {e.field for e in caught.value.errors} == {"name", "pointsCost", "stock"}
    with pytest.raises(Forbidden):
        await catalog.create_reward(db, ADMIN, name="x", points_cost=1)
