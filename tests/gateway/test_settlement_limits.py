"""Settlement's lists under the gateway's limits: every lookup a row makes is batched (a request
runs the same few SQL statements whatever the number of runs, statements, lines or
reconciliations), and the cost limit counts a list by its expected size."""

from __future__ import annotations

from datetime import timedelta

import pytest

from services.gateway.schema import build_schema
from services.settlement import reconciliation
from services.settlement import service as settlement
from shared import clock
from shared.graphql_types import Context
from shared.ids import to_global_id
from tests.factories import ADMIN, SeededPartner, earn, enroll, link, make_partner, redeem
from tests.sql_statements import sql_statements

SETTLER = ADMIN.__class__(client_id="settler", scopes=frozenset({"admin:settlement"}))
RUN_FIELDS = """statements { partner { name } net { amount }
  lines { counterparty { name } kind points amount { amount } } }
reconciliations { partner { name } openDisputes items(first: 3) { edges { node { orderId status } } } }"""


@pytest.fixture(scope="module")
def schema():
    return build_schema()


async def _runs(db, cafe: SeededPartner, airline: SeededPartner, days_ago: int, count: int) -> list[int]:
    """`count` one-day DRAFT runs, `days_ago` back: in each the cafe issues points that are spent at
    the airline and at the cafe, and both partners upload their record of the day."""
    member = await enroll(db, cafe)
    await link(db, airline, member)  # spending needs a link
    t0 = clock.now().replace(microsecond=0) - timedelta(days=days_ago)
    runs = []
    try:
        for day in range(count):
            start = t0 + timedelta(days=day)
            clock.set_clock(lambda start=start: start + timedelta(hours=1))
            await earn(db, cafe, member.member_number, "100", order_id=f"till-{day}")
            assert (await redeem(db, airline, member.member_number, 30, order_id=f"gate-{day}")).errors == []
            assert (await redeem(db, cafe, member.member_number, 20, order_id=f"cup-{day}")).errors == []
            clock.set_clock(lambda start=start: start + timedelta(days=2))
            run = await settlement.run_settlement(
                db, SETTLER, period_start=start, period_end=start + timedelta(days=1)
            )
            at = (start + timedelta(hours=1)).isoformat()
            for partner, order in ((cafe, f"till-{day}"), (airline, f"gate-{day}")):
                kind = "EARN" if partner is cafe else "REDEEM"
                await reconciliation.submit_reconciliation(
                    db,
                    partner.principal,
                    run_id=run.id,
                    partner_id=None,
                    csv_text=f"orderId,kind,points,occurredAt\n{order},{kind},99,{at}\nextra,EARN,1,{at}\n",
                )
            runs.append(run.id)
    finally:
        clock.set_clock(None)
    return runs


async def _execute(schema, db, principal, query: str, variables: dict | None = None):
    async with sql_statements(db) as statements:
        result = await schema.execute(query, variables, context_value=Context(principal=principal, db=db))
    assert result.errors is None, result.errors
    return result.data, statements


async def test_a_request_runs_the_same_statements_for_one_run_or_many(db, schema):
    """Runs named by aliases, their statements' partners and lines' counterparties, each run's
    reconciliations, their partners and items: all batched. Before, each run, each
    reconciliation and each reconciliation's partner and items cost their own statements."""
    cafe, airline = await make_partner(db), await make_partner(db)
    runs = await _runs(db, cafe, airline, days_ago=4200, count=4)

    def aliases(ids: list[int]) -> str:
        named = " ".join(
            f'r{i}: settlementRun(id: "{to_global_id("SettlementRun", run)}") {{ {RUN_FIELDS} }}'
            for i, run in enumerate(ids)
        )
        return "{ " + named + " }"

    _, one_sql = await _execute(schema, db, cafe.principal, aliases(runs[:1]))
    four, four_sql = await _execute(schema, db, cafe.principal, aliases(runs))
    assert len(four) == 4 and all(r["statements"][0]["partner"]["name"] == cafe.name for r in four.values())
    lines = [x for r in four.values() for x in r["statements"][0]["lines"]]
    assert {(x["counterparty"] or {}).get("name") for x in lines} == {airline.name, cafe.name, None}
    assert [len(r["reconciliations"]) for r in four.values()] == [1, 1, 1, 1]  # a partner: its own
    assert {
        x["node"]["orderId"] for r in four.values() for x in r["reconciliations"][0]["items"]["edges"]
    } >= {"extra"}
    assert len(four_sql) == len(one_sql) <= 12, four_sql

    # An admin's page of runs: every reconciliation of each run, with their partners and items.
    page = """query($n: Int) { settlementRuns(first: $n) { edges { node { id statements { partner { name } }
      reconciliations { partner { name } items(first: 3) { edges { node { orderId } } } } } } } }"""
    _, first_sql = await _execute(schema, db, SETTLER, page, {"n": 1})
    listed, all_sql = await _execute(schema, db, SETTLER, page, {"n": 4})
    nodes = [e["node"] for e in listed["settlementRuns"]["edges"]]
    assert [n["id"] for n in nodes] == [to_global_id("SettlementRun", r) for r in reversed(runs)]
    assert all(
        {r["partner"]["name"] for r in n["reconciliations"]} == {cafe.name, airline.name} for n in nodes
    )
    assert len(all_sql) == len(first_sql) <= 12, all_sql


