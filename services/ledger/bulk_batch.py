"""The one transaction of a bulk earn (`bulk_earn`): a few set-based statements for the batch.

In order: open the wallets of first-time members, lock the batch's wallets in member-id order,
read the keys already answered, write purchases + EARN entries + postings + lots + wallet
balances + the points.earned events (built in SQL, as `events.points_earned` builds them: the
batch's purchases never carry coalition points, which go through the single path) in one
statement, store every answer under its key, extend lots (ACTIVITY_EXTENDS), link first-time
members (with their member.linked events), one `pg_notify` per member. Each is one statement for
the whole batch (arrays through `unnest`), whatever its size.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from services.ledger import accounts, earn, events, live, policy
from services.ledger.idempotency import encode_response
from services.ledger.live import BalanceChangeReason
from services.members import service as members
from services.members import tiers as member_tiers
from services.partners.service import PartnerView
from shared import clock
from shared.error_codes import UserErrorCode
from shared.errors import UserError
from shared.ids import global_id_sql
from shared.money import Money
from shared.sql import DbConnection, Sql

OPERATION = earn.OPERATION  # a bulk item and a single earn share keys: a retry via either replays

LOCK_WALLETS = Sql(
    "SELECT w.member_id, w.account_id, w.debt FROM wallets w JOIN members m ON m.id = w.member_id"
    " WHERE w.member_id = ANY(CAST(:members AS bigint[])) AND m.erased_at IS NULL"
    " ORDER BY w.member_id FOR UPDATE OF w"
)
STORED_MANY = Sql(
    "SELECT key, request_hash, response::text AS response FROM idempotency_keys"
    " WHERE client_id = :client AND key = ANY(CAST(:keys AS text[]))"
)
CLAIM_MANY = Sql(
    "INSERT INTO idempotency_keys (client_id, key, operation, request_hash, response)"
    " SELECT CAST(:client AS text), k, CAST(:operation AS text), h, CAST(r AS jsonb)"
    " FROM unnest(CAST(:keys AS text[]), CAST(:hashes AS text[]), CAST(:responses AS text[])) AS x(k, h, r)"
    " ORDER BY k ON CONFLICT (client_id, key) DO NOTHING RETURNING key"
)
# The single earn's statement (earn.EARN) for many purchases at once: rows for which the order id
# was already taken get no entry, postings, lot or balance, and are missing from the answer.
EARN_MANY = Sql(
    """
