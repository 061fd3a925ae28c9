"""What the `coalition` commands tell a person: `settle` names the partners, gives the run's
GraphQL id and says which draft it replaced; `worker --once` counts holds as holds; progress is
drawn only on a terminal; `db url --libpq` is a URL psql connects with."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import shutil
import subprocess
from datetime import timedelta
from pathlib import Path

import pytest

from services.settlement import queries as settlement_queries
from shared import clock
from shared.database import Database, drop_database, recreate_database
from shared.embedded_postgres import stop_embedded
from shared.ids import from_global_id
from shared.migrate import upgrade_to_head
from tests.e2e.conftest import COALITION, run_cli
from tests.factories import ADMIN, authorize, earn, enroll, link, make_partner, redeem, unique

PSQL = shutil.which("psql")


async def _cross_partner_day(db: Database, days_ago: int):
    """A day on which a member earns at a café and spends at an airline: the café owes the airline."""
    t0 = clock.now().replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=days_ago)
    cafe = await make_partner(db, name=unique("CLI Café"))
    airline = await make_partner(db, name=unique("CLI SkyBridge Airlines long name"))
    member = await enroll(db, cafe)
    await link(db, airline, member)
    try:
        clock.set_clock(lambda: t0 + timedelta(hours=1))
        await earn(db, cafe, member.member_number, "1000")
        clock.set_clock(lambda: t0 + timedelta(hours=2))
        assert (await redeem(db, airline, member.member_number, 300)).errors == []
    finally:
        clock.set_clock(None)
    return t0, cafe, airline


async def test_settle_names_partners_gives_the_global_id_and_says_which_draft_it_replaced(db, database_url):
    t0, cafe, airline = await _cross_partner_day(db, days_ago=4100)
    period = ["--from", t0.isoformat(), "--to", (t0 + timedelta(days=1)).isoformat()]

    first = run_cli(database_url, "settle", *period)
    assert first.returncode == 0, first.stdout + first.stderr
    assert first.stderr == ""  # not a terminal: no progress drawn
    number, global_id = re.search(r"settlement run (\d+) \(id (\S+), DRAFT\)", first.stdout).groups()
    assert from_global_id(global_id) == ("SettlementRun", int(number))
    assert "replaced draft run" not in first.stdout
    lines = first.stdout.splitlines()
    header = next(line for line in lines if line.startswith("partner"))
    rows = {name: next(line for line in lines if line.startswith(name)) for name in (cafe.name, airline.name)}
    assert rows[cafe.name].rstrip().endswith("PAY_IN") and rows[airline.name].rstrip().endswith("PAY_OUT")
    for row in rows.values():  # aligned: every row's instruction starts under the header's
        assert re.search(r"PAY_(IN|OUT)", row).start() == header.index("instruction")
        assert re.search(r"-?\d+\.\d\d\b", row).end() == header.index("net EUR") + len("net EUR")

    again = run_cli(database_url, "settle", *period)
    assert again.returncode == 0, again.stdout + again.stderr
    second = int(re.search(r"settlement run (\d+) ", again.stdout).group(1))
    assert re.findall(r"^replaced draft runs? .*$", again.stdout, re.M) == [f"replaced draft run {number}"]
    assert await settlement_queries.get_run(db, ADMIN, int(number)) is None  # really replaced

    # --json: the export's shape with fields added; half the day overlaps the second draft.
    half = ["--from", (t0 + timedelta(hours=12)).isoformat(), "--to", period[3]]
    settled = run_cli(database_url, "settle", *half, "--json")
    assert settled.returncode == 0, settled.stdout + settled.stderr
    body = json.loads(settled.stdout)
    assert body["replaced_draft_runs"] == [second]
    assert from_global_id(body["global_id"]) == ("SettlementRun", body["run_id"])
    exported = json.loads(
        run_cli(database_url, "settle", "export", str(body["run_id"]), "--format", "json").stdout
    )
    assert set(body) == set(exported) | {"global_id", "replaced_draft_runs"}
    assert all(body[k] == v for k, v in exported.items() if k != "statements")
    without_names = [{k: v for k, v in s.items() if k != "partner_name"} for s in body["statements"]]
    assert without_names == exported["statements"]
    assert {s["partner_name"] for s in body["statements"]} <= {"coalition", cafe.name, airline.name}

    apart = run_cli(database_url, "settle", "--from", period[3], "--to", (t0 + timedelta(days=2)).isoformat())
    assert apart.returncode == 0 and "replaced draft run" not in apart.stdout


async def test_worker_once_counts_holds_as_holds_and_lots_as_lots(database_url):
    url = await recreate_database(database_url, "coalition_worker_report_test")
    db = Database(url, pool_size=2)
    try:
        await upgrade_to_head(url)
        cafe = await make_partner(db)
        shop = await make_partner(db, return_window_days=14)
        member = await enroll(db, cafe)
        back = clock.now() - timedelta(days=25 * 31)
        clock.set_clock(lambda: back)
        try:
            await earn(db, cafe, member.member_number, "50")  # expired by now
        finally:
            clock.set_clock(None)
        await earn(db, cafe, member.member_number, "1000")
        for _ in range(3):
            assert (await authorize(db, cafe, member.member_number, 10)).errors == []
        await earn(db, shop, member.member_number, "20")  # pending for 14 days
        await earn(db, shop, member.member_number, "30")

        env = {"COALITION_CLOCK_OFFSET_SECONDS": str(timedelta(days=15).total_seconds())}
        done = run_cli(url, "worker", "--once", **env)
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == (
            "released 3 expired holds, activated 2 lots past their return window, expired 1 lot (50 points),"
            # 7 events of the earns and links above, then this run's 2 activations and 1 expiry:
            # none is one a member is mailed about.
            " reviewed 0 tiers past anniversary and grace (0 downgrades),"
            " checked 0 referrals for a bonus (0 bonus points paid),"
            " paid 0 birthday bonuses (0 points),"
            " took 10 events for webhooks (0 deliveries), delivered 0 webhooks of 0 due,"
            " took 10 events for member mail (0 notifications), recorded 0 expiring-points notices,"
            " sent 0 member mails of 0 due"
        )
        nothing = run_cli(url, "worker", "--once", **env)
        assert nothing.stdout.strip() == (
            "released 0 expired holds, activated 0 lots past their return window, expired 0 lots (0 points),"
            " reviewed 0 tiers past anniversary and grace (0 downgrades),"
            " checked 0 referrals for a bonus (0 bonus points paid),"
            " paid 0 birthday bonuses (0 points),"
            " took 0 events for webhooks (0 deliveries), delivered 0 webhooks of 0 due,"
            " took 0 events for member mail (0 notifications), recorded 0 expiring-points notices,"
            " sent 0 member mails of 0 due"
        )
    finally:
        await db.dispose()
        await drop_database(database_url, "coalition_worker_report_test")


def test_progress_is_drawn_on_a_terminal_only(database_url):
    """stderr a terminal: the audit's steps are drawn there, stdout stays plain text."""
    leader, follower = pty.openpty()
    env = {**os.environ, "DATABASE_URL": database_url, "TERM": "xterm", "COLUMNS": "120"}
    process = subprocess.Popen(
        [COALITION, "audit"], env=env, stdout=subprocess.PIPE, stderr=follower, text=True
    )
    os.close(follower)
    drawn = b""
    while True:
        ready, _, _ = select.select([leader], [], [], 60)
        assert ready, "the audit hung"
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # the process closed the terminal
            break
        if not chunk:
            break
        drawn += chunk
    os.close(leader)
    stdout = process.communicate(timeout=60)[0]
    assert process.returncode == 0, stdout
    assert "settlement runs" in drawn.decode(errors="replace")
    assert "all hold" in stdout and "\x1b" not in stdout

    piped = run_cli(database_url, "audit")
    assert piped.returncode == 0 and piped.stderr == ""


