"""The `coalition` command: serve, migrate, audit, onboard, seed a demo.

The gateway owns `serve` and `db`; every other service adds its own commands through a
`register(subparsers)` in the modules of COMMAND_MODULES, so this file never learns their
options. A handler takes the parsed arguments and returns the exit code; it may be async.
What a script would read is printed as JSON on stdout; diagnostics go to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import inspect
import json
import logging
import os
import resource
import sys
from collections.abc import Sequence

from shared.database import libpq_url, resolve_database_url
from shared.logs import configure_logging, logging_config
from shared.migrate import SchemaBehind, ensure_schema_current, schema_status, upgrade_to_head
from shared.settings import get_settings

COMMAND_MODULES = (
    "services.identity.cli",
    "services.partners.cli",
    "services.members.cli",
    "services.ledger.cli",
    "services.earning.cli",
    "services.earning.promo_code_cli",
    "services.gateway.audit",
    "services.gateway.demo",
    "services.gateway.worker",
    "services.settlement.cli",
    "services.gateway.schema_export",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="coalition", description=(__doc__ or "").splitlines()[0])
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _register_gateway(subparsers)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        outcome = args.handler(args)
        if inspect.isawaitable(outcome):
            outcome = asyncio.run(outcome)  # type: ignore[arg-type]
    except SchemaBehind as exc:  # any command on a stale database says what to run
        print(f"coalition: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return int(outcome or 0)


def _register_gateway(subparsers: argparse._SubParsersAction) -> None:
    serve = subparsers.add_parser("serve", help="run the gateway (uvicorn, uvloop, httptools)")
    serve.add_argument("--host", default=os.environ.get("HOST") or "127.0.0.1")
    serve.add_argument("--port", type=int, default=int(os.environ.get("PORT") or 8000))
    serve.add_argument("--workers", type=int, default=1, help="processes (default 1)")
    serve.set_defaults(handler=serve_command)

    db = subparsers.add_parser("db", help="the database: migrations, URL, embedded server")
    commands = db.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    commands.add_parser("upgrade", help="apply pending migrations").set_defaults(handler=db_upgrade)
    commands.add_parser("status", help="current and latest revision; exit 1 when behind").set_defaults(
        handler=db_status
    )
    url = commands.add_parser("url", help="print the database URL (starts the embedded server)")
    url.add_argument(
        "--libpq",
        action="store_true",
        help='the form psql and pg_dump read: psql "$(coalition db url --libpq)"',
    )
    url.set_defaults(handler=db_url)
    commands.add_parser("stop", help="stop the embedded server").set_defaults(handler=db_stop)
    revision = commands.add_parser("revision", help="write a migration for what the models changed")
    revision.add_argument("-m", "--message", required=True, help="what changed, e.g. 'member tiers'")
    revision.set_defaults(handler=db_revision)


# Enough for every socket a gateway process is meant to hold (MAX_SOCKETS_PER_CLIENT is 5,000 for
# one partner alone) with room for its database pool, without asking for "unlimited".
WANTED_OPEN_FILES = 65_536


def raise_open_file_limit(wanted: int = WANTED_OPEN_FILES) -> int:
    """Raises this process's soft limit on open files towards `wanted`, as far as the hard limit
    allows, and returns it. Every subscription is a socket, and the soft limit many systems start
    with (1,024) would refuse connections long before the gateway's own caps; the hard limit is
    the operator's to set (`ulimit -Hn`, systemd's LimitNOFILE), so it is never exceeded. uvicorn's
    worker processes inherit it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if target > soft:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError):
            return soft
        return target
    return soft


def serve_command(args: argparse.Namespace) -> int:
    """Runs uvicorn; the database is resolved (the embedded server started) here, once, and handed
    to the workers as DATABASE_URL, so workers never race to start it."""
    import uvicorn

    if args.workers < 1:
        print("coalition: --workers must be at least 1", file=sys.stderr)
        return 2
    from shared.mail import describe_transport

    try:
        where_mail_goes = describe_transport()
    except ValueError as exc:
        print(f"coalition: {exc}", file=sys.stderr)
        return 2
    url = resolve_database_url()
    asyncio.run(ensure_schema_current(url))  # SchemaBehind: main prints what to run, exits 1
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("OAUTH_ISSUER", f"http://{args.host}:{args.port}")
    get_settings.cache_clear()
    # Once, whatever the number of workers, as a log line in the log's own format.
    configure_logging()
    logging.getLogger("coalition.mail").info(where_mail_goes)
    open_files = raise_open_file_limit()
    logging.getLogger("coalition.gateway").info("open files limit %d (each socket is one)", open_files)
    uvicorn.run(
        "services.gateway.app:create_app",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        loop="uvloop",
        http="httptools",
        lifespan="on",
        access_log=False,  # request_log.RequestContext logs each request, with its id
        log_config=logging_config(),  # JSON lines, or text with LOG_FORMAT=text (shared/logs.py)
        proxy_headers=True,
        # SIGTERM: stop accepting, let requests in flight finish, cut the rest after the grace.
        timeout_graceful_shutdown=get_settings().shutdown_grace_seconds,
    )
    return 0


async def db_upgrade(args: argparse.Namespace) -> int:
    url = resolve_database_url()
    before, _ = await schema_status(url)
    await upgrade_to_head(url)
    after, _ = await schema_status(url)
    print(json.dumps({"previous": before, "revision": after, "changed": before != after}))
    return 0


async def db_status(args: argparse.Namespace) -> int:
    current, head = await schema_status(resolve_database_url())
    print(json.dumps({"current": current, "latest": head, "up_to_date": current == head}))
    return 0 if current == head else 1


async def db_url(args: argparse.Namespace) -> int:
    url = resolve_database_url()
    print(libpq_url(url) if args.libpq else url)
    return 0


async def db_revision(args: argparse.Namespace) -> int:
    import services.gateway.tables  # noqa: F401  (every service's tables on Base.metadata)
    from shared.migrate import autogenerate_revision
    from shared.models import Base

    path = await autogenerate_revision(resolve_database_url(), args.message, Base.metadata)
    if path is None:
        print("coalition: the models match the migrations; nothing to generate", file=sys.stderr)
    print(json.dumps({"created": path}))
    return 0


async def db_stop(args: argparse.Namespace) -> int:
    settings = get_settings()
    if settings.database_url:
        print("coalition: DATABASE_URL is set, so no embedded server is in use", file=sys.stderr)
        return 0
    from shared.embedded_postgres import stop_embedded

    stopped = stop_embedded(settings.data_dir)
    print("embedded PostgreSQL stopped" if stopped else "embedded PostgreSQL was not running")
    return 0


if __name__ == "__main__":
    sys.exit(main())
