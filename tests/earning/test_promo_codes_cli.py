"""`coalition promo export` and `coalition promo generate` as real subprocesses on the test
database: the CSV holds every code with its uses and status, and a 100,000-code batch is exported
in the memory of a 1-code one (streamed)."""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys

from services.earning import promo_code_batches
from services.earning import promo_code_format as fmt
from tests.e2e.conftest import run_cli
from tests.earning.promo_helpers import ADMIN, promotion
from tests.factories import earn, enroll, make_partner

PEAK_RSS = (
    "import resource, sys\n"
    "from services.gateway.cli import main\n"
    "code = main(sys.argv[1:])\n"
    "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)\n"
    "sys.exit(code)\n"
)


async def batch_of(db, partner, count: int, **terms) -> promo_code_batches.Generated:
    principal = partner.principal if partner else ADMIN
    promo = await promotion(db, partner)
    return await promo_code_batches.generate(
        db, principal, promo_code_batches.BatchTerms(promotion_id=promo, count=count, **terms)
    )


def rows(stdout: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(stdout)))


async def test_export_lists_every_code_with_its_uses_and_status(db, database_url, tmp_path):
    shop = await make_partner(db)
    made = await batch_of(db, shop, 3, uses_per_code=1, prefix="XP")
    assert made.codes is not None
    member = await enroll(db, shop)
    await earn(db, shop, member.member_number, "2", promo_codes=(made.codes[1],))
    done = run_cli(database_url, "promo", "export", str(made.batch.id), "--format", "csv")
    assert done.returncode == 0, done.stderr
    exported = rows(done.stdout)
    assert list(exported[0]) == ["code", "uses_per_code", "uses", "expires_at", "status"]
    assert [r["code"] for r in exported] == made.codes
    assert [(r["uses"], r["status"]) for r in exported] == [
        ("0", "ACTIVE"),
        ("1", "USED_UP"),
        ("0", "ACTIVE"),
    ]
    target = tmp_path / "codes.csv"
    to_file = run_cli(database_url, "promo", "export", str(made.batch.id), "--output", str(target))
    assert to_file.returncode == 0 and rows(target.read_text()) == exported
    missing = run_cli(database_url, "promo", "export", str(10**12))
    assert missing.returncode == 2 and "no promo code batch" in missing.stderr


async def test_generate_from_the_command_line(db, database_url):
    shop = await make_partner(db)
    promo = await promotion(db, shop)
    done = run_cli(
        database_url, "promo", "generate", "--promotion", str(promo), "--count", "5", "--prefix", "CMD"
    )
    assert done.returncode == 0, done.stderr
    [batch] = await promo_code_batches.batches(db, ADMIN, promo)
    assert batch.count == 5 and f"promo export {batch.id}" in done.stdout
    exported = rows(run_cli(database_url, "promo", "export", str(batch.id)).stdout)
    assert len(exported) == 5 and all(fmt.is_well_formed(r["code"]) for r in exported)
    bad = run_cli(database_url, "promo", "generate", "--promotion", str(promo), "--count", "0")
    assert bad.returncode == 2 and "count" in bad.stdout


async def test_a_100000_code_batch_exports_in_flat_memory(db, database_url):
    shop = await make_partner(db)
    big = await batch_of(db, shop, 100_000)
    small = await batch_of(db, shop, 1)

    def peak_kib(batch_id: int) -> tuple[int, int]:
        env = {**os.environ, "DATABASE_URL": database_url}
        done = subprocess.run(
            [sys.executable, "-c", PEAK_RSS, "promo", "export", str(batch_id)],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr
        return int(done.stderr.strip().splitlines()[-1]), done.stdout.count("\n")

    big_rss, big_lines = peak_kib(big.batch.id)
    small_rss, small_lines = peak_kib(small.batch.id)
    assert (big_lines, small_lines) == (100_001, 2)
    assert big_rss - small_rss < 20 * 1024, (big_rss, small_rss)  # KiB: 100,000 rows are ~4 MB of CSV
