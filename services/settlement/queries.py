"""Reading stored settlement runs: a run with its statements, a page of runs, and what one
partner may see of a run (its own statement, never another's totals).

Runs are read with their lines in two statements whatever their number, so a page of runs, or
every run a GraphQL request names (batched by a DataLoader), is one read.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal

from services.settlement.compute import Line
from services.settlement.models import PaymentDirection, RunStatus
from shared.access import Principal
from shared.database import Database
from shared.money import minor_units
from shared.pagination import Page, decode_cursor, make_page, page_size
from shared.sql import DbConnection, Sql, transaction

RUNS = Sql(
    "SELECT id, period_start, period_end, status, currency, content_hash, recorded_before,"
    " finalized_over_open_disputes FROM settlement_runs WHERE id = ANY(CAST(:ids AS bigint[]))"
)
LINES = Sql(
    "SELECT l.run_id, l.partner_id, l.counterparty_partner_id, l.kind, l.points, l.amount,"
    " l.original_run_id, l.adjusted_kind, o.period_start AS original_start, o.period_end AS original_end"
    " FROM settlement_lines l LEFT JOIN settlement_runs o ON o.id = l.original_run_id"
    " WHERE l.run_id = ANY(CAST(:ids AS bigint[])) ORDER BY l.run_id, l.partner_id NULLS FIRST, l.kind,"
    " l.original_run_id NULLS FIRST, l.adjusted_kind NULLS FIRST, l.counterparty_partner_id NULLS FIRST"
)
LIST_RUNS = Sql(
    "SELECT id FROM settlement_runs WHERE (CAST(:after AS bigint) IS NULL OR id < :after)"
    " AND (NOT CAST(:final_only AS boolean) OR status <> 'DRAFT') ORDER BY id DESC LIMIT :limit"
)


@dataclass(frozen=True)
class Statement:
    partner_id: int | None  # None: the coalition's own
    lines: list[Line]

    @property
    def net(self) -> Decimal:
        return sum((line.amount for line in self.lines), Decimal(0))

    @property
    def direction(self) -> PaymentDirection | None:
        """PAY_IN: the partner pays the clearing house; PAY_OUT: it is paid; None when zero."""
        if self.net == 0:
            return None
        return PaymentDirection.PAY_OUT if self.net > 0 else PaymentDirection.PAY_IN


@dataclass(frozen=True)
class Run:
    id: int
    period_start: datetime
    period_end: datetime
    status: RunStatus
    currency: str
    content_hash: str
    recorded_before: datetime
    statements: list[Statement] = field(default_factory=list)
    # Periods of the finalized runs this run's ADJUSTMENT lines name.
    original_periods: dict[int, tuple[datetime, datetime]] = field(default_factory=dict)
    finalized_over_open_disputes: int = 0
    # Only on the run `run_settlement` returns: the overlapping DRAFT runs it replaced (deleted),
    # so whoever started it can say so; a stored run does not remember them.
    replaced_draft_ids: tuple[int, ...] = ()

    @property
    def lines(self) -> list[Line]:
        return [line for s in self.statements for line in s.lines]


def statements_of(lines: list[Line]) -> list[Statement]:
    """The lines grouped by whose statement they are on: the coalition's first, then by partner."""
    grouped: dict[int | None, list[Line]] = defaultdict(list)
    for line in lines:
        grouped[line.partner_id].append(line)
    return [Statement(p, grouped[p]) for p in sorted(grouped, key=lambda p: (p is not None, p or 0))]


async def load_runs(conn: DbConnection, run_ids: list[int]) -> dict[int, Run]:
    """Runs with their lines, two queries whatever their number (a page of runs is one read)."""
    rows = {r["id"]: r for r in await RUNS.fetch(conn, ids=run_ids)}
    lines: dict[int, list[Line]] = defaultdict(list)
    originals: dict[int, dict[int, tuple[datetime, datetime]]] = defaultdict(dict)
    for r in await LINES.fetch(conn, ids=list(rows)):
        unit = Decimal(1).scaleb(-minor_units(rows[r["run_id"]]["currency"]))
        lines[r["run_id"]].append(
            Line(
                r["partner_id"],
                r["counterparty_partner_id"],
                r["kind"],
                r["points"],
                r["amount"].quantize(unit) + 0,
                r["original_run_id"],
                r["adjusted_kind"],
            )
        )
        if r["original_run_id"] is not None:
            originals[r["run_id"]][r["original_run_id"]] = (r["original_start"], r["original_end"])
    return {
        i: Run(
            row["id"],
            row["period_start"],
            row["period_end"],
            RunStatus(row["status"]),
            row["currency"],
            row["content_hash"],
            row["recorded_before"],
            statements_of(lines[i]),
            originals[i],
            row["finalized_over_open_disputes"],
        )
        for i, row in rows.items()
    }


async def load_run(conn: DbConnection, run_id: int) -> Run | None:
    return (await load_runs(conn, [run_id])).get(run_id)


def own_statement(run: Run, partner_id: int) -> Run:
    """The run as one partner may see it: its own statement only, never another's totals."""
    return replace(run, statements=[s for s in run.statements if s.partner_id == partner_id])


def _reader(principal: Principal) -> int | None:
    """Admins (admin:settlement) read whole runs; a partner (settlement:read) its own statement:
    the partner's id, or None for an admin."""
    if principal.is_admin:
        principal.require("admin:settlement")
        return None
    return principal.require_partner("settlement:read")


async def get_runs(db: Database, principal: Principal, run_ids: list[int]) -> dict[int, Run]:
    """Runs by id as `principal` may see them (see `get_run`); unknown ids are left out. One read
    for any number of runs: a GraphQL request's runs come through one DataLoader."""
    partner_id = _reader(principal)
    async with transaction(db) as conn:
        runs = await load_runs(conn, run_ids)
    if partner_id is None:
        return runs
    return {i: own_statement(run, partner_id) for i, run in runs.items()}


async def get_run(db: Database, principal: Principal, run_id: int) -> Run | None:
    """A whole run (admins); a partner gets its own statement only. Partners see DRAFT runs too
    (marked DRAFT): they need the provisional figures to reconcile before the run is final."""
    return (await get_runs(db, principal, [run_id])).get(run_id)


async def list_runs(db: Database, principal: Principal, *, first: int | None, after: str | None) -> Page[Run]:
    """Newest first: every run for admins; for a partner, its own statement of each finalized run."""
    size = page_size(first)
    position = decode_cursor(after)
    partner_id = _reader(principal)
    async with transaction(db) as conn:
        ids = [
            r["id"]
            for r in await LIST_RUNS.fetch(
                conn, after=position, final_only=partner_id is not None, limit=size + 1
            )
        ]
        found = await load_runs(conn, ids)
    runs = [found[i] for i in ids if i in found]
    if partner_id is not None:
        runs = [own_statement(run, partner_id) for run in runs]
    return make_page(runs, size, lambda r: r.id)
