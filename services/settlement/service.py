"""Settlement runs: compute a period, finalize it (immutable, hashed), mark it paid.

A run is computed from the ledger by one aggregate query (`compute`), netted through the
coalition as clearing house, and stored as statement lines. Re-running a DRAFT for the same period
replaces it; a FINALIZED run is immutable and no later run may overlap it. Two runs never happen
at once: the run takes a transaction-level advisory lock and a second one is told so.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal

from services.settlement.compute import Line, compute
from services.settlement.models import RunStatus
from shared import clock
from shared.access import Principal
from shared.database import Database
from shared.errors import DomainError, Validator
from shared.money import minor_units
from shared.pagination import Page, decode_cursor, make_page, page_size
from shared.settings import get_settings
from shared.sql import Connection, Sql, transaction

LOCK = Sql("SELECT pg_try_advisory_xact_lock(hashtext('coalition:settlement'))")
OVERLAPPING_FINAL = Sql(
    "SELECT id FROM settlement_runs WHERE status <> 'DRAFT'"
    " AND period_start < :end AND period_end > :start LIMIT 1"
)
DROP_DRAFTS = Sql(
    "DELETE FROM settlement_runs WHERE status = 'DRAFT' AND period_start < :end AND period_end > :start"
)
INSERT_RUN = Sql(
    "INSERT INTO settlement_runs (period_start, period_end, status, currency, content_hash)"
    " VALUES (:start, :end, 'DRAFT', :currency, :hash) RETURNING id, created_at"
)
INSERT_LINES = Sql(
    "INSERT INTO settlement_lines (run_id, partner_id, counterparty_partner_id, kind, points, amount,"
    " currency) SELECT CAST(:run AS bigint), u.p, u.c, u.k, u.n, u.a, CAST(:currency AS text)"
    " FROM unnest(CAST(:partners AS bigint[]), CAST(:counterparties AS bigint[]),"
    " CAST(:kinds AS text[]), CAST(:points AS bigint[]), CAST(:amounts AS numeric[]))"
    " AS u(p, c, k, n, a)"
)
RUN = Sql(
    "SELECT id, period_start, period_end, status, currency, content_hash FROM settlement_runs WHERE id = :id"
)
LINES = Sql(
    "SELECT partner_id, counterparty_partner_id, kind, points, amount FROM settlement_lines"
    " WHERE run_id = :id ORDER BY partner_id NULLS FIRST, kind, counterparty_partner_id NULLS FIRST"
)
SET_STATUS = Sql(
    "UPDATE settlement_runs SET status = :status, finalized_at = COALESCE(finalized_at, :finalized),"
    " paid_at = :paid WHERE id = :id"
)


@dataclass(frozen=True)
class Statement:
    partner_id: int | None  # None: the coalition's own
    lines: list[Line]

    @property
    def net(self) -> Decimal:
        return sum((line.amount for line in self.lines), Decimal(0))

    @property
    def direction(self) -> str | None:
        """PAY_IN: the partner pays the clearing house; PAY_OUT: it is paid; None when zero."""
        if self.net == 0:
            return None
        return "PAY_OUT" if self.net > 0 else "PAY_IN"


@dataclass(frozen=True)
class Run:
    id: int
    period_start: datetime
    period_end: datetime
    status: str
    currency: str
    content_hash: str
    statements: list[Statement] = field(default_factory=list)


def canonical(start: datetime, end: datetime, currency: str, lines: list[Line]) -> str:
    """The content a finalized run's hash covers: period, currency and every line, in order."""
    ordered = sorted(
        lines,
        key=lambda x: (
            x.partner_id is not None,
            x.partner_id or 0,
            x.kind,
            x.counterparty_id is not None,
            x.counterparty_id or 0,
        ),
    )
    unit = Decimal(1).scaleb(-minor_units(currency))
    return json.dumps(
        {
            "period": [start.astimezone(UTC).isoformat(), end.astimezone(UTC).isoformat()],
            "currency": currency,
            "lines": [
                # + 0 turns a negative zero into zero; quantize gives every amount its minor units.
                [x.partner_id, x.counterparty_id, x.kind, x.points, str(x.amount.quantize(unit) + 0)]
                for x in ordered
            ],
        },
        separators=(",", ":"),
    )


def content_hash(start: datetime, end: datetime, currency: str, lines: list[Line]) -> str:
    return hashlib.sha256(canonical(start, end, currency, lines).encode()).hexdigest()


def _statements(lines: list[Line]) -> list[Statement]:
    grouped: dict[int | None, list[Line]] = defaultdict(list)
    for line in lines:
        grouped[line.partner_id].append(line)
    return [Statement(p, grouped[p]) for p in sorted(grouped, key=lambda p: (p is not None, p or 0))]


async def run_settlement(
    db: Database, principal: Principal, *, period_start: datetime, period_end: datetime
) -> Run:
    principal.require_admin("admin:settlement")
    v = Validator()
    for value, name in ((period_start, "periodStart"), (period_end, "periodEnd")):
        v.check(value.tzinfo is not None, name, "INVALID", f"{name} must carry a time zone offset")
    v.raise_if_any()
    v.check(period_end > period_start, "periodEnd", "INVALID", "periodEnd must be after periodStart")
    v.check(period_end <= clock.now(), "periodEnd", "IN_FUTURE", "a period can be settled once it has ended")
    v.raise_if_any()
    currency = get_settings().settlement_currency
    async with transaction(db) as conn:
        if not await LOCK.fetchval(conn):
            raise DomainError.single("SETTLEMENT_RUNNING", "another settlement run is in progress")
        final = await OVERLAPPING_FINAL.fetchval(conn, start=period_start, end=period_end)
        if final is not None:
            raise DomainError.single(
                "PERIOD_FINALIZED",
                f"settlement run {final} already covers part of this period",
                "periodStart",
            )
        await DROP_DRAFTS.execute(conn, start=period_start, end=period_end)
        lines = await compute(conn, period_start, period_end, currency)
        digest = content_hash(period_start, period_end, currency, lines)
        row = await INSERT_RUN.fetchrow(
            conn, start=period_start, end=period_end, currency=currency, hash=digest
        )
        assert row is not None
        await INSERT_LINES.execute(
            conn,
            run=row["id"],
            currency=currency,
            partners=[x.partner_id for x in lines],
            counterparties=[x.counterparty_id for x in lines],
            kinds=[x.kind for x in lines],
            points=[x.points for x in lines],
            amounts=[x.amount for x in lines],
        )
    return Run(row["id"], period_start, period_end, RunStatus.DRAFT, currency, digest, _statements(lines))


