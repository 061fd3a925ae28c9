"""README's "A partner's first calls" runs as written: the block is taken from README.md and run
with bash against `coalition demo` served by a real `coalition serve`, as a newcomer would after
`make run`. Also the demo's own `try` commands, and the promise that a settlement run over the
previous calendar month has something to net.

The README block derives its order id and idempotency key from the clock (a new purchase per run)
and retries the purchase once inside the run: a retry earns nothing, a second run earns again.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.gateway.demo import middle_of_last_month
from shared import clock
from shared.database import drop_database, recreate_database
from shared.migrate import upgrade_to_head
from shared.settings import PROJECT_ROOT
from tests.e2e.conftest import Gateway, free_port, run_cli, start_gateway

SECTION = "## A partner's first calls"
BALANCE = "query($n: String!) { member(memberNumber: $n) { balance { available pending } } }"


def readme_snippet() -> str:
    """The first ```sh block under the section's heading, before the next section: a renamed
    heading or a block that is no longer `sh` fails here, loudly, rather than testing nothing."""
    readme = (PROJECT_ROOT / "README.md").read_text()
    assert SECTION in readme, f"README.md has no {SECTION!r} heading"
    section = readme.split(SECTION, 1)[1].split("\n## ", 1)[0]
    found = re.search(r"^```sh\n(.*?)^```$", section, re.S | re.M)
    assert found, f"no ```sh block under {SECTION!r}"
    return found.group(1)