async def _coalition_day(db, size: int, days_ago: int) -> tuple[list[SeededPartner], int]:
    """A day `days_ago` back at `size` partners: a member earns 20 points at each and spends them at
    the next one, so each partner pays one and is paid by another; a DRAFT run of the day."""
    partners = [await make_partner(db) for _ in range(size)]
    member = await enroll(db, partners[0])
    start = clock.now().replace(microsecond=0) - timedelta(days=days_ago)
    try:
        clock.set_clock(lambda: start + timedelta(hours=1))
        for partner in partners:
            await earn(db, partner, member.member_number, "20")
        clock.set_clock(lambda: start + timedelta(hours=2))
        for partner in partners[1:] + partners[:1]:
            assert (await redeem(db, partner, member.member_number, 20)).errors == []
        clock.set_clock(lambda: start + timedelta(days=2))
        run = await settlement.run_settlement(
            db, SETTLER, period_start=start, period_end=start + timedelta(days=1)
        )
    finally:
        clock.set_clock(None)
    return partners, run.id


OVERVIEW = """query($id: ID!) { settlementRun(id: $id) { status periodStart periodEnd contentHash
  statements { partner { id name } net { amount currency }
    instruction { direction amount { amount currency } } }
  reconciliations { partner { name } openDisputes } } }"""


async def test_a_run_of_fifty_partners_is_readable_but_not_fifteen_times_line_by_line(
    db, schema, gateway, admin_token
):
    partners, run_id = await _coalition_day(db, 50, days_ago=4400)
    run = to_global_id("SettlementRun", run_id)
    at = clock.now().replace(microsecond=0) - timedelta(days=4400) + timedelta(hours=1)
    for partner in partners[:10]:  # ten partners reconcile their day
        await reconciliation.submit_reconciliation(
            db,
            partner.principal,
            run_id=run_id,
            partner_id=None,
            csv_text=f"orderId,kind,points,occurredAt\nnot-ours,EARN,5,{at.isoformat()}\n",
        )

    # The overview an admin console shows: allowed, and a handful of statements for 51 statements
    # and ten reconciliations (each reconciliation's partner cost a statement before).
    seen, statements = await _execute(schema, db, SETTLER, OVERVIEW, {"id": run})
    shown = seen["settlementRun"]
    assert len(shown["statements"]) == 51 and len(shown["reconciliations"]) == 10
    assert {s["partner"]["name"] for s in shown["statements"] if s["partner"]} == {p.name for p in partners}
    assert len(statements) <= 10, statements
    over_http = await gateway.gql(admin_token, OVERVIEW, {"id": run})
    assert "errors" not in over_http and len(over_http["data"]["settlementRun"]["statements"]) == 51

    # Every line of the run, fifteen times over: the lists are costed by their size, so refused
    # before anything runs (it cost 15 x 6 fields before, and passed).
    lines = "statements { lines { counterparty { name } kind points amount { amount } } }"
    many = " ".join(f"r{i}: settlementRun(id: $id) {{ {lines} }}" for i in range(15))
    refused = await gateway.post(admin_token, "query($id: ID!) { " + many + " }", {"id": run})
    errors = refused.json()["errors"]
    assert [e["extensions"]["code"] for e in errors] == ["QUERY_TOO_COMPLEX"], errors
    # A partner sees only its own statement of a run: a few aliases of its lines are allowed.
    few = " ".join(f"r{i}: settlementRun(id: $id) {{ {lines} }}" for i in range(5))
    own = await gateway.gql(
        await gateway.partner_token(partners[3]), "query($id: ID!) { " + few + " }", {"id": run}
    )
    assert "errors" not in own, own
    assert all(
        len(r["statements"]) == 1 and len(r["statements"][0]["lines"]) == 3 for r in own["data"].values()
    )

    # An admin drills into one partner's lines: the whole run's lines are over the limit, one
    # partner's statement (partnerId) is costed as one.
    whole = await gateway.post(
        admin_token, "query($id: ID!) { settlementRun(id: $id) { " + lines + " } }", {"id": run}
    )
    assert [e["extensions"]["code"] for e in whole.json()["errors"]] == ["QUERY_TOO_COMPLEX"]
    one = lines.replace("statements {", "statements(partnerId: $p) { partner { name }")
    drilled = await gateway.gql(
        admin_token,
        "query($id: ID!, $p: ID) { settlementRun(id: $id) { " + one + " } }",
        {"id": run, "p": to_global_id("Partner", partners[3].id)},
    )
    assert "errors" not in drilled, drilled
    [statement] = drilled["data"]["settlementRun"]["statements"]
    assert statement["partner"]["name"] == partners[3].name and len(statement["lines"]) == 3
