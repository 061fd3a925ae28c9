"""`coalition members show | set-password` against the test database, as support runs them."""

from __future__ import annotations

import json
import os
import subprocess

from sqlalchemy import select

from services.members import credentials
from shared.audit_log import AdminAuditEntry
from shared.database import Database
from shared.ids import new_member_number
from tests.e2e.conftest import COALITION, run_cli
from tests.factories import earn, enroll, make_partner, unique


def _cli(database_url: str, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": database_url}
    return subprocess.run(
        [COALITION, *args], env=env, input=stdin, capture_output=True, text=True, timeout=120
    )


async def test_show_prints_what_members_knows(db: Database, database_url: str) -> None:
    cafe, bakery = await make_partner(db), await make_partner(db)
    email = f"{unique('m')}@example.com"
    member = await enroll(db, cafe, ref="cafe-42", email=email)
    await earn(db, bakery, member.member_number, "10")  # presenting the card links the bakery
    shown = run_cli(database_url, "members", "show", member.member_number, "--json")
    assert shown.returncode == 0, shown.stderr
    body = json.loads(shown.stdout)
    assert body["member_number"] == member.member_number and body["email"] == email
    assert body["activated"] is False and body["created_at"]
    assert [(x["partner"], x["how"], x["partner_customer_ref"]) for x in body["links"]] == [
        (cafe.name, "ENROLLED", "cafe-42"),
        (bakery.name, "CARD_PRESENTED", None),
    ]
    table = run_cli(database_url, "members", "show", member.member_number)
    assert table.returncode == 0 and email in table.stdout and "CARD_PRESENTED" in table.stdout
    unknown = run_cli(database_url, "members", "show", new_member_number())
    assert unknown.returncode == 2 and "memberNumber" in unknown.stdout


async def test_set_password_reads_stdin_and_applies_the_rules(db: Database, database_url: str) -> None:
    partner = await make_partner(db)
    email = f"{unique('m')}@example.com"
    member = await enroll(db, partner, email=email)
    weak = _cli(database_url, "members", "set-password", member.member_number, stdin="short\n")
    assert weak.returncode == 2 and "error: password:" in weak.stdout and "10 characters" in weak.stdout
    own_number = _cli(
        database_url, "members", "set-password", member.member_number, stdin=f"x{member.member_number}x\n"
    )
    assert own_number.returncode == 2 and "member number" in own_number.stdout
    assert await credentials.authenticate(db, email, "short") is None

    done = _cli(database_url, "members", "set-password", member.member_number, stdin="support set this\n")
    assert done.returncode == 0, done.stdout + done.stderr
    assert json.loads(done.stdout) == {"member_number": member.member_number, "password_set": True}
    assert await credentials.authenticate(db, email, "support set this") == member.id
    async with db.sessions() as session:
        logged = await session.scalar(
            select(AdminAuditEntry.action).where(AdminAuditEntry.target == member.member_number)
        )
    assert logged == "members.set_password"
    assert json.loads(run_cli(database_url, "members", "show", member.member_number, "--json").stdout)[
        "activated"
    ]
