"""`coalition clients list | create-admin | create-app | disable | rotate-secret`, `coalition keys
rotate`."""

from __future__ import annotations

import argparse
import json
from collections.abc import Awaitable, Callable
from datetime import datetime

from services.identity import service
from shared import console
from shared.access import ADMIN_SCOPES, Principal
from shared.database import Database, standalone_database, standalone_session
from shared.errors import DomainError, print_user_errors

DEFAULT_ADMIN_SCOPES = sorted(ADMIN_SCOPES | {"members:read"})
# Whoever may run the command line against the database is an admin; the audit log says "cli".
CLI_ADMIN = Principal(client_id="cli", scopes=ADMIN_SCOPES)

PartnerNames = Callable[[Database, list[int]], Awaitable[dict[int, str]]]
_partner_names: PartnerNames | None = None


def name_partners_with(lookup: PartnerNames) -> None:
    """Identity comes before partners and may not read their names; the partners' command module
    hands in its lookup when it registers, so `clients list` can say whose a client is."""
    global _partner_names
    _partner_names = lookup


def register(subparsers: argparse._SubParsersAction) -> None:
    clients = subparsers.add_parser("clients", help="OAuth clients")
    client_commands = clients.add_subparsers(dest="clients_command", required=True)
    listing = client_commands.add_parser("list", help="every client, disabled ones marked; no secrets")
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    listing.set_defaults(handler=list_clients)
    admin = client_commands.add_parser("create-admin", help="an admin client; prints its secret once")
    admin.add_argument("--name", required=True)
    admin.add_argument("--scopes", nargs="+", default=DEFAULT_ADMIN_SCOPES)
    admin.set_defaults(handler=create_admin)
    app = client_commands.add_parser(
        "create-app", help="a member app (public client, scope member, PKCE); prints its client_id"
    )
    app.add_argument("--name", required=True)
    app.add_argument(
        "--redirect-uri",
        dest="redirect_uris",
        action="append",
        required=True,
        metavar="URI",
        help="an exact redirect URI (https, or http on 127.0.0.1/localhost/[::1]); repeat for more",
    )
    app.set_defaults(handler=create_app)
    disable = client_commands.add_parser(
        "disable", help="disable a client for good: no new tokens, its live tokens refused"
    )
    disable.add_argument("client_id", metavar="CLIENT_ID")
    disable.set_defaults(handler=disable_client)
    rotate_secret = client_commands.add_parser(
        "rotate-secret", help="a new secret, printed once; the old one and its tokens stop working"
    )
    rotate_secret.add_argument("client_id", metavar="CLIENT_ID")
    rotate_secret.set_defaults(handler=rotate_client_secret)

    keys = subparsers.add_parser("keys", help="token signing keys")
    key_commands = keys.add_subparsers(dest="keys_command", required=True)
    rotate = key_commands.add_parser("rotate", help="sign with a new key from now on")
    rotate.set_defaults(handler=rotate_keys)


async def list_clients(args: argparse.Namespace) -> int:
    async with standalone_database(pool_size=1) as db:
        clients = await service.list_clients(db, CLI_ADMIN)
        ids = sorted({c.partner_id for c in clients if c.partner_id is not None})
        names = await _partner_names(db, ids) if _partner_names is not None and ids else {}
    if args.json:
        print(json.dumps([_as_json(c, names) for c in clients], indent=2))
        return 0
    console.print_table(
        ["client id", "name", "partner", "scopes", "created", "disabled"],
        [
            (
                c.client_id,
                c.name,
                _partner(c, names),
                " ".join(c.scopes),
                f"{c.created_at:%Y-%m-%d %H:%M}",
                f"{c.disabled_at:%Y-%m-%d %H:%M}" if c.disabled_at else "",
            )
            for c in clients
        ],
    )
    return 0


def _partner(client: service.ClientView, names: dict[int, str]) -> str:
    if client.partner_id is None:
        return "-"  # an admin's client, no partner's
    return f"{names.get(client.partner_id, '?')} ({client.partner_id})"


def _as_json(client: service.ClientView, names: dict[int, str]) -> dict[str, object]:
    def instant(value: datetime | None) -> str | None:
        return value.isoformat() if value else None

    return {
        "client_id": client.client_id,
        "name": client.name,
        "partner_id": client.partner_id,
        "partner_name": names.get(client.partner_id) if client.partner_id is not None else None,
        "scopes": client.scopes,
        "created_at": instant(client.created_at),
        "disabled_at": instant(client.disabled_at),
        "secret_version": client.secret_version,
        "secret_rotated_at": instant(client.secret_rotated_at),
    }


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


async def create_app(args: argparse.Namespace) -> int:
    async with standalone_session() as session:
        try:
            app = await service.create_member_app(session, name=args.name, redirect_uris=args.redirect_uris)
        except DomainError as exc:
            return print_user_errors(exc)
        await session.commit()
    print(json.dumps({"client_id": app.client_id, "name": app.name, "redirect_uris": app.redirect_uris}))
    return 0


async def disable_client(args: argparse.Namespace) -> int:
    async with standalone_database(pool_size=1) as db:
        try:
            client = await service.disable_client(db, CLI_ADMIN, args.client_id)
        except DomainError as exc:
            return print_user_errors(exc)
    disabled_at = client.disabled_at.isoformat() if client.disabled_at else None
    print(json.dumps({"client_id": client.client_id, "disabled_at": disabled_at}))
    return 0


async def rotate_client_secret(args: argparse.Namespace) -> int:
    async with standalone_database(pool_size=1) as db:
        try:
            rotated = await service.rotate_client_secret(db, CLI_ADMIN, args.client_id)
        except DomainError as exc:
            return print_user_errors(exc)
    rotated_at = rotated.client.secret_rotated_at
    print(
        json.dumps(
            {
                "client_id": rotated.client.client_id,
                "client_secret": rotated.client_secret,
                "secret_rotated_at": rotated_at.isoformat() if rotated_at else None,
            },
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
