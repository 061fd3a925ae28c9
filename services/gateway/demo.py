"""`coalition demo`: a small coalition to try on an empty database.

Three partners, an admin client, a few members with purchases and cross-partner redemptions (one
this month, one in the previous calendar month, so a settlement run over last month has something
to net), all made through the services' own functions. Credentials are printed and written to
`.coalition/demo.json` (under COALITION_DATA_DIR) with ready curl commands in `try` (a token, a
balance, the README's earn), since secrets are shown only once.

It also registers the member web app (`/app`) as a public client for `<issuer>/app/` and gives
alice a password, so `make run` has an app to log in to; `coalition demo --app-client-id` prints
that client's id for `make run` to pass as MEMBER_APP_CLIENT_ID.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import select

from services.earning import service as earning
from services.identity import member_apps
from services.identity import service as identity
from services.ledger import service as ledger
from services.members import credentials
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


# alice's, for logging in to the demo's /app; a demo has no secrets worth keeping.
DEMO_LOGIN = {"username": "alice@example.com", "password": "alice-demo-password"}


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("demo", help="seed a demo coalition on an empty database")
    parser.add_argument(
        "--app-client-id",
        action="store_true",
        help="print only the demo member app's client id (registered first if this demo predates it)",
    )
    parser.set_defaults(handler=run_demo)


async def _register_app(db: Database) -> dict[str, Any]:
    """The member web app as a public client whose redirect URI is the page itself."""
    url = f"{get_settings().issuer}/app/"
    async with db.sessions() as session, session.begin():
        app = await member_apps.create_member_app(session, name="Demo member app", redirect_uris=[url])
    return {"client_id": app.client_id, "url": url, "login": DEMO_LOGIN}


def _read_demo(demo_file: Path) -> dict[str, Any] | None:
    return json.loads(demo_file.read_text()) if demo_file.exists() else None


def _write_demo(demo_file: Path, demo: dict[str, Any]) -> None:
    demo_file.write_text(json.dumps(demo, indent=2, ensure_ascii=False))
    os.chmod(demo_file, 0o600)


async def print_app_client_id(demo_file: Path) -> int:
    """For `make run`: the id from demo.json; a demo seeded before the app existed gets it now.
    Without a demo (a database seeded otherwise) prints nothing: /app then says it has no app."""
    demo = _read_demo(demo_file)
    if demo is None:
        return 0
    if "member_app" not in demo:
        async with standalone_database() as db:
            demo["member_app"] = await _register_app(db)
        _write_demo(demo_file, demo)
    print(demo["member_app"]["client_id"])
    return 0


async def run_demo(args: argparse.Namespace) -> int:
    settings = get_settings()
    demo_file = settings.data_dir / "demo.json"
    if args.app_client_id:
        return await print_app_client_id(demo_file)
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
    _write_demo(demo_file, demo)
    print(json.dumps(demo, indent=2, ensure_ascii=False))
    steps = "\n".join(demo["try"][step] for step in ("token", "balance", "earn"))
    print(f"\ndemo: written to {demo_file}. Try (a token, a balance, an earn):\n\n{steps}\n")
    app, login = demo["member_app"]["url"], demo["member_app"]["login"]
    print(f"demo: the member app is at {app} (log in as {login['username']} / {login['password']})\n")
    return 0


def middle_of_last_month(now: datetime) -> datetime:
    """Noon UTC on the 15th of the calendar month before `now`'s: inside that month whatever its
    length, at least two weeks before `now`, and nowhere near a day or month boundary."""
    this_month = now.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    return clock.add_months(this_month, -1).replace(day=15, hour=12)


@contextmanager
def _clock_at(moment: datetime) -> Iterator[None]:
    clock.set_clock(lambda: moment)
    try:
        yield
    finally:
        clock.set_clock(None)


async def _shop(
    db: Database,
    shops: tuple[Principal, Principal, Principal],
    name: str,
    index: int,
    member_number: str,
    spend: int,
) -> None:
    """Three purchases on consecutive days ending 18 days ago (the airline's 14-day return window
    has passed), then `spend` points redeemed at the airline: a cross-partner redemption."""
    cafe, books, airline = shops
    now = clock.now()
    for n, (who, amount) in enumerate([(cafe, "42.50"), (books, "120.00"), (airline, "310.00")]):
        earned = await earning.record_purchase(
            db,
            who,
            earning.PurchaseInput(
                idempotency_key=f"demo-{name}-{n}",
                member_number=member_number,
                order_id=f"demo-{index}-{n}",
                amount=Money(Decimal(amount), "EUR"),
                occurred_at=now - timedelta(days=20 - n),
            ),
        )
        _refuse_errors(earned, f"{name}'s purchase {n}")
    if spend:
        redeemed = await ledger.redeem_points(
            db,
            airline,
            idempotency_key=f"demo-{name}-redeem",
            member_number=member_number,
            points=spend,
            order_id=f"demo-r-{index}",
        )
        _refuse_errors(redeemed, f"{name}'s redemption")


def _refuse_errors(outcome: ledger.Outcome, what: str) -> None:
    """The ledger answers a refused operation with user errors, not an exception: a demo that
    silently lacked a purchase would show numbers nobody could explain."""
    if outcome.errors:
        raise RuntimeError(f"demo: {what} was refused: {outcome.errors}")


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
    last_month = middle_of_last_month(clock.now())
    for index, (name, spend) in enumerate([("alice", 150), ("bob", 0), ("chloe", 100)]):
        member = await members.enroll_member(
            db, cafe, partner_customer_ref=f"cafe-{name}", email=f"{name}@example.com"
        )
        # Chloe shopped and redeemed last month, so that `coalition settle` over the previous
        # calendar month has cross-partner redemptions to net out of the box. A redemption happens
        # at the ledger's "now" (it takes no occurredAt), so the ledger's clock is set back for her,
        # as the tests do: every rule (return windows, expiry, first to expire first) applies as it
        # would have then. Only the recording time (journal_entries.created_at) is today's.
        with _clock_at(last_month) if name == "chloe" else nullcontext():
            await _shop(db, (cafe, books, airline), name, index, member.member_number, spend)
        out["members"].append({"name": name, "member_number": member.member_number})
        if name == "alice":
            await credentials.set_password(db, member.id, DEMO_LOGIN["password"])

    out["member_app"] = await _register_app(db)

    out["try"] = try_commands(
        get_settings().issuer, out["partners"][0], out["members"][0]["member_number"], clock.now()
    )
    return out


def try_commands(base: str, partner: dict[str, Any], member_number: str, at: datetime) -> dict[str, str]:
    """Shell commands to paste, in order: a token for the partner, its member's balance, and the
    README's earn (12.90 EUR) with the values filled in. The earn's idempotencyKey, orderId and
    occurredAt are fixed, so running it again answers the first transaction and earns nothing:
    idempotency, seen from the outside."""
    post = (
        f"curl -s {base}/graphql -H \"Authorization: Bearer $TOKEN\" -H 'Content-Type: application/json' -d "
    )
    balance = {
        "query": "query($n: String!) { member(memberNumber: $n) { memberNumber "
        "balance { available pending } } }",
        "variables": {"n": member_number},
    }
    earn = {
        "query": "mutation($input: RecordPurchaseInput!) { recordPurchase(input: $input) "
        "{ transaction { id points status } pointsEarned userErrors { code field message } } }",
        "variables": {
            "input": {
                "idempotencyKey": "till-7-demo-try",
                "memberNumber": member_number,
                "orderId": "A-demo-try",
                "amount": {"amount": "12.90", "currency": "EUR"},
                "occurredAt": at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            }
        },
    }
    return {
        "token": (
            f"TOKEN=$(curl -s -u {partner['client_id']}:{partner['client_secret']} "
            f"-d grant_type=client_credentials {base}/oauth/token "
            "| python3 -c 'import json,sys; print(json.load(sys.stdin)[\"access_token\"])')"
        ),
        "balance": post + shlex.quote(json.dumps(balance)),
        "earn": post + shlex.quote(json.dumps(earn)),
    }
