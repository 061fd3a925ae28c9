"""`coalition demo`: a small coalition to try on an empty database.

Three partners, an admin client, a few members with purchases and a cross-partner redemption,
all made through the services' own functions. Credentials are printed and written to
`.coalition/demo.json` with a ready curl, since secrets are shown only once.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
from datetime import timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import select

from services.identity import service as identity
from services.ledger import service as ledger
from services.members import service as members
from services.partners import service as partners
from services.partners.cli import CLI_ADMIN
from services.partners.models import Partner
from shared import clock
from shared.access import ADMIN_SCOPES, PARTNER_SCOPES, Principal
from shared.database import Database, standalone_database
from shared.money import Money
from shared.settings import get_settings

PARTNERS: list[dict[str, Any]] = [
    {
        "name": "Café Lumen",
        "currency": "EUR",
        "earn_rate": "1",
        "issue_price": "0.010",
        "redeem_price": "0.008",
        "return_window_days": 0,
    },
    {
        "name": "SkyBridge Airlines",
        "currency": "EUR",
        "earn_rate": "2",
        "issue_price": "0.012",
        "redeem_price": "0.010",
        "return_window_days": 14,
    },
    {
        "name": "Pageturner Books",
        "currency": "EUR",
        "earn_rate": "1",
        "issue_price": "0.010",
        "redeem_price": "0.009",
        "return_window_days": 0,
    },
]


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("demo", help="seed a demo coalition on an empty database")
    parser.set_defaults(handler=run_demo)


async def run_demo(args: argparse.Namespace) -> int:
    settings = get_settings()
    demo_file = settings.data_dir / "demo.json"
    async with standalone_database() as db:
        async with db.sessions() as session:
            if await session.scalar(select(Partner.id).limit(1)) is not None:
                if demo_file.exists():
                    print(f"demo: the database has data already; credentials are in {demo_file}")
                else:
                    print("demo: the database has data already; nothing seeded")
                return 0
        demo = await _seed(db)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    demo_file.write_text(json.dumps(demo, indent=2, ensure_ascii=False))
    os.chmod(demo_file, 0o600)
    print(json.dumps(demo, indent=2, ensure_ascii=False))
    print(f"\ndemo: written to {demo_file}. Try:\n\n{demo['try']}\n")
    return 0


async def _seed(db: Database) -> dict[str, Any]:
    out: dict[str, Any] = {"partners": [], "members": []}
    principals: list[Principal] = []
    async with db.sessions() as session, session.begin():
        admin = await identity.create_client(
            session, name="Demo admin", scopes=sorted(ADMIN_SCOPES | {"members:read"})
        )
    out["admin"] = {"client_id": admin.client_id, "client_secret": admin.client_secret}
    for spec in PARTNERS:
        created = await partners.create_partner(
            db,
            CLI_ADMIN,
            name=spec["name"],
            currency=spec["currency"],
            issue_price=Decimal(spec["issue_price"]),
            redeem_price=Decimal(spec["redeem_price"]),
            earn_rate=Decimal(spec["earn_rate"]),
            return_window_days=spec["return_window_days"],
        )
        principals.append(Principal(created.client_id, PARTNER_SCOPES, created.partner.id))
        out["partners"].append(
            {
                "partner_id": created.partner.id,
                "name": spec["name"],
                "client_id": created.client_id,
                "client_secret": created.client_secret,
            }
        )

    cafe, airline, books = principals
    now = clock.now()
    for index, (name, spend) in enumerate([("alice", 150), ("bob", 0), ("chloe", 40)]):
        member = await members.enroll_member(
            db, cafe, partner_customer_ref=f"cafe-{name}", email=f"{name}@example.com"
        )
        for n, (who, amount) in enumerate([(cafe, "42.50"), (books, "120.00"), (airline, "310.00")]):
            await ledger.record_purchase(
                db,
                who,
                idempotency_key=f"demo-{name}-{n}",
                member_number=member.member_number,
                order_id=f"demo-{index}-{n}",
                amount=Money(Decimal(amount), "EUR"),
                occurred_at=now - timedelta(days=20 - n),
            )
        if spend:
            await ledger.redeem_points(
                db,
                airline,
                idempotency_key=f"demo-{name}-redeem",
                member_number=member.member_number,
                points=spend,
                order_id=f"demo-r-{index}",
            )
        out["members"].append({"name": name, "member_number": member.member_number})

    base = get_settings().issuer
    cafe_creds = out["partners"][0]
    number = out["members"][0]["member_number"]
    query = {
        "query": "query($n: String!) { member(memberNumber: $n) { memberNumber "
        "balance { available pending } } }",
        "variables": {"n": number},
    }
    out["try"] = (
        f"TOKEN=$(curl -s -u {cafe_creds['client_id']}:{cafe_creds['client_secret']} "
        f"-d grant_type=client_credentials {base}/oauth/token "
        "| python3 -c 'import json,sys; print(json.load(sys.stdin)[\"access_token\"])')\n"
        f'curl -s {base}/graphql -H "Authorization: Bearer $TOKEN" '
        f"-H 'Content-Type: application/json' -d {shlex.quote(json.dumps(query))}"
    )
    return out