def _psql(url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PSQL or "psql", url, "-tAc", "select 41 + 1"], capture_output=True, text=True)


@pytest.mark.skipif(PSQL is None, reason="psql is not installed")
def test_db_url_libpq_is_a_url_psql_connects_with(database_url):
    tcp = run_cli(database_url, "db", "url", "--libpq").stdout.strip()
    assert tcp.startswith("postgresql://") and "+asyncpg" not in tcp
    assert _psql(tcp).stdout.strip() == "42", _psql(tcp).stderr
    # A Unix socket, as the embedded server has: libpq's `host=/directory` parameter.
    socket_dir = Path("/var/run/postgresql")
    if not (socket_dir / ".s.PGSQL.5432").exists():
        pytest.skip("no local PostgreSQL socket in /var/run/postgresql")
    database = database_url.rsplit("/", 1)[1]
    via_socket = f"postgresql+asyncpg://postgres@/{database}?host={socket_dir}"
    libpq = run_cli(via_socket, "db", "url", "--libpq").stdout.strip()
    assert libpq == f"postgresql://postgres@/{database}?host={socket_dir}"
    assert _psql(libpq).stdout.strip() == "42", _psql(libpq).stderr


@pytest.mark.embedded
@pytest.mark.skipif(PSQL is None, reason="psql is not installed")
def test_db_url_libpq_of_the_embedded_server_is_a_url_psql_connects_with(tmp_path):
    data_dir = tmp_path / ".coalition"
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env["COALITION_DATA_DIR"] = str(data_dir)
    try:
        printed = subprocess.run(
            [COALITION, "db", "url", "--libpq"], env=env, capture_output=True, text=True, timeout=120
        )
        assert printed.returncode == 0, printed.stderr
        url = printed.stdout.strip()
        assert url.startswith("postgresql://postgres@/coalition?host=/"), url
        assert _psql(url).stdout.strip() == "42", _psql(url).stderr
    finally:
        stop_embedded(data_dir)
