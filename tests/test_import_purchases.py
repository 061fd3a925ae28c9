"""`coalition import purchases` as a real subprocess: rows recorded in batches, a SIGKILL in the middle
of the file, a re-run that records every row exactly once; bad rows reported with their reasons."""

from __future__ import annotations

import asyncio
import csv
import json
import os
import signal
import time
from pathlib import Path

from shared.ids import new_member_number
from shared.sql import connection
from tests.e2e.conftest import COALITION, run_cli
from tests.earning.helpers import rule
from tests.factories import balance, enroll, make_partner, unique, violations

A1_LINE = '[{"sku": "A1", "amount": "3"}]'
HEADER = ["memberNumber", "orderId", "amount", "currency", "occurredAt", "lines"]


def write_file(path: Path, rows: list[list[str]]) -> None:
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(HEADER)
        writer.writerows(rows)


def summary(stdout: str) -> dict[str, int]:
    """The summary table's rows, as {outcome: rows}."""
    found = {}
    for line in stdout.splitlines():
        parts = line.rsplit(None, 1)
        if len(parts) == 2 and parts[1].isdigit():
            found[parts[0].strip()] = int(parts[1])
    return found


async def recorded(db, partner_id: int) -> tuple[int, int]:
    async with connection(db) as conn:
        row = await conn.fetchrow(
            "SELECT count(*) AS n, count(DISTINCT order_id) AS orders FROM purchases WHERE partner_id = $1",
            partner_id,
        )
    return row["n"], row["orders"]


