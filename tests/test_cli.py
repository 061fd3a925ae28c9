"""The `coalition` command against the test database: onboarding, audit, demo, schema status."""

from __future__ import annotations

import json
import re
import resource
from pathlib import Path

from sqlalchemy import text

from tests.e2e.conftest import run_cli, start_gateway
from tests.factories import earn, enroll, make_partner

CREATE_CAFE = [
    "partners", "create", "--name", "CLI-Café", "--currency", "EUR",
    "--issue-price", "0.010", "--redeem-price", "0.008", "--earn-rate", "1",
]  # fmt: skip


def test_partners_create_and_clients_create_admin_print_credentials_once(database_url):
    created = run_cli(database_url, *CREATE_CAFE)
    assert created.returncode == 0, created.stderr
    body = json.loads(created.stdout)
    assert set(body) == {"partner_id", "name", "client_id", "client_secret"}
    again = run_cli(database_url, *CREATE_CAFE)
    assert again.returncode == 2 and "exists" in again.stdout
    admin = run_cli(database_url, "clients", "create-admin", "--name", "ops")
    assert admin.returncode == 0
    assert "partner_id" not in json.loads(admin.stdout)
    status = run_cli(database_url, "db", "status")
    assert status.returncode == 0 and "latest" in status.stdout


async def test_audit_prints_each_violation_and_fails(db, database_url):
    cafe = await make_partner(db)
    member = await enroll(db, cafe)
    await earn(db, cafe, member.member_number, "10")
    clean = run_cli(database_url, "audit")
    assert clean.returncode == 0 and "all hold" in clean.stdout
    # Corrupt the books the way a bug would: a wallet balance changed outside the ledger.
    async with db.sessions() as session:
        await session.execute(
            text("UPDATE wallets SET balance = balance + 7 WHERE member_id = :m"), {"m": member.id}
        )
        await session.commit()
    try:
        broken = run_cli(database_url, "audit")
        assert broken.returncode == 1
        assert f"member {member.id}: wallet says" in broken.stdout
        assert "VIOLATION" in broken.stdout
    finally:
        async with db.sessions() as session:
            await session.execute(
                text("UPDATE wallets SET balance = balance - 7 WHERE member_id = :m"), {"m": member.id}
            )
            await session.commit()


async def test_demo_seeds_an_empty_database_once(database_url, tmp_path):
    from shared.database import drop_database, recreate_database
    from shared.migrate import upgrade_to_head

    url = await recreate_database(database_url, "coalition_demo_test")
    try:
        await upgrade_to_head(url)
        seeded = run_cli(url, "demo", COALITION_DATA_DIR=str(tmp_path))
        assert seeded.returncode == 0, seeded.stderr
        demo = json.loads((tmp_path / "demo.json").read_text())
        assert [p["name"] for p in demo["partners"]] == [
            "Café Lumen",
            "SkyBridge Airlines",
            "Pageturner Books",
        ]
        assert demo["admin"]["client_secret"] and len(demo["members"]) == 3
        assert set(demo["try"]) == {"token", "balance", "earn"}  # run by tests/e2e/test_first_calls.py
        assert "/oauth/token" in demo["try"]["token"] and "Authorization: Bearer" in demo["try"]["earn"]
        assert (tmp_path / "demo.json").stat().st_mode & 0o077 == 0
        # The member web app, registered for the page's own address, and what `make run` passes on.
        assert demo["member_app"]["url"].endswith("/app/") and demo["member_app"]["login"]["password"]
        printed = run_cli(url, "demo", "--app-client-id", COALITION_DATA_DIR=str(tmp_path))
        assert printed.returncode == 0 and printed.stdout.strip() == demo["member_app"]["client_id"]
        again = run_cli(url, "demo", COALITION_DATA_DIR=str(tmp_path))
        assert again.returncode == 0 and "has data already" in again.stdout
        audit = run_cli(url, "audit")
        assert audit.returncode == 0, audit.stdout
    finally:
        await drop_database(database_url, "coalition_demo_test")


async def test_serve_refuses_a_database_that_is_behind(database_url):
    from shared.database import drop_database, recreate_database

    url = await recreate_database(database_url, "coalition_behind_test")
    try:
        refused = run_cli(url, "serve", "--port", "1")
        assert refused.returncode == 1
        assert "coalition db upgrade" in refused.stderr
    finally:
        await drop_database(database_url, "coalition_behind_test")


