"""`coalition settle`: run a period from the command line, and export a run's statements."""

from __future__ import annotations

import argparse
import csv
import io
import json
from datetime import datetime

from services.settlement import service
from shared.access import ADMIN_SCOPES, Principal
from shared.database import standalone_database
from shared.errors import DomainError, print_user_errors

CLI_SETTLER = Principal(client_id="cli", scopes=ADMIN_SCOPES)


def _instant(value: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{value!r} is not an ISO 8601 instant") from exc
    if moment.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{value!r} needs a time zone offset (e.g. +00:00)")
    return moment


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("settle", help="settlement runs")
    parser.add_argument("--from", dest="start", type=_instant, help="period start (ISO 8601)")
    parser.add_argument("--to", dest="end", type=_instant, help="period end, exclusive")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.set_defaults(handler=settle)
    commands = parser.add_subparsers(dest="settle_command")
    export = commands.add_parser("export", help="a run's statement lines as CSV or JSON")
    export.add_argument("run_id", type=int)
    export.add_argument("--format", choices=["csv", "json"], default="csv")
    export.set_defaults(handler=export_run)


def as_rows(run: service.Run) -> list[dict[str, object]]:
    return [
        {
            "run_id": run.id,
            "period_start": run.period_start.isoformat(),
            "period_end": run.period_end.isoformat(),
            "status": run.status,
            "partner_id": s.partner_id if s.partner_id is not None else "coalition",
            "counterparty_id": x.counterparty_id if x.counterparty_id is not None else "coalition",
            "kind": x.kind,
            "points": x.points,
            "amount": str(x.amount),
            "currency": run.currency,
        }
        for s in run.statements
        for x in s.lines
    ]


def as_json(run: service.Run) -> dict[str, object]:
    return {
        "run_id": run.id,
        "status": run.status,
        "period_start": run.period_start.isoformat(),
        "period_end": run.period_end.isoformat(),
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
                    }
                    for x in s.lines
                ],
            }
            for s in run.statements
        ],
    }


async def settle(args: argparse.Namespace) -> int:
    if args.start is None or args.end is None:
        print("error: settle needs --from and --to (or the export subcommand)")
        return 2
    async with standalone_database() as db:
        try:
            run = await service.run_settlement(db, CLI_SETTLER, period_start=args.start, period_end=args.end)
        except DomainError as exc:
            return print_user_errors(exc)
    if args.json:
        print(json.dumps(as_json(run), indent=2))
        return 0
    print(
        f"settlement run {run.id} ({run.status}) {run.period_start:%Y-%m-%d %H:%M} → "
        f"{run.period_end:%Y-%m-%d %H:%M} {run.currency}  hash {run.content_hash[:16]}…"
    )
    print(f"{'partner':>12} {'net':>14}  instruction")
    for s in run.statements:
        who = "coalition" if s.partner_id is None else str(s.partner_id)
        print(f"{who:>12} {s.net:>14}  {s.direction or '-'}")
    return 0


async def export_run(args: argparse.Namespace) -> int:
    async with standalone_database() as db:
        run = await service.get_run(db, CLI_SETTLER, args.run_id)
    if run is None:
        print(f"error: no settlement run {args.run_id}")
        return 2
    if args.format == "json":
        print(json.dumps(as_json(run), indent=2))
        return 0
    out = io.StringIO()
    rows = as_rows(run)
    writer = csv.DictWriter(out, fieldnames=list(rows[0]) if rows else ["run_id"])
    writer.writeheader()
    writer.writerows(rows)
    print(out.getvalue(), end="")
    return 0
