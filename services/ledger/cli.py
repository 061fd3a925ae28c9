"""`coalition audit`: prove the books balance, or print every place they do not."""

from __future__ import annotations

import argparse

from services.ledger.audit import CHECKS, Violation, audit
from shared.database import standalone_database


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("audit", help="check the ledger invariants; non-zero on failure")
    parser.set_defaults(handler=run_audit)


async def run_audit(args: argparse.Namespace) -> int:
    from services.settlement.service import audit_runs  # settlement builds on the ledger

    async with standalone_database() as db:
        async with db.sessions() as session:
            found = await audit(session)
        found += [Violation(name, detail) for name, detail in await audit_runs(db)]
    if not found:
        print(f"ledger audit: {len(CHECKS)} invariants checked, all hold")
        return 0
    for violation in found:
        print(f"VIOLATION [{violation.invariant}] {violation.detail}")
    print(f"ledger audit: {len(found)} violation(s)")
    return 1
