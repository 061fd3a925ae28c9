"""`coalition members show | set-password`: support looks a member up and sets a password.

`show` prints what the members service knows (number, email, created, activated, linked
partners); balances belong to the ledger and are not shown here. `set-password` reads the
password from stdin (a prompt without echo on a terminal), so it never sits in the shell's
history or in `ps`, and applies the rules members meet themselves.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from datetime import datetime

from services.members import accounts
from services.partners import service as partners
from shared.access import ADMIN_SCOPES, Principal
from shared.console import print_table
from shared.database import standalone_database
from shared.errors import DomainError, print_user_errors

CLI_ADMIN = Principal(client_id="cli", scopes=ADMIN_SCOPES)


_GROUPS: dict[int, argparse._SubParsersAction] = {}


def command_group(subparsers: argparse._SubParsersAction) -> argparse._SubParsersAction:
    """The `members` sub-command's own sub-commands, created on first use: services above members
    add theirs to it (the ledger's `erase`, which must forfeit points), as members may not import
    them."""
    group = _GROUPS.get(id(subparsers))
    if group is None:
        members = subparsers.add_parser("members", help="members: look one up, set a password, erase")
        group = members.add_subparsers(dest="members_command", required=True, metavar="ACTION")
        _GROUPS[id(subparsers)] = group
    return group


def register(subparsers: argparse._SubParsersAction) -> None:
    commands = command_group(subparsers)
    show = commands.add_parser("show", help="what the members service knows of one member")
    show.add_argument("number", help="the 12-digit member number")
    show.add_argument("--json", action="store_true", help="JSON instead of a table")
    show.set_defaults(handler=show_member)
    password = commands.add_parser("set-password", help="set a member's password, read from stdin")
    password.add_argument("number", help="the 12-digit member number")
    password.set_defaults(handler=set_password)


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


async def show_member(args: argparse.Namespace) -> int:
    async with standalone_database() as db:
        try:
            profile = await accounts.member_profile(db, CLI_ADMIN, args.number)
        except DomainError as exc:
            return print_user_errors(exc)
        names = await partners.partners_by_id(db, [link.partner_id for link in profile.links])
    links = [
        {
            "partner_id": link.partner_id,
            "partner": names[link.partner_id].name if link.partner_id in names else None,
            "how": link.how,
            "partner_customer_ref": link.partner_customer_ref,
            "linked_at": _iso(link.linked_at),
        }
        for link in profile.links
    ]
    document = {
        "member_number": profile.member_number,
        "email": profile.email,
        "created_at": _iso(profile.created_at),
        "activated": profile.activated,
        "password_changed_at": _iso(profile.password_changed_at),
        "code_pending_until": _iso(profile.code_pending_until),
        "require_code_to_spend": profile.require_code_to_spend,
        "erased_at": _iso(profile.erased_at),
        "links": links,
    }
    if args.json:
        print(json.dumps(document, indent=2))
        return 0
    print_table(
        ["field", "value"],
        [(k, "" if v is None else v) for k, v in document.items() if k != "links"],
    )
    print()
    print_table(
        ["partner id", "partner", "how", "customer ref", "linked at"],
        [
            (x["partner_id"], x["partner"] or "", x["how"], x["partner_customer_ref"] or "", x["linked_at"])
            for x in links
        ],
    )
    return 0


def _read_password() -> str:
    if sys.stdin.isatty():
        return getpass.getpass("new password: ")
    return sys.stdin.readline().rstrip("\r\n")  # one line; only its line ending is not part of it


async def set_password(args: argparse.Namespace) -> int:
    password = _read_password()
    async with standalone_database() as db:
        try:
            await accounts.support_set_password(db, CLI_ADMIN, args.number, password)
        except DomainError as exc:
            return print_user_errors(exc)
    print(json.dumps({"member_number": args.number.strip(), "password_set": True}))
    return 0
