"""The `coalition` command: serve, migrate, audit, onboard, seed a demo.

Each service adds its own commands through a `register(subparsers)` in its `cli.py`; handlers are
async functions returning the exit code.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import inspect
import os
import sys
from collections.abc import Sequence

from shared.database import resolve_database_url
from shared.migrate import SchemaBehind, ensure_schema_current, schema_status, upgrade_to_head
from shared.settings import get_settings

COMMAND_MODULES = (
    "services.identity.cli",
    "services.partners.cli",
    "services.ledger.cli",
    "services.gateway.demo",
    "services.gateway.worker",
    "services.settlement.cli",
    "services.gateway.schema_export",
)


def _register_gateway(subparsers: argparse._SubParsersAction) -> None:
    serve = subparsers.add_parser("serve", help="run the gateway (uvicorn, uvloop, httptools)")
    serve.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
    serve.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    serve.add_argument("--workers", type=int, default=1)
    serve.set_defaults(handler=serve_command, sync=True)

    db = subparsers.add_parser("db", help="the database")
    commands = db.add_subparsers(dest="db_command", required=True)
    commands.add_parser("upgrade", help="apply migrations").set_defaults(handler=db_upgrade)
    commands.add_parser("status", help="current and latest revision").set_defaults(handler=db_status)
    commands.add_parser("url", help="print the database URL").set_defaults(handler=db_url)
    commands.add_parser("stop", help="stop the embedded server").set_defaults(handler=db_stop)


def serve_command(args: argparse.Namespace) -> int:
    import uvicorn

    url = resolve_database_url()  # starts the embedded server here, not in each worker
    try:
        asyncio.run(ensure_schema_current(url))
    except SchemaBehind as exc:
        print(f"coalition: {exc}", file=sys.stderr)
        return 1
    os.environ["DATABASE_URL"] = url
    if "OAUTH_ISSUER" not in os.environ:
        os.environ["OAUTH_ISSUER"] = f"http://{args.host}:{args.port}"
    get_settings.cache_clear()
    uvicorn.run(
        "services.gateway.app:create_app",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        loop="uvloop",
        http="httptools",
        lifespan="on",
        access_log=False,
        proxy_headers=True,
    )
    return 0


async def db_upgrade(args: argparse.Namespace) -> int:
    url = resolve_database_url()
    await upgrade_to_head(url)
    current, _ = await schema_status(url)
    print(f"database at revision {current}")
    return 0


async def db_status(args: argparse.Namespace) -> int:
    current, head = await schema_status(resolve_database_url())
    print(f"current: {current or '(empty)'}\nlatest:  {head}")
    return 0 if current == head else 1


async def db_url(args: argparse.Namespace) -> int:
    print(resolve_database_url())
    return 0


async def db_stop(args: argparse.Namespace) -> int:
    settings = get_settings()
    if settings.database_url:
        print("DATABASE_URL is set: there is no embedded server to stop")
        return 0
    from shared.embedded_postgres import stop_embedded

    print("embedded PostgreSQL stopped" if stop_embedded(settings.data_dir) else "not running")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="coalition", description=__doc__.splitlines()[0])
    subparsers = parser.add_subparsers(dest="command", required=True)
    _register_gateway(subparsers)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler = args.handler
    if inspect.iscoroutinefunction(handler):
        return int(asyncio.run(handler(args)) or 0)
    return int(handler(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
