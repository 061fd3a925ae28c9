"""`coalition audit`: prove the books balance, or print every place they do not."""

from __future__ import annotations

import argparse

from services.ledger.audit import CHECKS, audit
from shared.database import standalone_session


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("audit", help="check the ledger invariants; non-zero on failure")
    parser.set_defaults(handler=run_audit)


async def run_audit(args: argparse.Namespace) -> int:
    async with standalone_session() as session:
        found = await audit(session)
    if not found:
        print(f"ledger audit: {len(CHECKS)} invariants checked, all hold")
        return 0
    for violation in found:
        print(f"VIOLATION [{violation.invariant}] {violation.detail}")
    print(f"ledger audit: {len(found)} violation(s)")
    return 1
