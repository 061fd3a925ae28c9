"""Reconciliation: a partner's own record of a run's period, matched against the ledger.

The partner's file (CSV: orderId, kind, points, occurredAt) and the ledger's entries at that
partner are each summed per (order, kind) and compared in one SQL statement. The ledger side is
what the run settled: entries in its period recorded before its cutoff; a late arrival shows as
missing in the ledger here and is settled by the next run. Anything but a match is a dispute an
admin resolves with a note; a run cannot be finalized over open disputes unless the admin says so.

A file is parsed whole before anything is written, and every bad row is reported with its line
number; an upload replaces the partner's previous one for the run, in the same transaction. Only
a DRAFT run takes uploads: a final run keeps its disputes and their notes as they were. Every
dispute an upload finds writes dispute.opened in the upload's transaction (a replacing upload's
disputes are new items, with events of their own).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from asyncpg import Record

from services.partners import service as partners
from services.settlement import events
from services.settlement.models import ReconciliationStatus
from services.settlement.reconciliation_csv import KINDS, parse_csv
from shared import audit_log
from shared.access import Principal
from shared.database import Database
from shared.error_codes import UserErrorCode
from shared.errors import DomainError, Forbidden, InputError, UserError, Validator
from shared.pagination import Page, decode_cursor, make_page, page_size
from shared.sql import Sql, transaction

MAX_NOTE = 2000

# The run's row is locked for the upload's transaction: uploads to one run take turns (a second
# upload of the same partner replaces the first instead of colliding with it), and finalizing,
# which locks the row too, counts the open disputes only once no upload is half-way.
RUN_PERIOD = Sql(
    "SELECT period_start, period_end, recorded_before, status FROM settlement_runs WHERE id = :id FOR UPDATE"
)
REPLACE = Sql("DELETE FROM reconciliations WHERE run_id = :run AND partner_id = :partner")
INSERT = Sql(
    "INSERT INTO reconciliations (run_id, partner_id, submitted_by, rows)"
    " VALUES (:run, :partner, :by, :rows) RETURNING id"
)
MATCH = Sql(
    """
WITH l AS (
  SELECT order_id, kind, SUM(abs(points)) AS points FROM ledger_entries_recorded
  WHERE partner_id = :partner AND occurred_at >= :start AND occurred_at < :end
    AND recorded_at < :cutoff AND kind = ANY(CAST(:kinds AS text[])) AND order_id IS NOT NULL
  GROUP BY 1, 2
),
f AS (
  SELECT order_id, kind, SUM(points) AS points
  FROM unnest(CAST(:orders AS text[]), CAST(:file_kinds AS text[]), CAST(:points AS bigint[]))
    AS u(order_id, kind, points)
  GROUP BY 1, 2
)
INSERT INTO reconciliation_items (reconciliation_id, order_id, kind, ledger_points, partner_points, status)
SELECT CAST(:rec AS bigint), COALESCE(l.order_id, f.order_id), COALESCE(l.kind, f.kind), l.points, f.points,
       CASE WHEN l.points IS NULL THEN 'MISSING_IN_LEDGER'
            WHEN f.points IS NULL THEN 'MISSING_IN_PARTNER_FILE'
            WHEN l.points = f.points THEN 'MATCHED'
            ELSE 'POINTS_MISMATCH' END
FROM l FULL JOIN f ON f.order_id = l.order_id AND f.kind = l.kind
RETURNING id, order_id, kind, status
"""
)
SUMMARY = """
SELECT r.id, r.run_id, r.partner_id, r.rows, r.submitted_at, r.submitted_by,
       count(*) FILTER (WHERE i.status = 'MATCHED') AS matched,
       count(*) FILTER (WHERE i.status = 'MISSING_IN_LEDGER') AS missing_in_ledger,
       count(*) FILTER (WHERE i.status = 'MISSING_IN_PARTNER_FILE') AS missing_in_partner_file,
       count(*) FILTER (WHERE i.status = 'POINTS_MISMATCH') AS points_mismatch,
       count(*) FILTER (WHERE i.status <> 'MATCHED' AND i.resolved_at IS NULL) AS open_disputes
