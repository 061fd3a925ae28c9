"""Where a bulk batch's database time goes: EXPLAIN (ANALYZE, BUFFERS) of the batch's write
statement (`bulk_batch.EARN_MANY`) and its key claim (`CLAIM_MANY`) for a realistic batch of 1,000
purchases, on the database `bench/bulk_earn.py` left behind, every run rolled back.

    .venv/bin/python bench/bulk_explain.py [--database coalition_bench_bulk] [--rounds 3] [--with-fks]

`--with-fks` adds a variant that first re-creates the foreign keys the ledger dropped (migration
`ledger_append_only_no_fks`) inside the rolled-back transaction: the A/B of that decision, the
variants interleaved round by round (the machine is shared; its speed drifts within a run).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from services.ledger import bulk_batch
from shared.database import _asyncpg_dsn, resolve_database_url

# The foreign keys the migration dropped, as they were (for the A/B only).
DROPPED_FKS = [
    ("purchases", "partner_id", "partners"),
    ("purchases", "member_id", "members"),
    ("purchases", "entry_id", "journal_entries"),
    ("purchases", "lot_id", "lots"),
    ("journal_entries", "member_id", "members"),
    ("journal_entries", "partner_id", "partners"),
    ("postings", "entry_id", "journal_entries"),
    ("postings", "account_id", "ledger_accounts"),
    ("lots", "member_id", "members"),
    ("lots", "issuing_partner_id", "partners"),
    ("lots", "earn_entry_id", "journal_entries"),
]


async def _explain(
    conn: asyncpg.Connection, statement: bulk_batch.Sql, params: dict[str, object]
) -> tuple[float, list[str]]:
    rows = await conn.fetch(
        "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + statement.text, *statement.args(params)
    )
    plan = json.loads(rows[0][0])[0]
    triggers = [
        f"{t['Trigger Name']}: {t['Time']:.1f} ms ({t['Calls']} calls)" for t in plan.get("Triggers", [])
    ]
    return plan["Execution Time"], triggers


async def _toggle_fks(conn: asyncpg.Connection) -> None:
    """Inside the rolled-back transaction: drops the foreign keys when the schema has them, adds
    them back (NOT VALID: new rows are checked, old ones are not re-read) when it has not."""
    for table, column, target in DROPPED_FKS:
        name = f"fk_{table}_{column}_{target}"
        present = await conn.fetchval("SELECT 1 FROM pg_constraint WHERE conname = $1", name)
        if present:
            await conn.execute(f"ALTER TABLE {table} DROP CONSTRAINT {name}")
        else:
            await conn.execute(
                f"ALTER TABLE {table} ADD CONSTRAINT {name} FOREIGN KEY ({column})"
                f" REFERENCES {target}(id) NOT VALID"
            )


async def _batch(conn: asyncpg.Connection, size: int, rng: random.Random) -> dict[str, object]:
    partner = await conn.fetchval("SELECT min(id) FROM partners")
    issuance = await conn.fetchval(
        "SELECT id FROM ledger_accounts WHERE kind = 'PARTNER_ISSUANCE' AND partner_id = $1", partner
    )
    wallets = await conn.fetch("SELECT member_id, account_id FROM wallets ORDER BY member_id")
    chosen = [rng.choice(wallets) for _ in range(size)]
    now = datetime.now(UTC)
    tag = f"x{time.time_ns()}"
    return {
        "idx": list(range(size)),
        "m": [w["member_id"] for w in chosen],
        "account": [w["account_id"] for w in chosen],
        "order_id": [f"{tag}-{i}" for i in range(size)],
        "amount": [Decimal(rng.choice(["12.90", "4.50", "31.00"])) for _ in range(size)],
        "points": [rng.randint(1, 99) for _ in range(size)],
        "occurred": [now] * size,
        "available": [now + timedelta(days=14)] * size,
        "expires": [now + timedelta(days=730)] * size,
        "detail": [None] * size,
        "p": partner,
        "currency": "EUR",
        "issuance": issuance,
        "now": now,
    }


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--database", default="coalition_bench_bulk")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--size", type=int, default=1000)
    parser.add_argument("--with-fks", action="store_true")
    args = parser.parse_args()
    base = resolve_database_url()
    dsn, kwargs = _asyncpg_dsn(base.rsplit("/", 1)[0] + "/" + args.database)
    conn = await asyncpg.connect(dsn, **kwargs)
    rng = random.Random(11)
    variants = ["as migrated", *(["FKs toggled"] if args.with_fks else [])]
    try:
        for round_ in range(args.rounds):
            for variant in variants:
                params = await _batch(conn, args.size, rng)
                tx = conn.transaction()
                await tx.start()
                try:
                    if variant != "as migrated":
                        await _toggle_fks(conn)
                    ms, triggers = await _explain(conn, bulk_batch.EARN_MANY, params)
                    claim = {
                        "client": "explain",
                        "operation": "earn",
                        "keys": [f"{o}" for o in params["order_id"]],  # type: ignore[union-attr]
                        "hashes": ["h" * 64] * args.size,
                        "responses": [json.dumps({"ok": {"points": 1, "entry": 1}})] * args.size,
                    }
                    claim_ms, _ = await _explain(conn, bulk_batch.CLAIM_MANY, claim)
                finally:
                    await tx.rollback()
                fk_ms = sum(float(t.split(": ")[1].split(" ")[0]) for t in triggers)
                print(
                    f"round {round_ + 1} {variant:<22} EARN_MANY {ms:7.1f} ms (FK triggers {fk_ms:6.1f} ms)"
                    f"  CLAIM_MANY {claim_ms:6.1f} ms"
                )
    finally:
        await conn.close()


if __name__ == "__main__":
    asyncio.run(main())
