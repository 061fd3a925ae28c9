"""The earn path's own cost, flat partner vs a partner with 20 rules, interleaved in one process.

    .venv/bin/python bench/earn_paths.py [--rounds 2000] [--concurrency 8]

On a shared machine whose load moves minute to minute, runs one after the other compare poorly
(bench/earn.py's GraphQL runs). Here each round sends one flat earn and one earn with 3 lines to
the 20-rule partner (the same rules as bench/earn.py) through `earning.record_purchase`, the
service the resolver calls, so load drift hits both alike; it prints the mean time of each and the
ratio, and the statements each sends (counted once, warm).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import uuid
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.earn import _twenty_rules
from services.earning import service as earning
from services.earning.purchases import LineInput
from shared.database import Database, recreate_database, resolve_database_url
from shared.migrate import upgrade_to_head
from shared.money import Money
from tests.factories import enroll, make_partner
from tests.sql_statements import sql_statements

LINES = (
    LineInput("latte", "coffee", 2, None, Money(Decimal("7.00"), "EUR")),
    LineInput("bun", "bakery", 1, None, Money(Decimal("2.90"), "EUR")),
    LineInput("card", "giftcard", 1, None, Money(Decimal("3.00"), "EUR")),
)


def _purchase(number: str, lines: bool) -> earning.PurchaseInput:
    key = uuid.uuid4().hex
    return earning.PurchaseInput(
        key, number, key, Money(Decimal("12.90"), "EUR"), lines=LINES if lines else None
    )


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    url = await recreate_database(resolve_database_url(), "coalition_bench_paths")
    await upgrade_to_head(url)
    db = Database(url, pool_size=args.concurrency + 2)
    flat, ruled = await make_partner(db), await make_partner(db)
    await _twenty_rules(db, ruled)
    flat_members = [(await enroll(db, flat)).member_number for _ in range(args.concurrency)]
    ruled_members = [(await enroll(db, ruled)).member_number for _ in range(args.concurrency)]
    spent = {"flat": 0.0, "rules": 0.0}

    async def one(kind: str, partner, number: str, lines: bool) -> None:
        started = time.perf_counter()
        outcome = await earning.record_purchase(db, partner.principal, _purchase(number, lines))
        spent[kind] += time.perf_counter() - started
        assert outcome.errors == [], outcome.errors

    async def worker(i: int) -> None:
        for _ in range(args.rounds // args.concurrency):
            await one("flat", flat, flat_members[i], False)
            await one("rules", ruled, ruled_members[i], True)

    for kind, partner, number, lines in (
        ("flat", flat, flat_members[0], False),
        ("rules", ruled, ruled_members[0], True),
    ):
        await one(kind, partner, number, lines)  # warm the caches
        async with sql_statements(db) as statements:
            await one(kind, partner, number, lines)
        print(f"{kind:<6} statements per earn: {len(statements)}")
    spent = {"flat": 0.0, "rules": 0.0}
    await asyncio.gather(*(worker(i) for i in range(args.concurrency)))
    n = (args.rounds // args.concurrency) * args.concurrency
    flat_ms, rules_ms = spent["flat"] / n * 1000, spent["rules"] / n * 1000
    print(
        f"{n} earns each, concurrency {args.concurrency}:"
        f" flat {flat_ms:.2f} ms, 20 rules + 3 lines {rules_ms:.2f} ms"
    )
    print(f"ratio rules/flat time = {rules_ms / flat_ms:.2f}")
    await db.dispose()


if __name__ == "__main__":
    asyncio.run(main())