async def _load(conn: Connection, run_id: int) -> Run | None:
    row = await RUN.fetchrow(conn, id=run_id)
    if row is None:
        return None
    unit = Decimal(1).scaleb(-minor_units(row["currency"]))
    lines = [
        Line(
            r["partner_id"],
            r["counterparty_partner_id"],
            r["kind"],
            r["points"],
            r["amount"].quantize(unit) + 0,
        )
        for r in await LINES.fetch(conn, id=run_id)
    ]
    return Run(
        row["id"],
        row["period_start"],
        row["period_end"],
        row["status"],
        row["currency"],
        row["content_hash"],
        _statements(lines),
    )


async def get_run(db: Database, principal: Principal, run_id: int) -> Run | None:
    """A whole run (admins); a partner gets its own statement of a finalized run only."""
    async with transaction(db) as conn:
        run = await _load(conn, run_id)
    if run is None:
        return None
    if principal.is_admin:
        principal.require("admin:settlement")
        return run
    partner_id = principal.require_partner("settlement:read")
    if run.status == RunStatus.DRAFT:
        return None
    return Run(
        run.id,
        run.period_start,
        run.period_end,
        run.status,
        run.currency,
        run.content_hash,
        [s for s in run.statements if s.partner_id == partner_id],
    )


async def _transition(db: Database, principal: Principal, run_id: int, to: str) -> Run:
    principal.require_admin("admin:settlement")
    now = clock.now()
    async with transaction(db) as conn:
        run = await _load(conn, run_id)
        if run is None:
            raise DomainError.single("RUN_NOT_FOUND", "no such settlement run", "runId")
        allowed = {RunStatus.FINALIZED: RunStatus.DRAFT, RunStatus.PAID: RunStatus.FINALIZED}
        if run.status != allowed[to]:
            raise DomainError.single("INVALID_STATUS", f"a {run.status} run cannot become {to}", "runId")
        lines = [line for s in run.statements for line in s.lines]
        if content_hash(run.period_start, run.period_end, run.currency, lines) != run.content_hash:
            raise DomainError.single("HASH_MISMATCH", "the run's lines no longer match its hash", "runId")
        await SET_STATUS.execute(
            conn, status=to, finalized=now, paid=now if to == RunStatus.PAID else None, id=run_id
        )
    return Run(run.id, run.period_start, run.period_end, to, run.currency, run.content_hash, run.statements)


async def finalize_settlement(db: Database, principal: Principal, run_id: int) -> Run:
    """Freezes the run: its hash is checked again, and no later run may overlap its period."""
    return await _transition(db, principal, run_id, RunStatus.FINALIZED)


async def mark_settlement_paid(db: Database, principal: Principal, run_id: int) -> Run:
    return await _transition(db, principal, run_id, RunStatus.PAID)


LIST_RUNS = Sql(
    "SELECT id FROM settlement_runs WHERE (CAST(:after AS bigint) IS NULL OR id < :after)"
    " AND (NOT CAST(:final_only AS boolean) OR status <> 'DRAFT') ORDER BY id DESC LIMIT :limit"
)


async def list_runs(db: Database, principal: Principal, *, first: int | None, after: str | None) -> Page[Run]:
    """Newest first: every run for admins; for a partner, its own statement of each finalized run."""
    size = page_size(first)
    position = decode_cursor(after)
    final_only = not principal.is_admin
    if final_only:
        principal.require_partner("settlement:read")
    else:
        principal.require("admin:settlement")
    async with transaction(db) as conn:
        ids = [
            r["id"]
            for r in await LIST_RUNS.fetch(conn, after=position, final_only=final_only, limit=size + 1)
        ]
    runs = [run for run in [await get_run(db, principal, i) for i in ids] if run is not None]
    return make_page(runs, size, lambda r: r.id)


FINAL_RUN_IDS = Sql("SELECT id FROM settlement_runs WHERE status <> 'DRAFT' ORDER BY id")
UNBALANCED = Sql(
    "SELECT run_id, SUM(amount) AS total FROM settlement_lines GROUP BY run_id HAVING SUM(amount) <> 0"
)


async def audit_runs(db: Database) -> list[tuple[str, str]]:
    """(invariant, detail) for every stored run whose nets do not sum to zero, and every final
    run whose lines no longer match its content hash."""
    found: list[tuple[str, str]] = []
    async with transaction(db) as conn:
        for row in await UNBALANCED.fetch(conn):
            found.append(
                ("settlement nets sum to zero", f"run {row['run_id']}: statements sum to {row['total']}")
            )
        for row in await FINAL_RUN_IDS.fetch(conn):
            run = await _load(conn, row["id"])
            assert run is not None
            lines = [line for s in run.statements for line in s.lines]
            if content_hash(run.period_start, run.period_end, run.currency, lines) != run.content_hash:
                found.append(("a final run matches its hash", f"run {run.id} was altered"))
    return found
