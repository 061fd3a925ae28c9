"""`coalition audit`: prove the books balance, or print every place they do not.

The gateway composes it because it spans services: the ledger's invariants and settlement's
(nets sum to zero, final runs match their hashes, every final period carries the points consumed
in it). Each service owns its checks; this only runs them and prints.
"""

from __future__ import annotations

import argparse

from services.ledger.audit import CHECKS, Violation, audit
from services.settlement.audit import audit_runs
from shared import console
from shared.database import standalone_database


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "audit", help="check the ledger and settlement invariants; exit 1 on failure"
    )
    parser.set_defaults(handler=run_audit)


async def run_audit(args: argparse.Namespace) -> int:
    async with standalone_database() as db:
        with console.progress(total=len(CHECKS) + 1) as steps:
            found = await audit(db, on_check=steps.step)
            steps.step("settlement runs: nets, hashes, points consumed")
            found += [Violation(name, detail) for name, detail in await audit_runs(db)]
    if not found:
        print(f"ledger audit: {len(CHECKS)} invariants checked, all hold")
        return 0
    for violation in found:
        print(f"VIOLATION [{violation.invariant}] {violation.detail}")
    print(f"ledger audit: {len(found)} violation(s)")
    return 1