def test_settle_prints_a_summary_and_exports(database_url):
    import csv as csv_module
    import io

    settled = run_cli(
        database_url,
        "settle",
        "--from",
        "2021-01-01T00:00:00+00:00",
        "--to",
        "2021-01-02T00:00:00+00:00",
        "--json",
    )
    assert settled.returncode == 0, settled.stdout + settled.stderr
    run = json.loads(settled.stdout)
    assert run["status"] == "DRAFT" and len(run["content_hash"]) == 64
    exported = run_cli(database_url, "settle", "export", str(run["run_id"]), "--format", "json")
    assert json.loads(exported.stdout)["content_hash"] == run["content_hash"]
    as_csv = run_cli(database_url, "settle", "export", str(run["run_id"]))
    assert as_csv.returncode == 0
    assert next(csv_module.reader(io.StringIO(as_csv.stdout)))[0] == "run_id"
    naive = run_cli(database_url, "settle", "--from", "2021-01-01", "--to", "2021-01-02")
    assert naive.returncode == 2 and "time zone" in naive.stderr


async def test_settle_reconcile_resolve_finalize_and_pay(database_url, db, tmp_path):
    partner = await make_partner(db)
    settled = run_cli(
        database_url,
        "settle",
        "--from",
        "2021-02-01T00:00:00+00:00",
        "--to",
        "2021-02-02T00:00:00+00:00",
        "--json",
    )
    run_id = str(json.loads(settled.stdout)["run_id"])
    good = tmp_path / "mine.csv"
    good.write_text("orderId,kind,points,occurredAt\nshop-1,EARN,25,2021-02-01T10:00:00+00:00\n")
    shown = run_cli(database_url, "settle", "reconcile", run_id, "--partner", str(partner.id), str(good))
    assert shown.returncode == 1, shown.stdout + shown.stderr
    assert f"partner {partner.name} ({partner.id}), 1 rows" in shown.stdout
    lines = shown.stdout.splitlines()
    header = next(line for line in lines if line.lstrip().startswith("dispute"))
    dispute = next(line for line in lines if "shop-1" in line)
    assert dispute.index("shop-1") == header.index("order")  # an aligned table
    assert re.search(r"^MISSING_IN_LEDGER +1$", shown.stdout, re.M)
    report = run_cli(
        database_url, "settle", "reconcile", run_id, "--partner", str(partner.id), str(good), "--json"
    )
    assert report.returncode == 1, report.stdout + report.stderr  # a dispute was opened
    summary = json.loads(report.stdout)
    assert summary["counts"]["MISSING_IN_LEDGER"] == 1 and summary["open_disputes"] == 1
    assert summary["disputes"][0]["order_id"] == "shop-1"
    bad = tmp_path / "bad.csv"
    bad.write_text("orderId,kind,points,occurredAt\nshop-1,EARN,lots,2021-02-01T10:00:00+00:00\n")
    refused = run_cli(database_url, "settle", "reconcile", run_id, "--partner", str(partner.id), str(bad))
    assert refused.returncode == 2 and "line 2: points" in refused.stdout + refused.stderr

    held = run_cli(database_url, "settle", "finalize", run_id)
    assert held.returncode == 2 and "dispute" in held.stdout
    item = str(summary["disputes"][0]["item_id"])
    resolved = run_cli(database_url, "settle", "resolve", item, "--note", "a test sale, never real")
    assert resolved.returncode == 0 and "a test sale" in resolved.stdout
    final = run_cli(database_url, "settle", "finalize", run_id)
    assert final.returncode == 0 and "FINALIZED" in final.stdout
    paid = run_cli(database_url, "settle", "paid", run_id)
    assert paid.returncode == 0 and "PAID" in paid.stdout
    again = run_cli(database_url, "settle", "paid", run_id)
    assert again.returncode == 2 and "PAID run cannot become PAID" in again.stdout


def test_prices_say_their_unit_in_help(database_url):
    shown = run_cli(database_url, "partners", "create", "--help", COLUMNS="200")
    assert shown.returncode == 0
    text = " ".join(shown.stdout.split())
    assert "--issue-price ISSUE_PRICE EUR per point, e.g. 0.010" in text
    assert "--redeem-price REDEEM_PRICE EUR per point, e.g. 0.008" in text


def test_serve_raises_its_open_file_limit(database_url, tmp_path):
    """Every subscription is a socket: started with the soft limit many systems give (1,024),
    `coalition serve` raises its own towards 65,536, as far as the hard limit allows."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    low = min(1024, soft)
    resource.setrlimit(resource.RLIMIT_NOFILE, (low, hard))
    try:
        gateway = start_gateway(database_url, tmp_path / "gateway.log")  # inherits the low limit
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    try:
        limits = Path(f"/proc/{gateway.popen.pid}/limits").read_text()
        served_soft = int(re.search(r"^Max open files\s+(\d+)", limits, re.M).group(1))
        expected = 65_536 if hard == resource.RLIM_INFINITY else min(65_536, hard)
        assert served_soft == expected and (served_soft > low or hard <= low)
        assert f"open files limit {expected}" in gateway.output()
    finally:
        gateway.stop()
