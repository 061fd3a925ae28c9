"""Test data built through the services' own functions, never raw inserts."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from services.earning import service as earning
from services.earning.models import Channel
from services.ledger import audit as ledger_audit
from services.ledger import holds
from services.ledger import service as ledger
from services.members import service as members
from services.partners import service as partners
from shared import clock, sql
from shared.access import ADMIN_SCOPES, PARTNER_SCOPES, Principal
from shared.database import Database
from shared.money import Money

# Settlement runs are coalition-wide and every test shares one database, so a test that settles takes
# a period of its own, counted in days before today, that no other test's period overlaps (a
# finalized run refuses any overlapping one, whatever the order the tests run in). Taken: 500, 900,
# 1200, 1700, 2300, 2500, 2600, 3000-3450 (reconciliation and its events, 100 apart), 3150 (erasure),
# 3600, 4000, 4100, 4200, 4400, 5000-5200 (random ledgers), 6000 (tiers),
# 6400 (referrals), 7600 (activities), 7800 and 7900 (transfers and donations).
ADMIN = Principal(client_id="test-admin", scopes=ADMIN_SCOPES | {"members:read"})


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@dataclass(frozen=True)
class SeededPartner:
    id: int
    name: str
    principal: Principal
    client_id: str
    client_secret: str


async def make_partner(
    db: Database,
    *,
    name: str | None = None,
    currency: str = "EUR",
    earn_rate: str = "1",
    redeem_price: str = "0.008",
    issue_price: str = "0.010",
    return_window_days: int = 0,
    **extra: Any,
) -> SeededPartner:
    created = await partners.create_partner(
        db,
        ADMIN,
        name=name or unique("partner"),
        currency=currency,
        issue_price=Decimal(issue_price),
        redeem_price=Decimal(redeem_price),
        earn_rate=Decimal(earn_rate),
        return_window_days=return_window_days,
        **extra,
    )
    principal = Principal(client_id=created.client_id, scopes=PARTNER_SCOPES, partner_id=created.partner.id)
    return SeededPartner(
        created.partner.id, created.partner.name, principal, created.client_id, created.client_secret
    )


async def enroll(
    db: Database,
    partner: SeededPartner,
    ref: str | None = None,
    member_number: str | None = None,
    email: str | None = None,
) -> members.MemberView:
    return await members.enroll_member(
        db,
        partner.principal,
        partner_customer_ref=ref or unique("cust"),
        member_number=member_number,
        email=email,
    )


async def link(db: Database, partner: SeededPartner, member: members.MemberView) -> None:
    """Links an existing member to another partner, as that partner's enrolment does (spending
    at a partner needs a link)."""
    await enroll(db, partner, member_number=member.member_number)


async def earn(
    db: Database,
    partner: SeededPartner,
    member_number: str,
    amount: str,
    *,
    order_id: str | None = None,
    key: str | None = None,
    currency: str = "EUR",
    occurred_at: datetime | None = None,
    lines: tuple[earning.LineInput, ...] | None = None,
    promo_codes: tuple[str, ...] | None = None,
    channel: Channel | None = None,
) -> ledger.Outcome:
    return await earning.record_purchase(
        db,
        partner.principal,
        earning.PurchaseInput(
            idempotency_key=key if key is not None else unique("key"),
            member_number=member_number,
            order_id=order_id if order_id is not None else unique("order"),
            amount=Money(Decimal(amount), currency),
            occurred_at=occurred_at,
            lines=lines,
            promo_codes=promo_codes,
            channel=channel,
        ),
    )


async def earn_with_coalition(
    db: Database,
    partner: SeededPartner,
    member_number: str,
    points: int,
    coalition_points: int,
    *,
    amount: str = "10.00",
    order_id: str | None = None,
    key: str | None = None,
    currency: str = "EUR",
    occurred_at: datetime | None = None,
) -> ledger.Outcome:
    """An earn of `points`, `coalition_points` of them funded by the coalition (what a coalition
    promotion decides), booked by the ledger as the earning service would ask it to."""
    return await ledger.record_purchase(
        db,
        partner.principal,
        idempotency_key=key if key is not None else unique("key"),
        member_number=member_number,
        order_id=order_id if order_id is not None else unique("order"),
        amount=Money(Decimal(amount), currency),
        occurred_at=occurred_at,
        decision=ledger.EarnDecision(points, coalition_points=coalition_points),
    )


async def redeem(
    db: Database,
    partner: SeededPartner,
    member_number: str,
    points: int,
    *,
    order_id: str | None = None,
    key: str | None = None,
    member_code: str | None = None,
) -> ledger.Outcome:
    return await ledger.redeem_points(
        db,
        partner.principal,
        idempotency_key=key if key is not None else unique("key"),
        member_number=member_number,
        points=points,
        order_id=order_id if order_id is not None else unique("order"),
        member_code=member_code,
    )


async def reverse(
    db: Database,
    partner: SeededPartner,
    order_id: str,
    amount: str | None = None,
    *,
    key: str | None = None,
    currency: str = "EUR",
    lines: tuple[earning.RefundLine, ...] | None = None,
) -> ledger.Outcome:
    return await earning.reverse_purchase(
        db,
        partner.principal,
        idempotency_key=key if key is not None else unique("key"),
        order_id=order_id,
        amount=Money(Decimal(amount), currency) if amount is not None else None,
        lines=lines,
    )


async def cancel(
    db: Database, partner: SeededPartner, redemption_id: str, *, key: str | None = None
) -> ledger.Outcome:
    return await ledger.cancel_redemption(
        db,
        partner.principal,
        idempotency_key=key if key is not None else unique("key"),
        redemption_id=redemption_id,
    )


async def balance(db: Database, member_id: int) -> ledger.Balance:
    return await ledger.balance(db, ADMIN, member_id)


async def violations(db: Database, at: datetime | None = None) -> list[ledger_audit.Violation]:
    """The ledger audit, as of `at` when given: a test that moved the clock forward and ran the
    worker there audits at that instant, since a hold another test left live at the real now had
    already lapsed when the worker expired the lot under it (time does not run back in production)."""
    if at is None:
        return await ledger_audit.audit(db)
    clock.set_clock(lambda: at)
    try:
        return await ledger_audit.audit(db)
    finally:
        clock.set_clock(None)


async def authorize(
    db: Database,
    partner: SeededPartner,
    member_number: str,
    points: int,
    *,
    expires_in: timedelta = timedelta(minutes=10),
    order_id: str | None = None,
) -> ledger.Outcome:
    return await holds.authorize_redemption(
        db,
        partner.principal,
        idempotency_key=unique("key"),
        member_number=member_number,
        points=points,
        order_id=order_id or unique("order"),
        expires_in=expires_in,
    )


async def capture(
    db: Database, partner: SeededPartner, authorization_id: str, points: int | None = None
) -> ledger.Outcome:
    return await holds.capture_redemption(
        db,
        partner.principal,
        idempotency_key=unique("key"),
        authorization_id=authorization_id,
        points=points,
    )


async def void(db: Database, partner: SeededPartner, authorization_id: str) -> ledger.Outcome:
    return await holds.void_redemption(
        db, partner.principal, idempotency_key=unique("key"), authorization_id=authorization_id
    )


def purchase(
    member_number: str,
    amount: str,
    *,
    order_id: str | None = None,
    key: str | None = None,
    currency: str = "EUR",
    occurred_at: datetime | None = None,
    lines: tuple[earning.LineInput, ...] | None = None,
    promo_codes: tuple[str, ...] | None = None,
    channel: Channel | None = None,
) -> earning.PurchaseInput:
    """One purchase of a recordPurchases batch (what `earn` sends on its own)."""
    return earning.PurchaseInput(
        idempotency_key=key if key is not None else unique("key"),
        member_number=member_number,
        order_id=order_id if order_id is not None else unique("order"),
        amount=Money(Decimal(amount), currency),
        occurred_at=occurred_at,
        lines=lines,
        promo_codes=promo_codes,
        channel=channel,
    )


async def earn_batch(
    db: Database, partner: SeededPartner, purchases: list[earning.PurchaseInput]
) -> list[ledger.Outcome]:
    return await earning.record_purchases(db, partner.principal, purchases)


async def outbox(
    db: Database, *, member_id: int | None = None, types: tuple[str, ...] | None = None, where: str = ""
) -> list[dict[str, Any]]:
    """The outbox events about a member (or matching `where`, SQL on the row), oldest first:
    {type, member_id, partner_ids, data} with `data` parsed. The tests share one database, so a
    test reads only the events of the members (or runs) it made."""
    clauses, args = [], []
    if member_id is not None:
        args.append(member_id)
        clauses.append(f"member_id = ${len(args)}")
    if types is not None:
        args.append(list(types))
        clauses.append(f"type = ANY(${len(args)}::text[])")
    if where:
        clauses.append(where)
    query = "SELECT type, member_id, partner_ids, data::text AS data FROM outbox_events"
    query += " WHERE " + " AND ".join(clauses or ["true"]) + " ORDER BY id"
    async with sql.connection(db) as conn:
        rows = await conn.fetch(query, *args)
    return [{**dict(r), "data": json.loads(r["data"])} for r in rows]