WITH x AS (
  SELECT * FROM unnest(CAST(:idx AS int[]), CAST(:m AS bigint[]), CAST(:account AS bigint[]),
                       CAST(:order_id AS text[]), CAST(:amount AS numeric[]), CAST(:points AS bigint[]),
                       CAST(:occurred AS timestamptz[]), CAST(:available AS timestamptz[]),
                       CAST(:expires AS timestamptz[]), CAST(:detail AS text[]),
                       CAST(:number AS text[]))
    AS x(i, m, account, order_id, amount, points, occurred, available, expires, detail, number)
), ids AS (
  SELECT x.*, nextval(pg_get_serial_sequence('journal_entries', 'id')) AS entry_id,
         CASE WHEN x.points > 0 THEN nextval(pg_get_serial_sequence('lots', 'id')) END AS lot_id
  FROM x ORDER BY x.i
), pur AS (
  INSERT INTO purchases (partner_id, order_id, member_id, amount, currency, points_earned,
                         entry_id, lot_id, occurred_at, earn_detail)
  SELECT CAST(:p AS bigint), order_id, m, amount, CAST(:currency AS text), points, entry_id, lot_id,
         occurred, CAST(detail AS jsonb)
  FROM ids ORDER BY i
  ON CONFLICT (partner_id, order_id) DO NOTHING
  RETURNING entry_id
), done AS (
  SELECT ids.* FROM ids JOIN pur USING (entry_id)
), e AS (
  INSERT INTO journal_entries (id, kind, member_id, partner_id, points, order_id, occurred_at)
  SELECT entry_id, 'EARN', m, CAST(:p AS bigint), points, order_id, occurred FROM done ORDER BY i
), po AS (
  INSERT INTO postings (entry_id, account_id, amount)
  SELECT done.entry_id, v.account_id, v.amount
  FROM done, LATERAL (VALUES (CAST(:issuance AS bigint), -done.points), (done.account, done.points))
    AS v(account_id, amount)
  WHERE done.points > 0 ORDER BY done.i
), l AS (
  INSERT INTO lots (id, member_id, issuing_partner_id, earn_entry_id, points, remaining,
                    earned_at, available_at, expires_at, activated_at)
  SELECT lot_id, m, CAST(:p AS bigint), entry_id, points, points, occurred, available, expires,
         CASE WHEN available <= CAST(:now AS timestamptz) THEN CAST(:now AS timestamptz) END
  FROM done WHERE lot_id IS NOT NULL ORDER BY i
), wu AS (
  UPDATE wallets w SET balance = w.balance + s.points
  FROM (SELECT m, sum(points) AS points FROM done GROUP BY m) AS s
  WHERE w.member_id = s.m AND s.points <> 0
), ev AS (  -- points.earned of each purchase that earned points (events.points_earned, in SQL)
  INSERT INTO outbox_events (event_id, type, version, occurred_at, member_id, partner_ids, data)
  SELECT gen_random_uuid(), 'points.earned', 1, CAST(:now AS timestamptz), m, ARRAY[CAST(:p AS bigint)],
         jsonb_build_object(
           'memberNumber', number, 'partnerId', CAST(:partner_gid AS text), 'points', points,
           'status', CASE WHEN available <= CAST(:now AS timestamptz) THEN 'AVAILABLE' ELSE 'PENDING' END,
           'orderId', order_id, 'source', 'PURCHASE', 'coalitionPoints', 0,
           'transactionId', {transaction_gid})
  FROM done WHERE points > 0 ORDER BY i
)
SELECT i, entry_id FROM done
""".replace("{transaction_gid}", global_id_sql("Transaction", "entry_id"))
)
EXTEND_MANY = Sql(
    "UPDATE lots SET expires_at = CAST(:until AS timestamptz)"
    " WHERE member_id = ANY(CAST(:members AS bigint[])) AND remaining > 0 AND expired_at IS NULL"
    " AND expires_at > CAST(:now AS timestamptz) AND expires_at < CAST(:until AS timestamptz)"
)


@dataclass(frozen=True)
class PurchaseItem:
    """One purchase of a batch, its points decided by the caller (the earning service), as
    `earn.record_purchase` takes them: `decision` when known before any lock (written set-based),
    or `decide` when it needs the member's wallet lock (a cap per member: the single path).
    `request_extra` is what the idempotency key names beyond the plain fields, as for a single
    earn, so a retry through either mutation replays. `checked`: see the field."""

    idempotency_key: str
    member_number: str
    order_id: str
    amount: Money
    occurred_at: datetime | None = None
    decision: earn.EarnDecision | None = None
    decide: earn.Decide | None = None
    request_extra: dict[str, Any] | None = None
    # The caller ran `earn.check_purchase` on exactly these fields (the earning service does, on
    # every purchase): the ledger does not run it a second time. The other checks it still runs.
    checked: bool = False

    def request(self) -> dict[str, Any]:
        return earn.purchase_request(
            self.member_number, self.order_id, self.amount, self.occurred_at, self.request_extra
        )


class LostKeyRace(Exception):
    """A key we read as free was answered by a racing writer before our claim: run again."""


@dataclass
class BatchItem:
    """A purchase of the batch on its way through: its terms once decided, its answer once known."""

    index: int
    purchase: PurchaseItem
    request_hash: str = ""
    member_id: int | None = None
    enrolled: bool = False
    earn: earn.Earn | None = None
    response: dict[str, Any] | None = None  # what is stored under its key (and answered)
    replayed: bool = False  # the response is the key's stored answer


def user_error(code: UserErrorCode, field: str, message: str) -> dict[str, str | None]:
    return UserError(code=code, field=field, message=message).as_dict()


async def write_batch(
    conn: DbConnection,
    client_id: str,
    partner_id: int,
    issuance: int,
    batch: list[BatchItem],
    now: datetime,
    expiry: policy.Policy,
    partner: PartnerView,
    tiers: member_tiers.TierSet | None = None,
) -> list[BatchItem]:
    """The batch's transaction; returns the items left to the general path (debts to repay)."""
    async with conn.transaction():
        member_ids = sorted({i.member_id for i in batch if i.member_id is not None})
        # A member's first earn opens their wallet (one statement for the batch's new members).
        await accounts.open_wallets(conn, member_ids)
        wallets = {r["member_id"]: r for r in await LOCK_WALLETS.fetch(conn, members=member_ids)}
        stored = {
            r["key"]: r
            for r in await STORED_MANY.fetch(
                conn, client=client_id, keys=[i.purchase.idempotency_key for i in batch]
            )
        }
        later: list[BatchItem] = []
        to_earn: list[BatchItem] = []
        to_claim: list[BatchItem] = []
        for item in batch:
            previous = stored.get(item.purchase.idempotency_key)
            item.replayed = previous is not None
            if previous is not None:
                item.response = _replayed(previous, item.request_hash)
            elif item.earn is None:  # unknown member: the answer is stored as a single earn stores it
                to_claim.append(item)
            else:
                wallet = wallets.get(item.member_id)
                if wallet is None or wallet["debt"] > 0:  # None: erased since the lookup
                    later.append(item)
                else:
                    to_earn.append(item)
        done = await _earn_rows(conn, partner_id, partner.currency, issuance, to_earn, wallets, now)
        for item in to_earn:
            assert item.earn is not None
            entry_id = done.get(item.index)
            if entry_id is None:
                item.response = {
                    "errors": [
                        user_error(
                            UserErrorCode.DUPLICATE_ORDER,
                            "orderId",
                            "a purchase with this orderId was already recorded",
                        )
                    ]
                }
            else:
                item.response = {"ok": item.earn.answer(entry_id)}
            to_claim.append(item)
        if to_claim:
            claimed = await CLAIM_MANY.fetch(
                conn,
                client=client_id,
                operation=OPERATION,
                keys=[i.purchase.idempotency_key for i in to_claim],
                hashes=[i.request_hash for i in to_claim],
                responses=[encode_response(i.response) for i in to_claim],
            )
            if len(claimed) != len(to_claim):
                raise LostKeyRace()
        earned = [i for i in to_earn if i.index in done]
        earners = sorted({i.earn.member_id for i in earned if i.earn is not None})
        if expiry.activity_extends and earners:
            until = clock.add_months(now, expiry.months)
            await EXTEND_MANY.execute(conn, members=earners, now=now, until=until)
        # Presenting the card is consent: an earn that gives points links a member not yet linked
        # (after EARN_MANY wrote the points.earned events, as a single earn writes its event
        # before the link it makes).
        newly_linked = {
            i.earn.member_id: i.purchase.member_number
            for i in earned
            if i.earn and not i.enrolled and i.earn.points > 0
        }
        await members.link_members(conn, newly_linked, partner_id)
        if tiers and earners:  # upgrades at once, set-wise, in the batch's transaction
            await earn.raise_tiers(conn, tiers, earners, now)
        await live.notify_many(conn, earners, BalanceChangeReason.EARN, now)
    return later


