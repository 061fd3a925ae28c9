"""graphql-http's server audit (the GraphQL-over-HTTP spec's reference conformance checks) against
the real server: every audit passes, the MUSTs, the SHOULDs and the MAYs alike.

The audit is the npm package `graphql-http`, pinned in `graphql_http_audit/package-lock.json`
and installed there with `npm ci` on first use (tests/npm.py: Node.js and npm from the venv).
`audit.mjs` adds the bearer token to every request the audit makes.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from tests.npm import npm_ci

AUDIT_DIR = Path(__file__).parent / "graphql_http_audit"


def test_the_graphql_over_http_audit_passes_every_check(server, live_admin_token):
    node = npm_ci(AUDIT_DIR)
    env = {**os.environ, "AUDIT_URL": f"{server}/graphql", "AUDIT_TOKEN": live_admin_token}
    ran = subprocess.run(
        [node, "audit.mjs"], cwd=AUDIT_DIR, env=env, capture_output=True, text=True, timeout=120
    )
    assert ran.returncode == 0, ran.stderr
    results = json.loads(ran.stdout)
    failed = [f"{r['id']} {r['status']}: {r['name']} ({r['reason']})" for r in results if r["status"] != "ok"]
    assert failed == [], "\n".join(failed)
    assert len(results) == 61  # graphql-http 1.23.1's full list; a new pin may add audits
