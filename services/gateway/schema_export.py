"""`coalition schema export`: the SDL in schema.graphql and the error codes in docs/errors.md are
generated, never edited by hand."""

from __future__ import annotations

import argparse
from pathlib import Path

from shared.settings import PROJECT_ROOT

SCHEMA_FILE = PROJECT_ROOT / "schema.graphql"


def render_sdl() -> str:
    from services.gateway.schema import build_schema

    return build_schema().as_str().rstrip() + "\n"


def render_errors() -> str:
    from services.gateway.error_docs import render_errors_md
    from services.gateway.schema import build_schema

    return render_errors_md(build_schema()._schema)


def register(subparsers: argparse._SubParsersAction) -> None:
    from services.gateway.error_docs import ERRORS_FILE

    parser = subparsers.add_parser("schema", help="the GraphQL schema")
    commands = parser.add_subparsers(dest="schema_command", required=True)
    export = commands.add_parser(
        "export", help="write schema.graphql and docs/errors.md (or --output FILE, --errors-output FILE)"
    )
    export.add_argument("--output", type=Path, default=SCHEMA_FILE)
    export.add_argument("--errors-output", type=Path, default=ERRORS_FILE)
    export.set_defaults(handler=export_schema)


async def export_schema(args: argparse.Namespace) -> int:
    args.output.write_text(render_sdl())
    print(f"wrote {args.output}")
    args.errors_output.write_text(render_errors())
    print(f"wrote {args.errors_output}")
    return 0
