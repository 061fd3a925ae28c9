"""`coalition settle`: run a period from the command line, and export a run's statements."""

from __future__ import annotations

import argparse
import json
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, cast

from services.partners import service as partners
from services.settlement import export, queries, reconciliation, service
from shared import console
from shared.access import ADMIN_SCOPES, Principal
from shared.console import Column
from shared.database import Database, standalone_database
from shared.errors import DomainError, print_user_errors
from shared.ids import to_global_id

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
    exporter = commands.add_parser("export", help="a run's statement lines as CSV or JSON")
    exporter.add_argument("run_id", type=int)
    exporter.add_argument("--format", choices=["csv", "json"], default="csv")
    exporter.set_defaults(handler=export_run)
    reconcile = commands.add_parser(
        "reconcile", help="match a partner's CSV (orderId,kind,points,occurredAt) against a run"
    )
    reconcile.add_argument("run_id", type=int)
    reconcile.add_argument("--partner", type=int, required=True, help="the partner's id")
    reconcile.add_argument(
        "file", type=argparse.FileType("r", encoding="utf-8"), help="CSV file, - for stdin"
    )
    reconcile.add_argument("--json", action="store_true", help="machine-readable output")
    reconcile.set_defaults(handler=reconcile_run)
    finalize = commands.add_parser("finalize", help="freeze a DRAFT run (refused over open disputes)")
    finalize.add_argument("run_id", type=int)
    finalize.add_argument(
        "--override-open-disputes", action="store_true", help="finalize although disputes are open"
    )
    finalize.set_defaults(handler=finalize_run)
    paid = commands.add_parser("paid", help="record that a FINALIZED run's payments were made")
    paid.add_argument("run_id", type=int)
    paid.set_defaults(handler=mark_paid)
    resolve = commands.add_parser("resolve", help="close a reconciliation dispute with a note")
    resolve.add_argument("item_id", type=int)
    resolve.add_argument("--note", required=True, help="what was agreed, and what was done")
    resolve.set_defaults(handler=resolve_item)


async def settle(args: argparse.Namespace) -> int:
    if args.start is None or args.end is None:
        print(
            "error: settle needs --from and --to"
            " (or a subcommand: export, reconcile, finalize, paid, resolve)"
        )
        return 2
    async with standalone_database() as db:
        with console.progress() as steps:
            steps.step(f"settling {args.start:%Y-%m-%d %H:%M} → {args.end:%Y-%m-%d %H:%M}")
            try:
                run = await service.run_settlement(
                    db, CLI_SETTLER, period_start=args.start, period_end=args.end
                )
            except DomainError as exc:
                return print_user_errors(exc)
            steps.step("naming the partners")
            names = await _partner_names(db, [s.partner_id for s in run.statements])
    if args.json:
        print(json.dumps(_settled_json(run, names), indent=2))
        return 0
    print(
        f"settlement run {run.id} (id {_global_id(run)}, {run.status}):"
        f" {run.period_start:%Y-%m-%d %H:%M %z} → {run.period_end:%Y-%m-%d %H:%M %z},"
        f" {run.currency}, hash {run.content_hash[:16]}…"
    )
    if run.replaced_draft_ids:
        plural = "s" if len(run.replaced_draft_ids) > 1 else ""
        print(f"replaced draft run{plural} {', '.join(map(str, run.replaced_draft_ids))}")
    console.print_table(
        ["partner", Column("id", "right"), Column(f"net {run.currency}", "right"), "instruction"],
        [
            (names[s.partner_id], "" if s.partner_id is None else s.partner_id, s.net, s.direction or "-")
            for s in run.statements
        ],
    )
    return 0


def _global_id(run: queries.Run) -> str:
    """The id GraphQL knows the run by (`node(id:)`, `finalizeSettlement`), next to its number."""
    return to_global_id("SettlementRun", run.id)


