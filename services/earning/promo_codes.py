"""Using promo codes on a purchase (`claim`) and giving a use back when the purchase is fully
refunded (`release`). Both run inside the ledger's transaction, after the member's wallet row is
locked (the earn's `decide`, the refund's `on_refunded`), so they commit or roll back with it.

What a code answers, per code named on the purchase:
- UNLOCKED: it unlocks its promotion (the engine then decides whether the promotion applies);
- INVALID: malformed, wrong check character (caught without a lookup), unknown, or a code of
  another partner's promotion (the same answer as unknown: no oracle);
- EXPIRED: its batch's expiresAt, or its promotion's end or archiving, is at or before the
  purchase's occurredAt (a purchase recorded late keeps a code that was good at the till);
- USED: usesPerCode reached, the member's usesPerMember of the batch reached, or the same code
  named twice on the purchase.

Exactness: a code's `uses` moves only by `UPDATE … WHERE uses < uses_per_code`: under concurrent
purchases the row lock serialises them and each re-checks the guard on the row it finally sees, so
a code with usesPerCode N is used exactly N times however many purchases race for it. A member's
count (promo_code_uses not released) is read under that member's wallet lock, which every earn
and refund of the member takes first, so it is exact too. Codes are locked in id order (and
before any promotion row), so two purchases naming the same codes cannot deadlock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from services.earning import promo_code_format as fmt
from shared import clock
from shared.sql import DbConnection, Sql

FIND = Sql(
    "SELECT c.id, c.code, b.id AS batch_id, b.partner_id, b.uses_per_code, b.uses_per_member,"
    " b.expires_at, b.promotion_id, p.ends_at, p.archived_at"
    " FROM promo_codes c JOIN promo_code_batches b ON b.id = c.batch_id"
    " JOIN promotions p ON p.id = b.promotion_id"
    " WHERE c.code = ANY(CAST(:codes AS text[])) ORDER BY c.id"
)
USE = Sql(
    """
WITH mine AS (
  SELECT count(*) AS n FROM promo_code_uses
  WHERE batch_id = :batch AND member_id = :member AND released_at IS NULL
), up AS (
  UPDATE promo_codes SET uses = uses + 1
  WHERE id = :code AND uses < :per_code
    AND (CAST(:per_member AS bigint) IS NULL OR (SELECT n FROM mine) < CAST(:per_member AS bigint))
  RETURNING id
), ins AS (
  INSERT INTO promo_code_uses (code_id, batch_id, member_id, partner_id, order_id, used_at)
  SELECT id, :batch, :member, :partner, :order_id, :now FROM up
)
SELECT EXISTS (SELECT 1 FROM up)
"""
)
RELEASE_USES = Sql(
    "UPDATE promo_code_uses SET released_at = :now"
    " WHERE partner_id = :partner AND order_id = :order_id AND released_at IS NULL RETURNING code_id"
)
LOCK_CODES = Sql("SELECT id FROM promo_codes WHERE id = ANY(CAST(:ids AS bigint[])) ORDER BY id FOR UPDATE")
GIVE_BACK = Sql("UPDATE promo_codes SET uses = uses - 1 WHERE id = :id")


class CodeStatus(StrEnum):
    """What a code named on a purchase did (stored in the purchase's document)."""

    UNLOCKED = "UNLOCKED"
    INVALID = "INVALID"
    EXPIRED = "EXPIRED"
    USED = "USED"


@dataclass(frozen=True)
class CodeOutcome:
    code: str  # as the partner sent it
    status: CodeStatus
    promotion_id: int | None = None  # set when UNLOCKED


@dataclass(frozen=True)
class ClaimResult:
    """One outcome per code, in the order the purchase named them."""

    outcomes: tuple[CodeOutcome, ...]

    @property
    def unlocked(self) -> frozenset[int]:
        """The promotions the codes unlock, for the engine's `requires_code` promotions."""
        return frozenset(o.promotion_id for o in self.outcomes if o.promotion_id is not None)


async def claim(
    conn: DbConnection,
    *,
    member_id: int,
    partner_id: int,
    order_id: str,
    codes: tuple[str, ...],
    at: datetime,
) -> ClaimResult:
    """Uses each code that can be used, once, for this purchase (recorded by its order id, which
    is unique per partner); the caller holds the member's wallet lock inside its transaction."""
    status: list[CodeOutcome | None] = [None] * len(codes)
    first_at: dict[str, int] = {}
    for i, sent in enumerate(codes):
        code = fmt.normalise(sent)
        if not fmt.is_well_formed(code):
            status[i] = CodeOutcome(sent, CodeStatus.INVALID)
        elif code in first_at:
            status[i] = CodeOutcome(sent, CodeStatus.USED)  # named twice: used once at most
        else:
            first_at[code] = i
    rows = await FIND.fetch(conn, codes=list(first_at)) if first_at else []
    now = clock.now()
    for row in rows:  # in id order: the lock order
        i = first_at.pop(row["code"])
        sent = codes[i]
        if row["partner_id"] is not None and row["partner_id"] != partner_id:
            status[i] = CodeOutcome(sent, CodeStatus.INVALID)
            continue
        ends = [t for t in (row["expires_at"], row["ends_at"], row["archived_at"]) if t is not None]
        if any(t <= at for t in ends):
            status[i] = CodeOutcome(sent, CodeStatus.EXPIRED)
            continue
        used = await USE.fetchval(
            conn,
            batch=row["batch_id"],
            member=member_id,
            code=row["id"],
            per_code=row["uses_per_code"],
            per_member=row["uses_per_member"],
            partner=partner_id,
            order_id=order_id,
            now=now,
        )
        status[i] = (
            CodeOutcome(sent, CodeStatus.UNLOCKED, row["promotion_id"])
            if used
            else CodeOutcome(sent, CodeStatus.USED)
        )
    for i in first_at.values():  # well formed, but no such code
        status[i] = CodeOutcome(codes[i], CodeStatus.INVALID)
    return ClaimResult(tuple(o for o in status if o is not None))


async def release(conn: DbConnection, *, partner_id: int, order_id: str) -> int:
    """Gives back every use of a code on this purchase (its use rows are kept, marked released):
    how many uses came back. Called by a FULL refund only; a partial refund keeps the code used."""
    code_ids = [
        r["code_id"]
        for r in await RELEASE_USES.fetch(conn, now=clock.now(), partner=partner_id, order_id=order_id)
    ]
    if not code_ids:
        return 0
    await LOCK_CODES.fetch(conn, ids=sorted(set(code_ids)))  # in id order, as claim locks them
    for code_id in code_ids:
        await GIVE_BACK.execute(conn, id=code_id)
    return len(code_ids)
