"""Cancelling a redemption: a CANCEL_REDEMPTION entry puts the points back into the lots they came
from (a new entry, never an edit: settlement sees the movement in the period it happens). A lot
already past its expiry expires again at once, its points to breakage rather than back to the
member. Its events: points.reversed (kind CANCELLATION), and points.expired for what re-expired.
"""

from __future__ import annotations

from typing import Any

from services.ledger import accounts, events, journal, live
from services.ledger.events import ReversalKind
from services.ledger.idempotency import run_idempotent
from services.ledger.live import BalanceChangeReason
from services.ledger.models import AccountKind, ConsumptionKind, EntryKind
from services.ledger.outcomes import Outcome, check_common
from services.partners import catalog
from shared import clock
from shared.access import Principal
from shared.database import Database
from shared.error_codes import UserErrorCode
from shared.errors import DomainError, Validator
from shared.ids import from_global_id
from shared.sql import DbConnection, Sql

REDEMPTION_MEMBER = Sql("SELECT member_id FROM redemptions WHERE id = :id AND partner_id = :p")
REDEMPTION = Sql(
    "SELECT points, entry_id, order_id, cancel_entry_id, reward_id, quantity FROM redemptions WHERE id = :id"
)
CONSUMED_BY = Sql(
    "SELECT c.lot_id, c.issuing_partner_id, c.points,"
    " (l.expires_at <= :now OR l.expired_at IS NOT NULL) AS expired"
    " FROM lot_consumptions c JOIN lots l ON l.id = c.lot_id WHERE c.entry_id = :entry ORDER BY c.id"
)
MARK_CANCELLED = Sql("UPDATE redemptions SET cancel_entry_id = :entry WHERE id = :id")


async def cancel_redemption(
    db: Database,
    principal: Principal,
    *,
    idempotency_key: str,
    redemption_id: str,
) -> Outcome:
    """Puts the points back into the lots they came from; a lot already past its expiry expires
    again at once (its points go to breakage, not back to the member)."""
    partner_id = principal.require_partner("points:redeem")
    v = Validator()
    check_common(v, idempotency_key, None)
    decoded = from_global_id(redemption_id, "Redemption")
    v.check(
        decoded is not None, "redemptionId", UserErrorCode.INVALID_ID, "redemptionId is not a Redemption id"
    )
    v.raise_if_any()
    assert decoded is not None
    local_id = decoded[1]

    async def work(conn: DbConnection) -> dict[str, Any]:
        now = clock.now()
        member_id = await REDEMPTION_MEMBER.fetchval(conn, id=local_id, p=partner_id)
        if member_id is None:  # another partner's redemption looks exactly like none
            raise DomainError.single(UserErrorCode.REDEMPTION_NOT_FOUND, "no such redemption", "redemptionId")
        wallet = await journal.lock_wallet(conn, member_id)
        redemption = await REDEMPTION.fetchrow(conn, id=local_id)
        assert redemption is not None
        if redemption["cancel_entry_id"] is not None:
            raise DomainError.single(
                UserErrorCode.ALREADY_CANCELLED, "this redemption was already cancelled", "redemptionId"
            )
        consumed = await CONSUMED_BY.fetch(conn, entry=redemption["entry_id"], now=now)
        redemption_account = await accounts.partner_account(conn, partner_id, AccountKind.PARTNER_REDEMPTION)
        points = redemption["points"]
        entry_id = await journal.post_entry(
            conn,
            kind=EntryKind.CANCEL_REDEMPTION,
            member_id=member_id,
            partner_id=partner_id,
            points=points,
            occurred_at=now,
            order_id=redemption["order_id"],
            related_entry_id=redemption["entry_id"],
            postings=[(redemption_account, -points), (wallet.account_id, points)],
        )
        restored = [journal.LotShare(c["lot_id"], c["issuing_partner_id"], c["points"]) for c in consumed]
        await journal.move_lots(
            conn,
            entry_id=entry_id,
            member_id=member_id,
            kind=ConsumptionKind.REDEMPTION,
            counterparty_partner_id=partner_id,
            shares=[journal.LotShare(s.lot_id, s.issuing_partner_id, -s.points) for s in restored],
            occurred_at=now,
        )
        await journal.change_wallet(conn, member_id, balance=points)
        await MARK_CANCELLED.execute(conn, entry=entry_id, id=local_id)
        if redemption["reward_id"] is not None:  # the voucher is void; its stock comes back
            await catalog.return_stock(conn, redemption["reward_id"], redemption["quantity"])
        expired = [s for s, c in zip(restored, consumed, strict=True) if c["expired"]]
        unexpired = [s for s, c in zip(restored, consumed, strict=True) if not c["expired"]]
        await events.record_reversed(
            conn,
            member_id,
            partner_id,
            entry_id,
            points,
            ReversalKind.CANCELLATION,
            redemption["order_id"],
            now,
        )
        if expired:
            await journal.expire_lots_now(
                conn,
                member_id=member_id,
                wallet_account_id=wallet.account_id,
                lots=expired,
                occurred_at=now,
            )
            await events.record_expiries(
                conn, [(member_id, s.issuing_partner_id, s.points) for s in expired], now
            )
        if wallet.debt:
            await journal.repay_debt(
                conn,
                member_id=member_id,
                entry_id=entry_id,
                debt=wallet.debt,
                sources=unexpired,
                occurred_at=now,
            )
        await live.notify(conn, member_id, BalanceChangeReason.CANCEL_REDEMPTION, now)
        return {"redemption_id": local_id, "cancellation_id": entry_id, "points": points}

    return Outcome.of(
        await run_idempotent(
            db,
            client_id=principal.client_id,
            key=idempotency_key,
            operation="cancelRedemption",
            request={"redemption": local_id},
            work=work,
        )
    )
