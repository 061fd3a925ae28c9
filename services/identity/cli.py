"""`coalition clients create-admin` and `coalition keys rotate`."""

from __future__ import annotations

import argparse
import json

from services.identity import service
from shared.access import ADMIN_SCOPES
from shared.database import standalone_session
from shared.errors import DomainError, print_user_errors

DEFAULT_ADMIN_SCOPES = sorted(ADMIN_SCOPES | {"members:read"})


def register(subparsers: argparse._SubParsersAction) -> None:
    clients = subparsers.add_parser("clients", help="OAuth clients")
    client_commands = clients.add_subparsers(dest="clients_command", required=True)
    admin = client_commands.add_parser("create-admin", help="an admin client; prints its secret once")
    admin.add_argument("--name", required=True)
    admin.add_argument("--scopes", nargs="+", default=DEFAULT_ADMIN_SCOPES)
    admin.set_defaults(handler=create_admin)

    keys = subparsers.add_parser("keys", help="token signing keys")
    key_commands = keys.add_subparsers(dest="keys_command", required=True)
    rotate = key_commands.add_parser("rotate", help="sign with a new key from now on")
    rotate.set_defaults(handler=rotate_keys)


async def create_admin(args: argparse.Namespace) -> int:
    async with standalone_session() as session:
        try:
            creds = await service.create_client(session, name=args.name, scopes=args.scopes)
        except DomainError as exc:
            return print_user_errors(exc)
        await session.commit()
    print(
        json.dumps(
            {"client_id": creds.client_id, "client_secret": creds.client_secret, "scopes": creds.scopes},
            indent=2,
        )
    )
    return 0


async def rotate_keys(args: argparse.Namespace) -> int:
    async with standalone_session() as session:
        kid = await service.rotate_signing_key(session)
        await session.commit()
    print(json.dumps({"kid": kid}))
    return 0
