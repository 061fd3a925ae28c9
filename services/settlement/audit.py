"""`coalition audit`'s settlement invariants: every stored run's nets sum to zero, every final
run still matches its content hash, and every final period's matrix carries exactly the points
consumed in it (its own lines plus the adjustments of later runs naming it)."""

from __future__ import annotations

from services.settlement.queries import load_run
from services.settlement.service import FINAL_WINDOWS, content_hash
from shared.database import Database
from shared.sql import Sql, transaction

FINAL_RUN_IDS = Sql("SELECT id FROM settlement_runs WHERE status <> 'DRAFT' ORDER BY id")
UNBALANCED = Sql(
    "SELECT run_id, SUM(amount) AS total FROM settlement_lines GROUP BY run_id HAVING SUM(amount) <> 0"
)
# For each final period: the points its matrix carries (its own run's lines plus the adjustment
# lines of later final runs naming it) must be exactly the points consumed in it and recorded
# before the last final run that read it (where its late-arrival window now opens).
MATRIX_VS_CONSUMED = Sql(
    "WITH f AS ("
    + FINAL_WINDOWS
    + """),
m AS (
  SELECT COALESCE(l.original_run_id, l.run_id) AS run, SUM(l.points) AS points
  FROM settlement_lines l JOIN settlement_runs s ON s.id = l.run_id AND s.status <> 'DRAFT'
  WHERE COALESCE(l.adjusted_kind, l.kind) IN ('REDEMPTION_RECEIVABLE', 'INTERNAL')
  GROUP BY 1
),
c AS (
  SELECT f.id AS run, SUM(m.points) AS points
  FROM f
  JOIN ledger_movements m ON m.occurred_at >= f.period_start AND m.occurred_at < f.period_end
    AND m.recorded_at < f.after
  WHERE m.kind IN ('REDEMPTION', 'CLAWBACK', 'DEBT_REPAYMENT')
  GROUP BY 1
)
SELECT f.id, COALESCE(m.points, 0) AS matrix, COALESCE(c.points, 0) AS consumed
FROM f LEFT JOIN m ON m.run = f.id LEFT JOIN c ON c.run = f.id
WHERE COALESCE(m.points, 0) <> COALESCE(c.points, 0)
ORDER BY f.id
"""
)


async def audit_runs(db: Database) -> list[tuple[str, str]]:
    """(invariant, detail) for every stored run whose nets do not sum to zero, every final run
    whose lines no longer match its content hash, and every final period whose matrix does not
    carry exactly the points consumed in it."""
    found: list[tuple[str, str]] = []
    async with transaction(db) as conn:
        for row in await UNBALANCED.fetch(conn):
            found.append(
                ("settlement nets sum to zero", f"run {row['run_id']}: statements sum to {row['total']}")
            )
        for row in await FINAL_RUN_IDS.fetch(conn):
            run = await load_run(conn, row["id"])
            assert run is not None
            if content_hash(run.period_start, run.period_end, run.currency, run.lines) != run.content_hash:
                found.append(("a final run matches its hash", f"run {run.id} was altered"))
        for row in await MATRIX_VS_CONSUMED.fetch(conn):
            found.append(
                (
                    "settlement matrix points equal points consumed",
                    f"run {row['id']}: matrix {row['matrix']}, consumed {row['consumed']}",
                )
            )
    return found
