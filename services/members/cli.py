"""`coalition members …`: support commands for admins.

The group is created here, once (`command_group`); services above members add their own commands
to it (the ledger's `erase`, which must forfeit points), since members may not import them.
"""

from __future__ import annotations

import argparse

_GROUPS: dict[int, argparse._SubParsersAction] = {}


def command_group(subparsers: argparse._SubParsersAction) -> argparse._SubParsersAction:
    """The `members` sub-command's own sub-commands, created on first use."""
    group = _GROUPS.get(id(subparsers))
    if group is None:
        members = subparsers.add_parser("members", help="members: support commands for admins")
        group = members.add_subparsers(dest="members_command", required=True, metavar="ACTION")
        _GROUPS[id(subparsers)] = group
    return group


def register(subparsers: argparse._SubParsersAction) -> None:
    command_group(subparsers)