FROM reconciliations r LEFT JOIN reconciliation_items i ON i.reconciliation_id = r.id
"""
RECONCILIATION = Sql(SUMMARY + " WHERE r.id = :id GROUP BY r.id")
RUNS_RECONCILIATIONS = Sql(
    SUMMARY + " WHERE r.run_id = ANY(CAST(:runs AS bigint[]))"
    " AND (CAST(:partner AS bigint) IS NULL OR r.partner_id = :partner)"
    " GROUP BY r.id ORDER BY r.run_id, r.partner_id"
)
# One page of items for each of several reconciliations asking the same page (one statement for
# all the reconciliations a GraphQL request lists).
ITEMS = Sql(
    "SELECT q.rec, i.* FROM unnest(CAST(:recs AS bigint[])) AS q(rec) CROSS JOIN LATERAL ("
    " SELECT id, order_id, kind, ledger_points, partner_points, status, resolution_note, resolved_by,"
    " resolved_at FROM reconciliation_items WHERE reconciliation_id = q.rec"
    " AND (CAST(:status AS text) IS NULL OR status = :status)"
    " AND (NOT CAST(:disputes_only AS boolean) OR status <> 'MATCHED')"
    " AND (CAST(:after AS bigint) IS NULL OR id > :after) ORDER BY id LIMIT :limit) AS i"
)
ITEM_FOR_UPDATE = Sql("SELECT status, resolved_at FROM reconciliation_items WHERE id = :id FOR UPDATE")
RESOLVE = Sql(
    "UPDATE reconciliation_items SET resolution_note = :note, resolved_by = :by, resolved_at = now()"
    " WHERE id = :id RETURNING id, order_id, kind, ledger_points, partner_points, status,"
    " resolution_note, resolved_by, resolved_at"
)


@dataclass(frozen=True)
class Reconciliation:
    id: int
    run_id: int
    partner_id: int
    rows: int
    submitted_at: datetime
    submitted_by: str
    counts: dict[str, int]
    open_disputes: int


@dataclass(frozen=True)
class Item:
    id: int
    order_id: str
    kind: str
    ledger_points: int | None
    partner_points: int | None
    status: str
    resolution_note: str | None
    resolved_by: str | None
    resolved_at: datetime | None


@dataclass(frozen=True)
class ItemsPage:
    """One page of a reconciliation's items, as asked for (validated): a DataLoader key."""

    reconciliation_id: int
    partner_id: int  # whose reconciliation it is: who may read it
    status: str | None
    disputes_only: bool
    size: int
    after: int | None


def reconciling_partner(principal: Principal, partner_id: int | None) -> int:
    """The partner whose file this is: partners reconcile only themselves; an admin names the
    partner it acts for. Pure (no I/O), so the HTTP upload checks it before reading the file."""
    if principal.is_admin:
        principal.require("admin:settlement")
        if partner_id is None:
            raise InputError(
                [UserError(UserErrorCode.REQUIRED, "partnerId", "an admin must name the partner")]
            )
        return partner_id
    own = principal.require_partner("settlement:reconcile")
    if partner_id is not None and partner_id != own:
        raise Forbidden("a partner reconciles only its own statement")
    return own


async def submit_reconciliation(
    db: Database, principal: Principal, *, run_id: int, partner_id: int | None, csv_text: str
) -> Reconciliation:
    partner = reconciling_partner(principal, partner_id)
    async with transaction(db) as conn:
        run = await RUN_PERIOD.fetchrow(conn, id=run_id)
        if run is None:
            raise DomainError.single(UserErrorCode.RUN_NOT_FOUND, "no such settlement run", "runId")
        if run["status"] != "DRAFT":
            # A final run's record (its disputes and their notes) is kept as it was; a difference
            # found later is corrected in the ledger and settled by the next run.
            raise DomainError.single(
                UserErrorCode.RUN_FINAL,
                f"run {run_id} is {run['status']}: reconcile a run before it is finalized",
                "runId",
            )
        if await partners.get_partner(conn, partner) is None:
            raise DomainError.single(UserErrorCode.PARTNER_NOT_FOUND, "no such partner", "partnerId")
        rows = parse_csv(csv_text, (run["period_start"], run["period_end"]))
        await REPLACE.execute(conn, run=run_id, partner=partner)
        rec = await INSERT.fetchval(conn, run=run_id, partner=partner, by=principal.client_id, rows=len(rows))
        matched = await MATCH.fetch(
            conn,
            rec=rec,
            partner=partner,
            start=run["period_start"],
            end=run["period_end"],
            cutoff=run["recorded_before"],
            kinds=list(KINDS),
            orders=[r.order_id for r in rows],
            file_kinds=[r.kind for r in rows],
            points=[r.points for r in rows],
        )
        await events.record_disputes(conn, run_id, partner, [m for m in matched if m["status"] != "MATCHED"])
        if principal.is_admin:
            await audit_log.record_on(
                conn, principal, "settlement.reconcile", f"Reconciliation:{rec}", {"partnerId": partner}
            )
        found = await RECONCILIATION.fetchrow(conn, id=rec)
    assert found is not None
    return _reconciliation(found)


def _reconciliation(r: Record) -> Reconciliation:
    return Reconciliation(
        id=r["id"],
        run_id=r["run_id"],
        partner_id=r["partner_id"],
        rows=r["rows"],
        submitted_at=r["submitted_at"],
        submitted_by=r["submitted_by"],
        counts={
            ReconciliationStatus.MATCHED: r["matched"],
            ReconciliationStatus.MISSING_IN_LEDGER: r["missing_in_ledger"],
            ReconciliationStatus.MISSING_IN_PARTNER_FILE: r["missing_in_partner_file"],
            ReconciliationStatus.POINTS_MISMATCH: r["points_mismatch"],
        },
        open_disputes=r["open_disputes"],
    )


