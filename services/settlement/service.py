"""Settlement runs: compute a period, finalize it (immutable, hashed), mark it paid.

A run is computed from the ledger by one aggregate query (`compute`), netted through the
coalition as clearing house, and stored as statement lines. Re-running a DRAFT for the same period
replaces it; a FINALIZED run is immutable and no later run may overlap it. Two runs never happen
at once: the run takes a transaction-level advisory lock and a second one is told so.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal

from services.partners import service as partners
from services.settlement import events
from services.settlement.compute import Line, Window, compute
from services.settlement.models import RunStatus
from services.settlement.queries import Run, load_run, statements_of
from shared import audit_log, clock
from shared.access import Principal
from shared.database import Database
from shared.error_codes import UserErrorCode
from shared.errors import DomainError, UserError, Validator
from shared.money import minor_units
from shared.settings import get_settings
from shared.sql import DbConnection, Sql, transaction

LOCK = Sql("SELECT pg_try_advisory_xact_lock(hashtext('coalition:settlement'))")
# Nothing recorded before the oldest transaction still open can appear later (a transaction's
# rows carry its start time), so that instant is a safe cutoff for "recorded before the run".
CUTOFF = Sql(
    "SELECT LEAST(transaction_timestamp(), (SELECT min(xact_start) FROM pg_stat_activity"
    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
    " AND backend_type = 'client backend'))"
)
OVERLAPPING_FINAL = Sql(
    "SELECT id FROM settlement_runs WHERE status <> 'DRAFT'"
    " AND period_start < :end AND period_end > :start LIMIT 1"
)
# Contract versions in force at some instant of [start, end) priced in another currency.
FOREIGN_CONTRACTS = Sql(
    "SELECT DISTINCT partner_id, currency FROM partner_contract_terms"
    " WHERE effective_from < :end AND effective_to > :start AND currency <> :currency"
    " ORDER BY partner_id, currency"
)
DROP_DRAFTS = Sql(
    "DELETE FROM settlement_runs WHERE status = 'DRAFT' AND period_start < :end AND period_end > :start"
    " RETURNING id"
)
# Each finalized run's late-arrival window opens where the last run that read it stopped: its own
# cutoff, or the cutoff of the newest final run computed after it was finalized.
FINAL_WINDOWS = """
SELECT r.id, r.period_start, r.period_end,
       GREATEST(r.recorded_before, (SELECT max(x.recorded_before) FROM settlement_runs x
                                    WHERE x.status <> 'DRAFT' AND x.id > r.finalize_watermark))
         AS after
