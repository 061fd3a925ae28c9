"""Two-phase redemption at a checkout: authorize (hold), then capture, void, or let it expire.

A hold reserves specific lots, first to expire first, and takes their points out of `available`
from the instant it is made. It is released by a void, by a capture of less than was held, or by
its expiry — which every read honours at once (a hold past `expires_at` is simply not counted);
the worker only records the EXPIRED status. Capture, void and expiry all decide under the member's
wallet lock and the hold's row lock, so exactly one of them wins under any interleaving.

While a hold is live, the lots it reserves are not expired by the worker: the member was at the
till before the points ran out, and the capture spends what was reserved.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from services.ledger import journal, live, policy, spending
from services.ledger.idempotency import run_idempotent
from services.ledger.live import BalanceChangeReason
from services.ledger.models import HoldStatus
from services.ledger.outcomes import MAX_POINTS, Outcome, check_common, linked_member
from services.members import service as members
from services.members import spend_codes
from shared import clock
from shared.access import Principal
from shared.database import Database
from shared.error_codes import UserErrorCode
from shared.errors import DomainError, Validator
from shared.ids import from_global_id
from shared.sql import DbConnection, Sql

MAX_HOLD = timedelta(days=30)
MIN_HOLD = timedelta(seconds=10)

HOLD_EXISTS = Sql("SELECT 1 FROM holds WHERE partner_id = :p AND order_id = :o")
INSERT_HOLD = Sql(
    "INSERT INTO holds (partner_id, member_id, order_id, points, expires_at, created_at)"
    " VALUES (:p, :m, :o, :points, :expires, :now) RETURNING id"
)
INSERT_HOLD_LOTS = Sql(
    "INSERT INTO hold_lots (hold_id, lot_id, issuing_partner_id, points)"
    " SELECT :hold, * FROM unnest(CAST(:lots AS bigint[]), CAST(:issuers AS bigint[]),"
    " CAST(:points AS bigint[]))"
)
HOLD_MEMBER = Sql("SELECT member_id FROM holds WHERE id = :id AND partner_id = :p")
LOCK_HOLD = Sql("SELECT order_id, points, status, expires_at FROM holds WHERE id = :id FOR UPDATE")
HOLD_LOTS = Sql(
    "SELECT lot_id, issuing_partner_id, points FROM hold_lots WHERE hold_id = :id"
    " ORDER BY (SELECT expires_at FROM lots WHERE lots.id = lot_id), lot_id"
)
CLOSE_HOLD = Sql(
    "UPDATE holds SET status = :status, captured_points = :captured, redemption_id = :redemption,"
    " closed_at = :now WHERE id = :id"
)


def _hold_answer(hold_id: int, points: int, status: str, expires_at: datetime) -> dict[str, Any]:
    return {
        "authorization_id": hold_id,
        "points": points,
        "status": status,
        "expires_at": expires_at.isoformat(),
    }


async def authorize_redemption(
    db: Database,
    principal: Principal,
    *,
    idempotency_key: str,
    member_number: str,
    points: int,
    order_id: str,
    expires_in: timedelta,
    member_code: str | None = None,
) -> Outcome:
    """Holds points for a checkout; the member's consent code, when given or required, is
    consumed by the hold (its capture needs none)."""
    partner_id = principal.require_partner("points:redeem")
    v = Validator()
    check_common(v, idempotency_key, order_id)
    members.check_member_number(v, member_number)
    v.check(
        0 < points <= MAX_POINTS,
        "points",
        UserErrorCode.INVALID_AMOUNT,
        f"points must be between 1 and {MAX_POINTS}",
    )
    v.check(
        MIN_HOLD <= expires_in <= MAX_HOLD,
        "expiresIn",
        UserErrorCode.INVALID_DURATION,
        "expiresIn must be between 10 seconds and 30 days",
    )
    v.raise_if_any()
    request = {
        "member": member_number,
        "order": order_id,
        "points": points,
        "expires_in": expires_in.total_seconds(),
    }

    async def work(conn: DbConnection) -> dict[str, Any]:
        now = clock.now()
        member_id = await linked_member(conn, member_number, partner_id)
        wallet = await journal.lock_wallet(conn, member_id)
        if await HOLD_EXISTS.fetchval(conn, p=partner_id, o=order_id):
            raise DomainError.single(
                UserErrorCode.DUPLICATE_ORDER, "an authorization with this orderId exists", "orderId"
            )
        await spending.refuse_duplicate_order(conn, partner_id, order_id)
        code_id = await spend_codes.check(conn, member_id, member_code)
        shares = await spending.reserve(conn, member_id, wallet, points, now)
        expires_at = now + expires_in
        hold_id = await INSERT_HOLD.fetchval(
            conn,
            p=partner_id,
            m=member_id,
            o=order_id,
            points=points,
            expires=expires_at,
            now=now,
        )
        await INSERT_HOLD_LOTS.execute(
            conn,
            hold=hold_id,
            lots=[s.lot_id for s in shares],
            issuers=[s.issuing_partner_id for s in shares],
            points=[s.points for s in shares],
        )
        await spend_codes.consume(conn, code_id)
        await live.notify(conn, member_id, BalanceChangeReason.HOLD, now)
        return _hold_answer(hold_id, points, HoldStatus.ACTIVE, expires_at)

    return Outcome.of(
        await run_idempotent(
            db,
            client_id=principal.client_id,
            key=idempotency_key,
            operation="authorizeRedemption",
            request=request,
            work=work,
        )
    )


def _decode_authorization(v: Validator, authorization_id: str) -> int:
    decoded = from_global_id(authorization_id, "Authorization")
    v.check(
        decoded is not None,
        "authorizationId",
        UserErrorCode.INVALID_ID,
        "authorizationId is not an Authorization id",
    )
    return decoded[1] if decoded else 0


async def _locked_hold(conn: DbConnection, hold_id: int, partner_id: int, now: datetime) -> tuple:
    """Wallet first, then the hold row; refuses a hold that is no longer live."""
    member_id = await HOLD_MEMBER.fetchval(conn, id=hold_id, p=partner_id)
    if member_id is None:  # another partner's authorization looks exactly like none
        raise DomainError.single(
            UserErrorCode.AUTHORIZATION_NOT_FOUND, "no such authorization", "authorizationId"
        )
    wallet = await journal.lock_wallet(conn, member_id)
    hold = await LOCK_HOLD.fetchrow(conn, id=hold_id)
    assert hold is not None
    if hold["status"] != HoldStatus.ACTIVE or hold["expires_at"] <= now:
        state = hold["status"] if hold["status"] != HoldStatus.ACTIVE else HoldStatus.EXPIRED
        raise DomainError.single(
            UserErrorCode.AUTHORIZATION_NOT_ACTIVE,
            f"this authorization is {state.lower()}",
            "authorizationId",
        )
    return member_id, wallet, hold


async def capture_redemption(
    db: Database,
    principal: Principal,
    *,
    idempotency_key: str,
    authorization_id: str,
    points: int | None,
) -> Outcome:
    """Spends all or part of a hold (the rest is released) as one redemption."""
    partner_id = principal.require_partner("points:redeem")
    v = Validator()
    check_common(v, idempotency_key, None)
    hold_id = _decode_authorization(v, authorization_id)
    if points is not None:
        v.check(
            0 < points <= MAX_POINTS,
            "points",
            UserErrorCode.INVALID_AMOUNT,
            f"points must be between 1 and {MAX_POINTS}",
        )
    v.raise_if_any()

    async def work(conn: DbConnection) -> dict[str, Any]:
        now = clock.now()
        member_id, wallet, hold = await _locked_hold(conn, hold_id, partner_id, now)
        wanted = hold["points"] if points is None else points
        if wanted > hold["points"]:
            raise DomainError.single(
                UserErrorCode.INVALID_AMOUNT, f"only {hold['points']} points are held", "points"
            )
        # A hold made before the order was redeemed some other way (its order id reused).
        await spending.refuse_duplicate_order(conn, partner_id, hold["order_id"], open_holds_too=False)
        reserved = [
            journal.LotShare(r["lot_id"], r["issuing_partner_id"], r["points"])
            for r in await HOLD_LOTS.fetch(conn, id=hold_id)
        ]
        spent = await spending.spend(
            conn,
            partner_id=partner_id,
            member_id=member_id,
            wallet=wallet,
            shares=spending.first_points(reserved, wanted),
            order_id=hold["order_id"],
            now=now,
            policy=await policy.current(db, conn),
        )
        await CLOSE_HOLD.execute(
            conn,
            status=HoldStatus.CAPTURED,
            captured=wanted,
            redemption=spent["redemption_id"],
            now=now,
            id=hold_id,
        )
        await live.notify(conn, member_id, BalanceChangeReason.CAPTURE, now)
        return spent

    return Outcome.of(
        await run_idempotent(
            db,
            client_id=principal.client_id,
            key=idempotency_key,
            operation="captureRedemption",
            request={"authorization": hold_id, "points": points},
            work=work,
        )
    )


async def void_redemption(
    db: Database, principal: Principal, *, idempotency_key: str, authorization_id: str
) -> Outcome:
    partner_id = principal.require_partner("points:redeem")
    v = Validator()
    check_common(v, idempotency_key, None)
    hold_id = _decode_authorization(v, authorization_id)
    v.raise_if_any()

    async def work(conn: DbConnection) -> dict[str, Any]:
        now = clock.now()
        member_id, _, hold = await _locked_hold(conn, hold_id, partner_id, now)
        await CLOSE_HOLD.execute(
            conn, status=HoldStatus.VOIDED, captured=None, redemption=None, now=now, id=hold_id
        )
        await live.notify(conn, member_id, BalanceChangeReason.VOID, now)
        return _hold_answer(hold_id, hold["points"], HoldStatus.VOIDED, hold["expires_at"])

    return Outcome.of(
        await run_idempotent(
            db,
            client_id=principal.client_id,
            key=idempotency_key,
            operation="voidRedemption",
            request={"authorization": hold_id},
            work=work,
        )
    )
