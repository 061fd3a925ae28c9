"""`coalition members erase NUMBER`: the right to erasure from the command line (audit-logged as
the CLI). It lives with the ledger because erasing forfeits the member's points."""

from __future__ import annotations

import argparse
import json

from services.ledger import erasure
from services.members import cli as members_cli
from shared.access import ADMIN_SCOPES, Principal
from shared.database import standalone_database
from shared.errors import DomainError, print_user_errors

CLI_ADMIN = Principal(client_id="cli", scopes=ADMIN_SCOPES)


def register(subparsers: argparse._SubParsersAction) -> None:
    erase = members_cli.command_group(subparsers).add_parser(
        "erase",
        help="erase a member: personal data and links removed, remaining points forfeited to breakage",
    )
    erase.add_argument("number", help="the member's 12-digit coalition number")
    erase.set_defaults(handler=erase_member)


async def erase_member(args: argparse.Namespace) -> int:
    async with standalone_database() as db:
        try:
            done = await erasure.erase_member(db, CLI_ADMIN, args.number)
        except DomainError as exc:
            return print_user_errors(exc)
    print(
        json.dumps(
            {
                "member_number": done.member_number,
                "erased_at": done.erased_at.isoformat(),
                "forfeited_points": done.forfeited_points,
                "already_erased": done.already_erased,
            },
            indent=2,
        )
    )
    return 0