FROM settlement_runs r WHERE r.status <> 'DRAFT'
"""
WINDOWS = Sql(FINAL_WINDOWS + " ORDER BY r.id")
INSERT_RUN = Sql(
    "INSERT INTO settlement_runs (period_start, period_end, status, currency, content_hash, recorded_before)"
    " VALUES (:start, :end, 'DRAFT', :currency, :hash, :cutoff) RETURNING id"
)
INSERT_LINES = Sql(
    "INSERT INTO settlement_lines (run_id, partner_id, counterparty_partner_id, kind, points, amount,"
    " currency, original_run_id, adjusted_kind)"
    " SELECT CAST(:run AS bigint), u.p, u.c, u.k, u.n, u.a, CAST(:currency AS text), u.o, u.j"
    " FROM unnest(CAST(:partners AS bigint[]), CAST(:counterparties AS bigint[]),"
    " CAST(:kinds AS text[]), CAST(:points AS bigint[]), CAST(:amounts AS numeric[]),"
    " CAST(:originals AS bigint[]), CAST(:adjusted AS text[])) AS u(p, c, k, n, a, o, j)"
)
LOCK_RUN = Sql("SELECT 1 FROM settlement_runs WHERE id = :id FOR UPDATE")
STALE_BY = Sql("SELECT id FROM settlement_runs WHERE status <> 'DRAFT' AND finalize_watermark >= :id LIMIT 1")
OPEN_DISPUTES = Sql(
    "SELECT count(*) FROM reconciliation_items i JOIN reconciliations r ON r.id = i.reconciliation_id"
    " WHERE r.run_id = :id AND i.status <> 'MATCHED' AND i.resolved_at IS NULL"
)
FINALIZE = Sql(
    "UPDATE settlement_runs SET status = 'FINALIZED', finalized_at = now(),"
    " finalize_watermark = (SELECT max(id) FROM settlement_runs),"
    " finalized_over_open_disputes = :open WHERE id = :id"
)
MARK_PAID = Sql("UPDATE settlement_runs SET status = 'PAID', paid_at = now() WHERE id = :id")


def canonical(start: datetime, end: datetime, currency: str, lines: list[Line]) -> str:
    """The content a finalized run's hash covers: period, currency and every line, in order
    (an adjustment line also names the run it adjusts and the kind it adjusts)."""
    ordered = sorted(
        lines,
        key=lambda x: (
            x.partner_id is not None,
            x.partner_id or 0,
            x.kind,
            x.original_run_id or 0,
            x.adjusted_kind or "",
            x.counterparty_id is not None,
            x.counterparty_id or 0,
        ),
    )
    unit = Decimal(1).scaleb(-minor_units(currency))

    def row(x: Line) -> list[object]:
        # + 0 turns a negative zero into zero; quantize gives every amount its minor units.
        out: list[object] = [
            x.partner_id,
            x.counterparty_id,
            x.kind,
            x.points,
            str(x.amount.quantize(unit) + 0),
        ]
        if x.original_run_id is not None:
            out += [x.original_run_id, x.adjusted_kind]
        return out

    return json.dumps(
        {
            "period": [start.astimezone(UTC).isoformat(), end.astimezone(UTC).isoformat()],
            "currency": currency,
            "lines": [row(x) for x in ordered],
        },
        separators=(",", ":"),
    )


def content_hash(start: datetime, end: datetime, currency: str, lines: list[Line]) -> str:
    return hashlib.sha256(canonical(start, end, currency, lines).encode()).hexdigest()


async def _refuse_foreign_contracts(
    conn: DbConnection, start: datetime, end: datetime, currency: str
) -> None:
    """A coalition settles in one currency (ruling): a period during which some partner's contract
    prices points in another cannot be settled until FX settlement exists. One error per partner,
    named, so the admin knows whose contract to correct."""
    rows = await FOREIGN_CONTRACTS.fetch(conn, start=start, end=end, currency=currency)
    if not rows:
        return
    found = await partners.get_partners(conn, sorted({r["partner_id"] for r in rows}))
    raise DomainError(
        [
            UserError(
                UserErrorCode.CONTRACT_CURRENCY_MISMATCH,
                "periodStart",
                f"partner {_name(found, r['partner_id'])} has a contract in {r['currency']} in force"
                f" during the period; the coalition settles in {currency}",
            )
            for r in rows
        ]
    )


def _name(found: dict[int, partners.PartnerView], partner_id: int) -> str:
    view = found.get(partner_id)
    return f"{view.name!r} ({partner_id})" if view else str(partner_id)


async def run_settlement(
    db: Database, principal: Principal, *, period_start: datetime, period_end: datetime
) -> Run:
    """A new DRAFT run of [period_start, period_end). The DRAFT runs whose periods overlap it are
    replaced (deleted in the same transaction); their ids come back in `replaced_draft_ids` and go
    into the audit log, so the admin is told which draft, and whose reconciliations, went away."""
    principal.require_admin("admin:settlement")
    v = Validator()
    v.instant(period_start, "periodStart")
    v.instant(period_end, "periodEnd")
    v.raise_if_any()
    v.check(
        period_end > period_start, "periodEnd", UserErrorCode.INVALID, "periodEnd must be after periodStart"
    )
    v.check(
        period_end <= clock.now(),
        "periodEnd",
        UserErrorCode.IN_FUTURE,
        "a period can be settled once it has ended",
    )
    v.raise_if_any()
    currency = get_settings().settlement_currency
    async with transaction(db) as conn:
        if not await LOCK.fetchval(conn):
            raise DomainError.single(
                UserErrorCode.SETTLEMENT_RUNNING, "another settlement run is in progress"
            )
        final = await OVERLAPPING_FINAL.fetchval(conn, start=period_start, end=period_end)
        if final is not None:
            raise DomainError.single(
                UserErrorCode.PERIOD_FINALIZED,
                f"settlement run {final} already covers part of this period",
                "periodStart",
            )
        await _refuse_foreign_contracts(conn, period_start, period_end, currency)
        replaced = sorted(r["id"] for r in await DROP_DRAFTS.fetch(conn, start=period_start, end=period_end))
        cutoff = await CUTOFF.fetchval(conn)
        windows = [
            Window(r["id"], r["period_start"], r["period_end"], r["after"]) for r in await WINDOWS.fetch(conn)
        ]
        lines = await compute(conn, period_start, period_end, currency, cutoff, windows)
        digest = content_hash(period_start, period_end, currency, lines)
        run_id = await INSERT_RUN.fetchval(
            conn, start=period_start, end=period_end, currency=currency, hash=digest, cutoff=cutoff
        )
        await INSERT_LINES.execute(
            conn,
            run=run_id,
            currency=currency,
            partners=[x.partner_id for x in lines],
            counterparties=[x.counterparty_id for x in lines],
            kinds=[x.kind for x in lines],
            points=[x.points for x in lines],
            amounts=[x.amount for x in lines],
            originals=[x.original_run_id for x in lines],
            adjusted=[x.adjusted_kind for x in lines],
        )
        await audit_log.record_on(
            conn,
            principal,
            "settlement.run",
            f"SettlementRun:{run_id}",
            {
                "periodStart": period_start,
                "periodEnd": period_end,
                "contentHash": digest,
                "replacedDraftRuns": replaced,
            },
        )
    used = {x.original_run_id for x in lines}
    return Run(
        run_id,
        period_start,
        period_end,
        RunStatus.DRAFT,
        currency,
        digest,
        cutoff,
        statements_of(lines),
        {w.run_id: (w.start, w.end) for w in windows if w.run_id in used},
        replaced_draft_ids=tuple(replaced),
    )


async def _locked_run(conn: DbConnection, run_id: int, expected: str, to: str) -> Run:
    if not await LOCK.fetchval(conn):
        raise DomainError.single(UserErrorCode.SETTLEMENT_RUNNING, "another settlement run is in progress")
    await LOCK_RUN.execute(conn, id=run_id)  # waits for a reconciliation upload still writing
    run = await load_run(conn, run_id)
    if run is None:
        raise DomainError.single(UserErrorCode.RUN_NOT_FOUND, "no such settlement run", "runId")
    if run.status != expected:
        raise DomainError.single(
            UserErrorCode.INVALID_STATUS, f"a {run.status} run cannot become {to}", "runId"
        )
    if content_hash(run.period_start, run.period_end, run.currency, run.lines) != run.content_hash:
        raise DomainError.single(
            UserErrorCode.HASH_MISMATCH, "the run's lines no longer match its hash", "runId"
        )
    return run


async def finalize_settlement(
    db: Database, principal: Principal, run_id: int, *, override_open_disputes: bool = False
) -> Run:
    """Freezes the run: its hash is checked again, and no later run may overlap its period.

    Refused while reconciliation disputes are open unless the admin overrides (the count is kept
    on the run and in the audit log), and for a draft computed before another run was finalized:
    its late-arrival windows may overlap that run's, so it must be run again."""
    principal.require_admin("admin:settlement")
    async with transaction(db) as conn:
        run = await _locked_run(conn, run_id, RunStatus.DRAFT, RunStatus.FINALIZED)
        stale_by = await STALE_BY.fetchval(conn, id=run_id)
        if stale_by is not None:
            raise DomainError.single(
                UserErrorCode.STALE_DRAFT,
                f"run {stale_by} was finalized after this draft was computed; run the period again",
                "runId",
            )
        open_disputes = await OPEN_DISPUTES.fetchval(conn, id=run_id)
        if open_disputes and not override_open_disputes:
            raise DomainError.single(
                UserErrorCode.OPEN_DISPUTES,
                f"{open_disputes} reconciliation dispute(s) are open; resolve them or finalize with"
                " overrideOpenDisputes",
                "runId",
            )
        await FINALIZE.execute(conn, id=run_id, open=open_disputes)
        await events.record_finalized(conn, run)
        await audit_log.record_on(
            conn,
            principal,
            "settlement.finalize",
            f"SettlementRun:{run_id}",
            {"contentHash": run.content_hash, "openDisputes": open_disputes},
        )
    return replace(run, status=RunStatus.FINALIZED, finalized_over_open_disputes=open_disputes)


async def mark_settlement_paid(db: Database, principal: Principal, run_id: int) -> Run:
    principal.require_admin("admin:settlement")
    async with transaction(db) as conn:
        run = await _locked_run(conn, run_id, RunStatus.FINALIZED, RunStatus.PAID)
        await MARK_PAID.execute(conn, id=run_id)
        await audit_log.record_on(conn, principal, "settlement.paid", f"SettlementRun:{run_id}", {})
    return replace(run, status=RunStatus.PAID)
