"""A run's statements as CSV or JSON, and a reconciliation's summary: one shape for the CLI and
the HTTP endpoints."""

from __future__ import annotations

import csv
import io
import json
from enum import StrEnum

from services.settlement.queries import Run
from services.settlement.reconciliation import Item, Reconciliation


class ExportFormat(StrEnum):
    CSV = "csv"
    JSON = "json"


FORMATS = tuple(ExportFormat)


def _partner(value: int | None) -> int | str:
    return value if value is not None else "coalition"


def as_rows(run: Run) -> list[dict[str, object]]:
    """One row per statement line; adjustment lines name the run and period they adjust."""
    rows = []
    for s in run.statements:
        for x in s.lines:
            original = run.original_periods.get(x.original_run_id) if x.original_run_id else None
            rows.append(
                {
                    "run_id": run.id,
                    "period_start": run.period_start.isoformat(),
                    "period_end": run.period_end.isoformat(),
                    "status": run.status,
                    "partner_id": _partner(s.partner_id),
                    "counterparty_id": _partner(x.counterparty_id),
                    "kind": x.kind,
                    "points": x.points,
                    "amount": str(x.amount),
                    "currency": run.currency,
                    "adjusted_kind": x.adjusted_kind or "",
                    "original_run_id": x.original_run_id or "",
                    "original_period_start": original[0].isoformat() if original else "",
                    "original_period_end": original[1].isoformat() if original else "",
                }
            )
    return rows


def as_json(run: Run) -> dict[str, object]:
    return {
        "run_id": run.id,
        "status": run.status,
        "period_start": run.period_start.isoformat(),
        "period_end": run.period_end.isoformat(),
        "recorded_before": run.recorded_before.isoformat(),
        "currency": run.currency,
        "content_hash": run.content_hash,
        "statements": [
            {
                "partner_id": s.partner_id,
                "net": str(s.net),
                "instruction": s.direction,
                "lines": [
                    {
                        "counterparty_id": x.counterparty_id,
                        "kind": x.kind,
                        "points": x.points,
                        "amount": str(x.amount),
                        **(
                            {
                                "adjusted_kind": x.adjusted_kind,
                                "original_run_id": x.original_run_id,
                                "original_period": [
                                    t.isoformat() for t in run.original_periods[x.original_run_id]
                                ],
                            }
                            if x.original_run_id is not None
                            else {}
                        ),
                    }
                    for x in s.lines
                ],
            }
            for s in run.statements
        ],
    }


def render(run: Run, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(as_json(run), indent=2) + "\n"
    out = io.StringIO()
    rows = as_rows(run)
    writer = csv.DictWriter(out, fieldnames=list(rows[0]) if rows else ["run_id"])
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def reconciliation_summary(rec: Reconciliation, disputes: list[Item]) -> dict[str, object]:
    return {
        "reconciliation_id": rec.id,
        "run_id": rec.run_id,
        "partner_id": rec.partner_id,
        "rows": rec.rows,
        "counts": rec.counts,
        "open_disputes": rec.open_disputes,
        "disputes": [
            {
                "item_id": i.id,
                "order_id": i.order_id,
                "kind": i.kind,
                "status": i.status,
                "ledger_points": i.ledger_points,
                "partner_points": i.partner_points,
            }
            for i in disputes
        ],
    }
