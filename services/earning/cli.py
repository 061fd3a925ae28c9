"""Earning's command: `coalition import purchases --partner ID FILE.csv`, a partner's sales
recorded in bulk through the earning engine (`purchase_import`), as a coalition admin (the CLI)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

from services.earning import purchase_import
from shared.access import ADMIN_SCOPES, Principal
from shared.console import Column, counter, print_table
from shared.database import standalone_database

CLI_ADMIN = Principal(client_id="cli", scopes=ADMIN_SCOPES)


def register(subparsers: argparse._SubParsersAction) -> None:
    imports = subparsers.add_parser("import", help="bulk imports: a partner's purchases from CSV")
    kinds = imports.add_subparsers(dest="import_command", required=True, metavar="WHAT")
    purchases = kinds.add_parser(
        "purchases",
        help="record a partner's purchases from a CSV file (resumable: run it again after a crash)",
        description="Columns: memberNumber, orderId, amount, currency, occurredAt (ISO 8601 with an"
        " offset; empty: now), optionally lines (a JSON array of the purchase's lines, each"
        ' {"sku", "category", "quantity", "amount" or "unitPrice"} in the row\'s currency, earned under'
        " the partner's earn rules as recordPurchase earns them). Each row's idempotency key comes"
        " from the file's SHA-256 and the row number, so running the same file again records only"
        " what was not recorded yet.",
    )
    purchases.add_argument("--partner", type=int, required=True, help="the partner's id")
    purchases.add_argument("file", type=Path, help="the CSV file")
    purchases.add_argument(
        "--failures", type=Path, help="where failed rows are written as CSV (default: FILE.failures.csv)"
    )
    purchases.add_argument(
        "--batch-size", type=int, default=purchase_import.BATCH_SIZE, help="purchases per batch (1-1000)"
    )
    purchases.set_defaults(handler=import_purchases)


def import_purchases(args: argparse.Namespace) -> int | Coroutine[Any, Any, int]:
    """Checks the arguments, then (the coroutine `main` runs) imports."""
    path: Path = args.file
    if not path.is_file():
        print(f"coalition: {path}: no such file", file=sys.stderr)
        return 2
    if not 1 <= args.batch_size <= 1000:
        print("coalition: --batch-size must be between 1 and 1000", file=sys.stderr)
        return 2
    failures_path: Path = args.failures or path.with_name(path.name + ".failures.csv")
    return _import(args, path, failures_path)


async def _import(args: argparse.Namespace, path: Path, failures_path: Path) -> int:
    async with standalone_database() as db:
        if not await purchase_import.partner_exists(db, args.partner):
            print(f"coalition: no partner has id {args.partner}", file=sys.stderr)
            return 2
        with (
            failures_path.open("w", newline="", encoding="utf-8") as failures,
            counter(purchase_import.count_rows(path), f"importing {path.name}") as advance,
        ):
            try:
                summary = await purchase_import.import_file(
                    db, CLI_ADMIN, args.partner, path, failures, batch_size=args.batch_size, advance=advance
                )
            except purchase_import.BadFile as exc:
                print(f"coalition: {path}: {exc}", file=sys.stderr)
                return 2
    rows: list[tuple[str, int]] = [("recorded", summary.recorded), ("replayed", summary.replayed)]
    rows += [(f"failed: {code}", n) for code, n in sorted(summary.failed.items())]
    rows.append(("rows", summary.rows))
    print_table(["outcome", Column("rows", "right")], rows)
    if summary.failed:
        print(f"failed rows: {failures_path}")
    return 1 if summary.failed else 0
