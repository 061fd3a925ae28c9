"""`coalition promo generate` and `coalition promo export BATCH --format csv`, as a coalition admin.

The export streams: rows come through a server-side cursor and go out as they arrive, so a
100,000-code batch is printed (or written to --output) in flat memory.
"""

from __future__ import annotations

import argparse
import csv
import sys
from collections.abc import Coroutine
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from services.earning import promo_code_batches as batches
from shared.access import ADMIN_SCOPES, Principal
from shared.console import Column, print_table
from shared.database import standalone_database
from shared.errors import DomainError, print_user_errors

CLI_ADMIN = Principal(client_id="cli", scopes=ADMIN_SCOPES)
EXPORT_HEADER = ["code", "uses_per_code", "uses", "expires_at", "status"]


def register(subparsers: argparse._SubParsersAction) -> None:
    promo = subparsers.add_parser("promo", help="promo codes: generate a batch, export one")
    commands = promo.add_subparsers(dest="promo_command", required=True, metavar="WHAT")
    export = commands.add_parser(
        "export",
        help="a batch's codes as CSV (code, uses_per_code, uses, expires_at, status)",
        description="status is ACTIVE, USED_UP (uses = uses_per_code) or EXPIRED (expires_at passed)."
        " Streams: any batch size in flat memory.",
    )
    export.add_argument("batch", type=int, help="the batch's id (PromoCodeBatch, as a number)")
    export.add_argument("--format", choices=["csv"], default="csv", help="the output format (csv)")
    export.add_argument("--output", type=Path, help="the file to write (default: standard output)")
    export.set_defaults(handler=export_batch)
    generate = commands.add_parser("generate", help="a batch of promo codes for a promotion")
    generate.add_argument("--promotion", type=int, required=True, help="the promotion's id")
    generate.add_argument(
        "--count", type=int, required=True, help=f"how many codes (1-{batches.MAX_COUNT:,})"
    )
    generate.add_argument("--prefix", default="", help="what every code starts with")
    generate.add_argument("--uses-per-code", type=int, default=1, help="purchases per code (default 1)")
    generate.add_argument("--uses-per-member", type=int, help="purchases per member over the batch")
    generate.add_argument(
        "--expires-at",
        type=datetime.fromisoformat,
        help="ISO 8601 with an offset: when the codes stop working",
    )
    generate.set_defaults(handler=generate_batch)


def export_batch(args: argparse.Namespace) -> Coroutine[Any, Any, int]:
    return _export(args.batch, args.output)


async def _export(batch_id: int, output: Path | None) -> int:
    async with standalone_database() as db:
        if await batches.batch(db, batch_id) is None:
            print(f"coalition: no promo code batch has id {batch_id}", file=sys.stderr)
            return 2
        if output is None:
            return await _write(db, batch_id, sys.stdout)
        with output.open("w", newline="", encoding="utf-8") as out:
            return await _write(db, batch_id, out)


async def _write(db: Any, batch_id: int, out: IO[str]) -> int:
    writer = csv.writer(out)
    writer.writerow(EXPORT_HEADER)
    async for code, per_code, uses, expires_at, status in batches.export_rows(db, batch_id):
        writer.writerow([code, per_code, uses, expires_at.isoformat() if expires_at else "", status])
    out.flush()
    return 0


def generate_batch(args: argparse.Namespace) -> Coroutine[Any, Any, int]:
    terms = batches.BatchTerms(
        promotion_id=args.promotion,
        count=args.count,
        prefix=args.prefix,
        uses_per_code=args.uses_per_code,
        uses_per_member=args.uses_per_member,
        expires_at=args.expires_at,
    )
    return _generate(terms)


async def _generate(terms: batches.BatchTerms) -> int:
    async with standalone_database() as db:
        try:
            made = await batches.generate(db, CLI_ADMIN, terms)
        except DomainError as exc:
            return print_user_errors(exc)
    print_table(["batch", Column("codes", "right")], [(made.batch.id, made.batch.count)])
    print(f"export them: coalition promo export {made.batch.id} --format csv")
    return 0