def _settled_json(run: queries.Run, names: dict[int | None, str]) -> dict[str, object]:
    """The export's JSON shape with fields added, never changed: scripts that read it keep working."""
    body = export.as_json(run)
    statements = cast(list[dict[str, Any]], body["statements"])
    return {
        **body,
        "statements": [{**s, "partner_name": names[s["partner_id"]]} for s in statements],
        "global_id": _global_id(run),
        "replaced_draft_runs": list(run.replaced_draft_ids),
    }


async def _partner_names(db: Database, partner_ids: list[int | None]) -> dict[int | None, str]:
    """Names to show for partner ids (None: the coalition's own statement); an id whose partner is
    not found shows as the id rather than failing the report."""
    ids = sorted({p for p in partner_ids if p is not None})
    found = await partners.partners_by_id(db, ids)
    names: dict[int | None, str] = {p: found[p].name if p in found else str(p) for p in ids}
    names[None] = "coalition"
    return names


async def export_run(args: argparse.Namespace) -> int:
    async with standalone_database() as db:
        run = await queries.get_run(db, CLI_SETTLER, args.run_id)
    if run is None:
        print(f"error: no settlement run {args.run_id}")
        return 2
    print(export.render(run, args.format), end="")
    return 0


async def reconcile_run(args: argparse.Namespace) -> int:
    """Exit 0 when everything matched, 1 when disputes were opened, 2 when the file was refused."""
    text = args.file.read()
    async with standalone_database() as db:
        try:
            rec = await reconciliation.submit_reconciliation(
                db, CLI_SETTLER, run_id=args.run_id, partner_id=args.partner, csv_text=text
            )
        except DomainError as exc:
            return print_user_errors(exc)
        disputes = await reconciliation.items(
            db, CLI_SETTLER, rec, status=None, disputes_only=True, first=100, after=None
        )
        names = await _partner_names(db, [rec.partner_id])
    if args.json:
        print(json.dumps(export.reconciliation_summary(rec, [i for _, i in disputes.items]), indent=2))
    else:
        print(
            f"reconciliation {rec.id}: run {rec.run_id},"
            f" partner {names[rec.partner_id]} ({rec.partner_id}), {rec.rows} rows"
        )
        console.print_table(
            ["status", Column("items", "right")], [(status, count) for status, count in rec.counts.items()]
        )
        if disputes.items:
            print()
            console.print_table(
                [
                    Column("dispute", "right"),
                    "status",
                    "kind",
                    "order",
                    Column("ledger", "right"),
                    Column("file", "right"),
                ],
                [
                    (i.id, i.status, i.kind, i.order_id, i.ledger_points, i.partner_points)
                    for _, i in disputes.items
                ],
            )
        if disputes.has_next_page:
            print(f"... {rec.open_disputes} open disputes in all")
    return 1 if rec.open_disputes else 0


async def _transition(operation: Callable[[Database], Awaitable[queries.Run]]) -> int:
    async with standalone_database() as db:
        try:
            run = await operation(db)
        except DomainError as exc:
            return print_user_errors(exc)
    print(f"settlement run {run.id}: {run.status}  hash {run.content_hash}")
    return 0


async def finalize_run(args: argparse.Namespace) -> int:
    return await _transition(
        lambda db: service.finalize_settlement(
            db, CLI_SETTLER, args.run_id, override_open_disputes=args.override_open_disputes
        )
    )


async def mark_paid(args: argparse.Namespace) -> int:
    return await _transition(lambda db: service.mark_settlement_paid(db, CLI_SETTLER, args.run_id))


async def resolve_item(args: argparse.Namespace) -> int:
    async with standalone_database() as db:
        try:
            item = await reconciliation.resolve_dispute(db, CLI_SETTLER, item_id=args.item_id, note=args.note)
        except DomainError as exc:
            return print_user_errors(exc)
    print(f"dispute {item.id} ({item.status} {item.kind} {item.order_id!r}) resolved: {item.resolution_note}")
    return 0