async def test_an_import_killed_mid_file_and_run_again_records_every_row_exactly_once(
    db, database_url, tmp_path
):
    partner = await make_partner(db)
    people = [await enroll(db, partner) for _ in range(40)]
    total = 20_000
    prefix = unique("sale")
    when = "2026-12-01T09:30:00+01:00"
    rows = [
        [people[i % 40].member_number, f"{prefix}-{i}", str(1 + i % 9), "EUR", when, ""] for i in range(total)
    ]
    path = tmp_path / "sales.csv"
    write_file(path, rows)
    command = ["import", "purchases", "--partner", str(partner.id), str(path), "--batch-size", "500"]
    env = {**os.environ, "DATABASE_URL": database_url}
    process = await asyncio.create_subprocess_exec(
        COALITION, *command, env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 60
        while (await recorded(db, partner.id))[0] < 2_000:
            assert process.returncode is None, await process.stderr.read() if process.stderr else ""
            assert time.monotonic() < deadline, "the import recorded nothing for a minute"
            await asyncio.sleep(0.02)
        process.send_signal(signal.SIGKILL)  # no chance to finish a batch or clean up
        assert await asyncio.wait_for(process.wait(), timeout=10) == -signal.SIGKILL
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    # Dead: what it committed is final. It was stopped in the middle of the file.
    before, _ = await recorded(db, partner.id)
    assert 2_000 <= before < total

    again = run_cli(database_url, *command)
    assert again.returncode == 0, again.stderr
    counts = summary(again.stdout)
    assert counts["replayed"] == before
    assert counts["recorded"] == total - before
    assert counts["rows"] == total
    assert await recorded(db, partner.id) == (total, total)  # every row once, every order id once
    for i, person in enumerate(people):
        expected = sum(1 + j % 9 for j in range(i, total, 40))
        assert (await balance(db, person.id)).available == expected
    assert await violations(db) == []

    # A third run moves nothing: every row is a replay.
    third = run_cli(database_url, *command)
    assert third.returncode == 0, third.stderr
    assert summary(third.stdout)["replayed"] == total
    assert await recorded(db, partner.id) == (total, total)


async def test_bad_rows_are_reported_with_their_reasons_and_the_rest_recorded(db, database_url, tmp_path):
    partner = await make_partner(db)
    member = await enroll(db, partner)
    prefix = unique("sale")
    rows = [
        [member.member_number, f"{prefix}-1", "12.90", "EUR", "", ""],
        [member.member_number, f"{prefix}-2", "twelve", "EUR", "", ""],
        [new_member_number(), f"{prefix}-3", "5", "EUR", "", ""],
        [member.member_number, f"{prefix}-4", "5", "USD", "", ""],
        [member.member_number, f"{prefix}-1", "7", "EUR", "", ""],
        [member.member_number, f"{prefix}-6", "3", "EUR", "2026-12-01T10:00:00Z", A1_LINE],
        [member.member_number, f"{prefix}-7", "3", "EUR", "", "{not json"],
    ]
    path = tmp_path / "day.csv"
    write_file(path, rows)
    failures = tmp_path / "failed.csv"
    done = run_cli(
        database_url,
        "import",
        "purchases",
        "--partner",
        str(partner.id),
        str(path),
        "--failures",
        str(failures),
    )
    assert done.returncode == 1, done.stderr  # some rows failed
    counts = summary(done.stdout)
    assert counts["recorded"] == 2 and counts["rows"] == 7
    assert counts["failed: INVALID_AMOUNT"] == 1
    assert counts["failed: MEMBER_NOT_FOUND"] == 1
    assert counts["failed: CURRENCY_MISMATCH"] == 1
    assert counts["failed: DUPLICATE_ORDER"] == 1
    assert counts["failed: INVALID"] == 1
    with failures.open(newline="") as f:
        failed = list(csv.DictReader(f))
    assert [(r["row"], r["code"], r["field"]) for r in failed] == [
        ("2", "INVALID_AMOUNT", "amount"),
        ("3", "MEMBER_NOT_FOUND", "memberNumber"),
        ("4", "CURRENCY_MISMATCH", "amount.currency"),
        ("5", "DUPLICATE_ORDER", "orderId"),
        ("7", "INVALID", "lines"),
    ]
    assert (await balance(db, member.id)).available == 12 + 3


async def test_a_file_without_the_columns_is_refused_naming_them(db, database_url, tmp_path):
    partner = await make_partner(db)
    path = tmp_path / "wrong.csv"
    path.write_text("member,order\n1,2\n")
    done = run_cli(database_url, "import", "purchases", "--partner", str(partner.id), str(path))
    assert done.returncode == 2
    assert "memberNumber" in done.stderr and "orderId" in done.stderr


async def test_an_import_earns_under_the_partners_rules_with_its_lines(db, database_url, tmp_path):
    """The lines column is recordPurchase's lines: rules per SKU and category apply to it, the
    breakdown is stored with the purchase, and a line that cannot be one is refused naming it."""
    partner = await make_partner(db, earn_rate="1")
    await rule(db, partner, "double coffee", sku="COFFEE", multiplier="2")
    await rule(db, partner, "5 a book", category="books", points_per_unit="5")
    member = await enroll(db, partner)
    prefix = unique("sale")
    coffee = '[{"sku": "COFFEE", "amount": "3.40"}, {"sku": "CAKE", "unitPrice": "2.95"}]'
    books = '[{"sku": "NOVEL", "category": "books", "quantity": 2, "amount": "12.00"}]'
    rows = [
        [member.member_number, f"{prefix}-1", "6.35", "EUR", "", coffee],  # 6.80 + 2.95: 9
        [member.member_number, f"{prefix}-2", "12.00", "EUR", "", books],  # 2 x 5: 10
        [member.member_number, f"{prefix}-3", "5.00", "EUR", "", books],  # AMOUNT_MISMATCH
        [
            member.member_number,
            f"{prefix}-4",
            "3",
            "EUR",
            "",
            '[{"sku": "A", "quantity": 1.5, "amount": "3"}]',
        ],
        [member.member_number, f"{prefix}-5", "3", "EUR", "", '["A"]'],
        [member.member_number, f"{prefix}-6", "12.90", "EUR", "", ""],  # no lines: the base rate, 12
    ]
    path = tmp_path / "rules.csv"
    write_file(path, rows)
    failures = tmp_path / "rules.failed.csv"
    done = run_cli(
        database_url,
        "import",
        "purchases",
        "--partner",
        str(partner.id),
        str(path),
        "--failures",
        str(failures),
    )
    assert done.returncode == 1, done.stderr
    with failures.open(newline="") as f:
        failed = [(r["row"], r["code"], r["field"]) for r in csv.DictReader(f)]
    assert failed == [
        ("3", "AMOUNT_MISMATCH", "amount"),
        ("4", "INVALID", "lines[0].quantity"),
        ("5", "INVALID", "lines[0]"),
    ]
    async with connection(db) as conn:
        stored = await conn.fetch(
            "SELECT order_id, points_earned, earn_detail::text AS earn_detail FROM purchases"
            " WHERE partner_id = $1 ORDER BY order_id",
            partner.id,
        )
    assert [(r["order_id"], r["points_earned"]) for r in stored] == [
        (f"{prefix}-1", 9),
        (f"{prefix}-2", 10),
        (f"{prefix}-6", 12),
    ]
    detail = json.loads(stored[0]["earn_detail"])
    assert [(ln["sku"], ln["points"]) for ln in detail["lines"]] == [("COFFEE", 6), ("CAKE", 3)]
    assert [(i["rule"] or {}).get("name") for i in detail["items"]] == ["double coffee", None]
    assert stored[2]["earn_detail"] is None
    assert (await balance(db, member.id)).available == 9 + 10 + 12