@dataclass
class ServedDemo:
    database_url: str
    gateway: Gateway
    checkout: Path  # where .coalition/demo.json is, as in a checkout after `make run`
    demo: dict[str, Any]

    def bash(self, script: str) -> list[dict[str, Any]]:
        """Runs `script` as a newcomer would (PORT set, from the checkout, no COALITION_DATA_DIR)
        and returns the JSON documents it printed, one a line."""
        env = {k: v for k, v in os.environ.items() if k != "COALITION_DATA_DIR"}
        env["PORT"] = str(self.gateway.port)
        done = subprocess.run(
            ["bash", "-c", script],
            cwd=self.checkout,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        assert done.stderr == "", done.stderr  # a traceback from python3, a curl complaint
        lines = [line for line in done.stdout.splitlines() if line.strip()]
        return [json.loads(line) for line in lines]

    def balance(self) -> dict[str, int]:
        cafe = self.demo["partners"][0]
        token = httpx.post(
            f"{self.gateway.base}/oauth/token",
            data={"grant_type": "client_credentials"},
            auth=(cafe["client_id"], cafe["client_secret"]),
        ).json()["access_token"]
        body = httpx.post(
            f"{self.gateway.base}/graphql",
            json={"query": BALANCE, "variables": {"n": self.demo["members"][0]["member_number"]}},
            headers={"Authorization": f"Bearer {token}"},
        ).json()
        return body["data"]["member"]["balance"]


@pytest.fixture(scope="module")
async def served_demo(
    database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[ServedDemo]:
    """A fresh database seeded by `coalition demo` (demo.json under <checkout>/.coalition) and
    served on a free port; the demo is told that port, as `make run` tells it PORT."""
    name = f"coalition_first_calls_{os.getpid()}"
    url = await recreate_database(database_url, name)
    checkout = tmp_path_factory.mktemp("checkout")
    port = free_port()
    gateway = None
    try:
        await upgrade_to_head(url)
        seeded = run_cli(url, "demo", COALITION_DATA_DIR=str(checkout / ".coalition"), PORT=str(port))
        assert seeded.returncode == 0, seeded.stdout + seeded.stderr
        demo = json.loads((checkout / ".coalition" / "demo.json").read_text())
        gateway = start_gateway(url, checkout / "gateway.log", port=port)
        yield ServedDemo(url, gateway, checkout, demo)
    finally:
        if gateway is not None:
            gateway.stop()
        await drop_database(database_url, name)


def test_the_snippet_uses_only_what_a_newcomer_has():
    snippet = readme_snippet()
    assert "jq" not in snippet.split()
    assert "${PORT:-8000}" in snippet and ".coalition" in snippet
    assert shutil.which("bash") and shutil.which("curl") and shutil.which("python3")


def test_the_readme_snippet_earns_once_per_purchase_and_reads_the_balance(served_demo: ServedDemo):
    before = served_demo.balance()
    earn, retry, balance = served_demo.bash(readme_snippet())

    assert "errors" not in earn, earn
    answer = earn["data"]["recordPurchase"]
    assert answer["userErrors"] == []
    assert answer["pointsEarned"] == 12  # 12.90 EUR at Café Lumen's 1 point per EUR, floored
    assert answer["transaction"]["points"] == 12
    assert answer["transaction"]["status"] == "AVAILABLE"  # the café has no return window
    assert retry == earn  # the retry is the first answer again, transaction id included
    seen = balance["data"]["member"]
    assert seen["memberNumber"] == served_demo.demo["members"][0]["member_number"]
    assert seen["balance"] == {"available": before["available"] + 12, "pending": before["pending"]}

    # Run again: the order id and key come from the clock, to the second; a new one is another
    # purchase (12 more), and never DUPLICATE_ORDER or IDEMPOTENCY_KEY_REUSED.
    time.sleep(1.1)
    again, again_retry, later = served_demo.bash(readme_snippet())
    assert again["data"]["recordPurchase"]["pointsEarned"] == 12
    assert again["data"]["recordPurchase"]["transaction"]["id"] != answer["transaction"]["id"]
    assert again_retry == again
    assert later["data"]["member"]["balance"]["available"] == before["available"] + 24


def test_demo_json_try_commands_earn_once_however_often_they_run(served_demo: ServedDemo):
    steps = served_demo.demo["try"]
    before = served_demo.balance()
    (balance,) = served_demo.bash(f"{steps['token']}\n{steps['balance']}; echo")
    assert balance["data"]["member"]["balance"]["available"] == before["available"]
    script = f"{steps['token']}\n{steps['earn']}; echo\n{steps['earn']}; echo"
    first, second = served_demo.bash(script)
    assert first["data"]["recordPurchase"]["pointsEarned"] == 12, first
    assert first["data"]["recordPurchase"]["userErrors"] == []
    assert second == first  # a fixed key and input: the same transaction, no new points
    (third,) = served_demo.bash(f"{steps['token']}\n{steps['earn']}; echo")
    assert third == first
    assert served_demo.balance()["available"] == before["available"] + 12


def test_a_naive_occurred_at_is_a_user_error_as_the_readme_says(served_demo: ServedDemo):
    snippet = readme_snippet()
    assert "+%Y-%m-%dT%H:%M:%SZ" in snippet  # the snippet's occurredAt carries Z
    naive = snippet.replace("+%Y-%m-%dT%H:%M:%SZ", "+%Y-%m-%dT%H:%M:%S")
    earn, _retry, _balance = served_demo.bash(naive)
    errors = earn["data"]["recordPurchase"]["userErrors"]
    assert [(e["code"], e["field"]) for e in errors] == [("INVALID", "occurredAt")]


def test_settling_the_previous_month_nets_the_demos_cross_partner_redemption(served_demo: ServedDemo):
    this_month = clock.now().astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    last_month = clock.add_months(this_month, -1)
    assert last_month <= middle_of_last_month(clock.now()) < this_month
    settled = run_cli(
        served_demo.database_url,
        "settle",
        "--from",
        last_month.isoformat(),
        "--to",
        this_month.isoformat(),
        "--json",
    )
    assert settled.returncode == 0, settled.stdout + settled.stderr
    run = json.loads(settled.stdout)
    ids = {p["name"]: p["partner_id"] for p in served_demo.demo["partners"]}
    nets = {s["partner_id"]: s["net"] for s in run["statements"]}
    # Chloe redeemed 100 points at the airline: 42 from her café lot, 58 from her bookshop lot,
    # each owed at the airline's redeem price (0.010).
    assert nets[ids["SkyBridge Airlines"]] == "1.00"
    assert nets[ids["Café Lumen"]] == "-0.42"
    assert nets[ids["Pageturner Books"]] == "-0.58"
    assert any(s["net"] not in ("0", "0.00") for s in run["statements"])
    assert datetime.fromisoformat(run["period_start"]) == last_month
