"""`coalition partners create`: onboard a partner from the command line."""

from __future__ import annotations

import argparse
import json
from decimal import Decimal, InvalidOperation

from services.identity import cli as identity_cli
from services.partners import service
from shared.access import ADMIN_SCOPES, Principal
from shared.database import Database, standalone_database
from shared.errors import DomainError, print_user_errors
from shared.settings import get_settings

CLI_ADMIN = Principal(client_id="cli", scopes=ADMIN_SCOPES)


def _decimal(value: str) -> Decimal:
    try:
        return Decimal(value)
    except InvalidOperation as exc:
        raise argparse.ArgumentTypeError(f"{value!r} is not a decimal number") from exc


async def partner_names(db: Database, partner_ids: list[int]) -> dict[int, str]:
    """Names by partner id, for identity's `clients list` (identity may not import partners)."""
    return {i: p.name for i, p in (await service.partners_by_id(db, partner_ids)).items()}


def register(subparsers: argparse._SubParsersAction) -> None:
    identity_cli.name_partners_with(partner_names)
    partners = subparsers.add_parser("partners", help="partner brands")
    commands = partners.add_subparsers(dest="partners_command", required=True)
    create = commands.add_parser("create", help="onboard a partner; prints its credentials once")
    create.add_argument("--name", required=True)
    # Prices are in the coalition's settlement currency, whatever the partner's own (DESIGN.md):
    # the help says which, so nobody types 1 meaning one cent.
    unit = f"{get_settings().settlement_currency} per point"
    create.add_argument("--currency", required=True, help="ISO 4217 code of its purchases, e.g. EUR")
    create.add_argument(
        "--issue-price",
        type=_decimal,
        required=True,
        help=f"{unit}, e.g. 0.010: what its points outstanding are worth, the basis of breakage",
    )
    create.add_argument(
        "--redeem-price",
        type=_decimal,
        required=True,
        help=f"{unit}, e.g. 0.008: what it is paid for each point members spend with it",
    )
    create.add_argument(
        "--earn-rate", type=_decimal, required=True, help="points per unit of --currency spent, e.g. 1"
    )
    create.add_argument("--return-window-days", type=int, default=0, help="days before points are usable")
    create.add_argument("--earn-rounding", choices=["FLOOR", "HALF_UP"], default="FLOOR")
    create.add_argument(
        "--issue-fee-per-point",
        type=_decimal,
        default=Decimal(0),
        help=f"{unit} issued, owed to the coalition, e.g. 0.001 (default 0)",
    )
    create.add_argument(
        "--breakage-share",
        type=_decimal,
        default=Decimal(0),
        help="fraction of expired points' value owed to the coalition, 0 to 1 (default 0)",
    )
    create.add_argument(
        "--time-zone", default="UTC", help="IANA name where its days begin, e.g. Europe/Paris (default UTC)"
    )
    create.set_defaults(handler=create_partner)


async def create_partner(args: argparse.Namespace) -> int:
    async with standalone_database() as db:
        try:
            created = await service.create_partner(
                db,
                CLI_ADMIN,
                name=args.name,
                currency=args.currency.upper(),
                issue_price=args.issue_price,
                redeem_price=args.redeem_price,
                earn_rate=args.earn_rate,
                return_window_days=args.return_window_days,
                earn_rounding=args.earn_rounding,
                issue_fee_per_point=args.issue_fee_per_point,
                breakage_share=args.breakage_share,
                time_zone=args.time_zone,
            )
        except DomainError as exc:
            return print_user_errors(exc)
    print(
        json.dumps(
            {
                "partner_id": created.partner.id,
                "name": created.partner.name,
                "client_id": created.client_id,
                "client_secret": created.client_secret,
            },
            indent=2,
        )
    )
    return 0