def _own_partner(principal: Principal) -> int:
    """A partner reads its reconciliations with either settlement scope: the one that uploads
    must be able to read what its upload found."""
    if "settlement:reconcile" in principal.scopes:
        return principal.require_partner("settlement:reconcile")
    return principal.require_partner("settlement:read")


def _visible(principal: Principal, rec: Reconciliation | ItemsPage) -> bool:
    if principal.is_admin:
        principal.require("admin:settlement")
        return True
    return rec.partner_id == _own_partner(principal)


async def get_reconciliation(db: Database, principal: Principal, rec_id: int) -> Reconciliation | None:
    async with transaction(db) as conn:
        found = await RECONCILIATION.fetchrow(conn, id=rec_id)
    if found is None:
        return None
    rec = _reconciliation(found)
    return rec if _visible(principal, rec) else None


async def runs_reconciliations(
    db: Database, principal: Principal, run_ids: list[int]
) -> dict[int, list[Reconciliation]]:
    """Each run's reconciliations, by partner: all of them for admins, the partner's own for a
    partner. One statement for any number of runs (a GraphQL request's come through a DataLoader)."""
    own = None
    if principal.is_admin:
        principal.require("admin:settlement")
    else:
        own = _own_partner(principal)
    async with transaction(db) as conn:
        found = await RUNS_RECONCILIATIONS.fetch(conn, runs=run_ids, partner=own)
    by_run: dict[int, list[Reconciliation]] = {i: [] for i in run_ids}
    for r in found:
        by_run[r["run_id"]].append(_reconciliation(r))
    return by_run


async def run_reconciliations(db: Database, principal: Principal, run_id: int) -> list[Reconciliation]:
    return (await runs_reconciliations(db, principal, [run_id]))[run_id]


def _item(r: Record) -> Item:
    return Item(**{k: r[k] for k in Item.__dataclass_fields__})


def items_page(
    rec: Reconciliation, *, status: str | None, disputes_only: bool, first: int | None, after: str | None
) -> ItemsPage:
    """The page asked for, checked (a bad page size or cursor is the caller's to fix)."""
    return ItemsPage(rec.id, rec.partner_id, status, disputes_only, page_size(first), decode_cursor(after))


async def item_pages(db: Database, principal: Principal, asked: list[ItemsPage]) -> list[Page[Item]]:
    """The pages asked for, in order: one statement per distinct page shape (status, filter, size,
    cursor), whatever the number of reconciliations."""
    for page in asked:
        if not _visible(principal, page):
            raise Forbidden("not your reconciliation")
    by_shape: dict[tuple[str | None, bool, int, int | None], list[ItemsPage]] = defaultdict(list)
    for page in asked:
        by_shape[(page.status, page.disputes_only, page.size, page.after)].append(page)
    rows: dict[ItemsPage, list[Item]] = {page: [] for page in asked}
    async with transaction(db) as conn:
        for (status, disputes_only, size, after), pages in by_shape.items():
            wanted = {p.reconciliation_id: p for p in pages}
            for r in await ITEMS.fetch(
                conn,
                recs=list(wanted),
                status=status,
                disputes_only=disputes_only,
                after=after,
                limit=size + 1,
            ):
                rows[wanted[r["rec"]]].append(_item(r))
    return [make_page(rows[p], p.size, lambda i: i.id) for p in asked]


async def items(
    db: Database,
    principal: Principal,
    rec: Reconciliation,
    *,
    status: str | None,
    disputes_only: bool,
    first: int | None,
    after: str | None,
) -> Page[Item]:
    page = items_page(rec, status=status, disputes_only=disputes_only, first=first, after=after)
    return (await item_pages(db, principal, [page]))[0]


async def resolve_dispute(db: Database, principal: Principal, *, item_id: int, note: str) -> Item:
    """Closes a dispute with the admin's note (what was agreed, and what was done about it)."""
    principal.require_admin("admin:settlement")
    v = Validator()
    v.text(note.strip() if note else note, "note", max_length=MAX_NOTE)
    v.raise_if_any()
    async with transaction(db) as conn:
        item = await ITEM_FOR_UPDATE.fetchrow(conn, id=item_id)
        if item is None:
            raise DomainError.single(UserErrorCode.ITEM_NOT_FOUND, "no such reconciliation item", "itemId")
        if item["status"] == ReconciliationStatus.MATCHED:
            raise DomainError.single(
                UserErrorCode.NOT_A_DISPUTE, "a matched item has nothing to resolve", "itemId"
            )
        if item["resolved_at"] is not None:
            raise DomainError.single(
                UserErrorCode.ALREADY_RESOLVED, "this dispute was already resolved", "itemId"
            )
        row = await RESOLVE.fetchrow(conn, note=note.strip(), by=principal.client_id, id=item_id)
        await audit_log.record_on(
            conn,
            principal,
            "settlement.resolve_dispute",
            f"ReconciliationItem:{item_id}",
            {"note": note.strip()},
        )
    return _item(row)
