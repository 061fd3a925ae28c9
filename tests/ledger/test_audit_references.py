"""The append-only ledger tables carry no foreign keys (their checks were most of a bulk batch's
write): `coalition audit` checks every reference instead, so a dangling id fails the audit."""

from __future__ import annotations

from sqlalchemy import text

from services.ledger import audit as ledger_audit
from tests.factories import (
    earn,
    earn_batch,
    earn_with_coalition,
    enroll,
    make_partner,
    purchase,
    redeem,
    violations,
)


async def test_every_reference_of_the_append_only_tables_is_audited(db):
    cafe = await make_partner(db, earn_rate="1")
    shop = await make_partner(db)
    member = await enroll(db, cafe)
    await earn(db, cafe, member.member_number, "40")
    # Every reference needs a row of its own here (run alone, no earlier test left one behind):
    # a coalition-funded earn gives purchases.coalition_lot_id.
    assert (await earn_with_coalition(db, cafe, member.member_number, 10, 5)).errors == []
    await enroll(db, shop, member_number=member.member_number)
    assert (await redeem(db, shop, member.member_number, 15)).errors == []  # a lot consumption
    assert await violations(db) == []

    for table, column, target in ledger_audit.REFERENCES:
        async with db.sessions() as session:
            row = (
                await session.execute(
                    text(
                        f"SELECT id, {column} AS ref FROM {table} WHERE {column} IS NOT NULL"
                        " ORDER BY id DESC LIMIT 1"
                    )
                )
            ).one()
            # Corrupt the books as a bug would: an id that names no row (ids are never negative).
            await session.execute(
                text(f"UPDATE {table} SET {column} = -{column} WHERE id = :id"), {"id": row.id}
            )
            await session.commit()
        try:
            found = [v.detail for v in await violations(db)]
            assert f"{table} {row.id}: {column} {-row.ref} is no row of {target}" in found, (table, column)
        finally:
            async with db.sessions() as session:
                await session.execute(
                    text(f"UPDATE {table} SET {column} = -{column} WHERE id = :id"), {"id": row.id}
                )
                await session.commit()
    assert await violations(db) == []


async def test_a_bulk_batch_leaves_every_reference_whole(db):
    cafe = await make_partner(db, earn_rate="1")
    people = [await enroll(db, cafe) for _ in range(5)]
    batch = [purchase(p.member_number, f"{3 + i}.50", key=f"ref-{i}", order_id=f"ref-o{i}")
             for i, p in enumerate(people * 4)]  # fmt: skip
    outcomes = await earn_batch(db, cafe, batch)
    assert all(o.errors == [] for o in outcomes)
    assert await violations(db) == []


async def test_a_purchase_whose_entry_names_another_order_fails_the_audit(db):
    """Member histories find a purchase by its entry's partner and order id (the unique index):
    the audit says so if an entry ever stops naming them."""
    cafe = await make_partner(db)
    member = await enroll(db, cafe)
    outcome = await earn(db, cafe, member.member_number, "12")
    entry_id = outcome.result["transaction_id"]
    async with db.sessions() as session:
        await session.execute(
            text("UPDATE journal_entries SET order_id = order_id || '-x' WHERE id = :id"), {"id": entry_id}
        )
        await session.commit()
    try:
        found = [v.detail for v in await violations(db)]
        assert any(f"entry {entry_id} is not its EARN" in d for d in found), found
    finally:
        async with db.sessions() as session:
            await session.execute(
                text("UPDATE journal_entries SET order_id = left(order_id, -2) WHERE id = :id"),
                {"id": entry_id},
            )
            await session.commit()
    assert await violations(db) == []
