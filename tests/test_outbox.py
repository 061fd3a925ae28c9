"""The outbox writer (`shared.outbox`): an event exists exactly when the transaction that wrote it
committed, batches go in one statement, and payloads keep money exact."""

from __future__ import annotations

import json
import uuid
from decimal import Decimal

import pytest

from shared import sql
from shared.database import Database
from shared.outbox import Event, EventType, record_event, record_events


async def _stored(db: Database, event_ids: list[uuid.UUID]) -> list[dict]:
    async with sql.connection(db) as conn:
        rows = await conn.fetch(
            "SELECT event_id, type, member_id, partner_ids, data::text AS data,"
            " webhooks_dispatched_at, mail_dispatched_at"
            " FROM outbox_events WHERE event_id = ANY($1::uuid[]) ORDER BY id",
            event_ids,
        )
    return [dict(r) for r in rows]


async def test_an_event_written_in_a_committed_transaction_is_stored_once(db: Database) -> None:
    async with sql.connection(db) as conn, conn.transaction():
        event_id = await record_event(
            conn,
            EventType.POINTS_EARNED,
            {"points": 12, "amount": Decimal("12.90")},
            member_id=7,
            partner_ids=[3],
        )
    [row] = await _stored(db, [event_id])
    assert row["type"] == "points.earned"
    assert row["member_id"] == 7 and row["partner_ids"] == [3]
    assert json.loads(row["data"]) == {"points": 12, "amount": "12.90"}, "money stays a decimal string"
    assert row["webhooks_dispatched_at"] is None and row["mail_dispatched_at"] is None


async def test_an_event_of_a_rolled_back_transaction_is_never_stored(db: Database) -> None:
    class Boom(Exception):
        pass

    with pytest.raises(Boom):
        async with sql.connection(db) as conn, conn.transaction():
            event_id = await record_event(conn, EventType.MEMBER_ENROLLED, {"memberNumber": "x"})
            raise Boom
    assert await _stored(db, [event_id]) == []


async def test_a_batch_is_stored_in_order_with_each_audience(db: Database) -> None:
    events = [
        Event(EventType.POINTS_EARNED, {"n": n}, member_id=n, partner_ids=list(range(n))) for n in range(5)
    ]
    async with sql.connection(db) as conn, conn.transaction():
        await record_events(conn, events)
    rows = await _stored(db, [e.event_id for e in events])
    assert [r["event_id"] for r in rows] == [e.event_id for e in events]
    assert [r["partner_ids"] for r in rows] == [list(range(n)) for n in range(5)]


def test_a_float_in_a_payload_is_refused_before_anything_is_written() -> None:
    from shared.outbox import encode

    assert encode({"a": Decimal("1.10")}) == '{"a":"1.10"}'
    with pytest.raises(TypeError, match=r"data\.lines\[0\]\.amount"):
        encode({"lines": [{"amount": 1.1}]})
    with pytest.raises(TypeError):
        encode({"a": object()})