async def _earn_rows(
    conn: DbConnection,
    partner_id: int,
    currency: str,
    issuance: int,
    items: list[BatchItem],
    wallets: dict[int, Any],
    now: datetime,
) -> dict[int, int]:
    """Item index -> its EARN entry id, for the purchases whose order id was still free."""
    if not items:
        return {}
    terms = [i.earn for i in items if i.earn is not None]
    rows = await EARN_MANY.fetch(
        conn,
        idx=[i.index for i in items],
        m=[t.member_id for t in terms],
        account=[wallets[t.member_id]["account_id"] for t in terms],
        order_id=[t.order_id for t in terms],
        amount=[t.amount.amount for t in terms],
        points=[t.points for t in terms],
        occurred=[t.occurred_at for t in terms],
        available=[t.available_at for t in terms],
        expires=[t.expires_at for t in terms],
        detail=[t.detail for t in terms],
        number=[t.member_number for t in terms],
        partner_gid=events.partner_gid(partner_id),
        p=partner_id,
        currency=currency,
        issuance=issuance,
        now=now,
    )
    return {r["i"]: r["entry_id"] for r in rows}


def _replayed(previous: Any, request_hash: str) -> dict[str, Any]:
    """The stored answer to a key, or IDEMPOTENCY_KEY_REUSED (as `idempotency.replay`)."""
    if previous["request_hash"] != request_hash:
        return {
            "errors": [
                user_error(
                    UserErrorCode.IDEMPOTENCY_KEY_REUSED,
                    "idempotencyKey",
                    "this idempotencyKey was used before with a different request",
                )
            ]
        }
    answer: dict[str, Any] = json.loads(previous["response"])
    return answer
