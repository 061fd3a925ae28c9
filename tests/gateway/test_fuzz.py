"""Operations generated from the live schema, sent to a real server: nothing may answer 5xx or a
masked "Internal error.".

hypothesis-graphql writes documents over every root field with literal arguments (valid ones, and,
in negative mode, documents with one schema violation); the custom scalars get strategies that mix
what a client should send with what a careless or hostile one does. Refusals (FORBIDDEN,
userErrors, validation errors, RATE_LIMITED) are correct answers. A partner token and an admin
token each get FUZZ_SECONDS (60 by default; CI runs the default) against a gateway and database
of the test's own, since an admin's generated mutations change coalition-wide settings.

Each round is a Hypothesis run of FUZZ_ROUND examples, repeated until the time is up, so a failure
is shrunk to a small document and printed with the answer it got.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import graphql
import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis_graphql import Mode, mutations, nodes, queries

from services.gateway.schema import build_schema
from services.identity import service as identity
from shared.access import ADMIN_SCOPES
from shared.database import Database, drop_database, recreate_database, resolve_database_url
from shared.ids import to_global_id
from shared.migrate import upgrade_to_head
from tests.e2e.conftest import start_gateway
from tests.factories import earn, enroll, make_partner

FUZZ_SECONDS = float(os.environ.get("FUZZ_SECONDS", "60"))
FUZZ_ROUND = 40
MASKED = "Internal error"

_ints = st.one_of(
    st.integers(min_value=-(10**6), max_value=10**6),
    st.sampled_from([0, 1, -1, 2**31, 2**53 + 1, 2**63 - 1, 2**63, -(2**63), -(2**63) - 1, 10**30]),
)
_digit_text = st.text(alphabet=st.sampled_from("0123456789-+.eE ²١٢\u00a0x"), max_size=30)
_decimal_text = st.one_of(
    st.decimals(allow_nan=False, allow_infinity=False, places=2, min_value=-(10**12), max_value=10**12).map(
        str
    ),
    st.sampled_from(
        ["12.90", "0", "-0.01", "1e3", "NaN", "Infinity", " 5 ", "١٢", "0." + "1" * 40, "9" * 40]
    ),
    _digit_text,
)
_instants = st.datetimes(min_value=datetime(1, 1, 2)).map(lambda d: d.isoformat())
_datetime_text = st.one_of(
    _instants,
    _instants.map(lambda s: s + "Z"),
    _instants.map(lambda s: s + "+14:00"),
    st.sampled_from(
        ["2026-11-01T00:00:00Z", "9999-12-31T23:59:59-12:00", "0001-01-01T00:00:00+14:00", "now"]
    ),
    st.text(max_size=30),
)
_durations = st.one_of(
    st.builds(lambda n, u: f"P{n}{u}", st.integers(0, 10**12), st.sampled_from("DWMY")),
    st.builds(lambda n, u: f"PT{n}{u}", st.integers(0, 10**12), st.sampled_from("HMS")),
    st.sampled_from(["P30D", "PT12H", "P", "PT", "P1DT", "P\u0661D", "-P1D"]),
    st.text(max_size=20),
)


# Any code point, lone surrogates included (sent as JSON escapes, as a client's encoder would).
_any_text = st.text(st.characters(exclude_categories=()), max_size=60)


def custom_scalars(known: Known) -> dict[str, st.SearchStrategy[graphql.ValueNode]]:
    """Strategies for our scalars; ID and String draw often from what exists (a member number the
    partner knows, ids of rows), so operations get past "not found" into the paths behind it."""
    return {
        "String": st.one_of(st.sampled_from(known.strings), _any_text).map(nodes.String),
        "ID": st.one_of(st.sampled_from(known.ids), st.text(max_size=40)).map(nodes.String),
        "Points": st.one_of(
            _ints.map(nodes.Int), _digit_text.map(nodes.String), st.floats().map(nodes.Float)
        ),
        "Decimal": st.one_of(
            _decimal_text.map(nodes.String),
            _ints.map(nodes.Int),
            st.floats(allow_nan=False, allow_infinity=False).map(nodes.Float),
        ),
        "DateTime": st.one_of(_datetime_text.map(nodes.String), _ints.map(nodes.Int)),
        "Duration": st.one_of(_durations.map(nodes.String), _ints.map(nodes.Int)),
    }


@dataclass
class Tally:
    requests: int = 0
    by_status: dict[int, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Known:
    ids: list[str]
    strings: list[str]


@dataclass
class FuzzTarget:
    base: str
    partner_token: str
    admin_token: str
    known: Known
    log: Path


def _token(base: str, client_id: str, secret: str) -> str:
    response = httpx.post(
        f"{base}/oauth/token", data={"grant_type": "client_credentials"}, auth=(client_id, secret)
    )
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


async def _seed(url: str) -> tuple[tuple[str, str], tuple[str, str], Known]:
    """A partner whose member holds points, another partner, an admin client, and what exists."""
    db = Database(url, pool_size=2)
    try:
        cafe = await make_partner(db, name="Fuzz Cafe")
        other = await make_partner(db, name="Fuzz Airline")
        member = await enroll(db, cafe, ref="fuzz-customer")
        await earn(db, cafe, member.member_number, "500.00", order_id="till-1")
        async with db.sessions() as session:
            admin = await identity.create_client(session, name="fuzz admin", scopes=sorted(ADMIN_SCOPES))
            await session.commit()
    finally:
        await db.dispose()
    known = Known(
        ids=[
            to_global_id("Partner", cafe.id),
            to_global_id("Partner", other.id),
            to_global_id("Member", member.id),
        ],
        strings=[
            member.member_number,
            "till-1",
            "fuzz-customer",
            "EUR",
            cafe.client_id,
            "2026-11-01T00:00:00Z",
        ],
    )
    return (cafe.client_id, cafe.client_secret), (admin.client_id, admin.client_secret), known


@pytest.fixture(scope="module")
async def fuzz_target(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[FuzzTarget]:
    base_url = resolve_database_url()
    name = f"coalition_fuzz_{os.getpid()}"
    url = await recreate_database(base_url, name)
    await upgrade_to_head(url)
    partner, admin, known = await _seed(url)
    log = tmp_path_factory.mktemp("fuzz") / "gateway.log"
    # Enumeration limits would turn most of the run into RATE_LIMITED: lift them for the fuzz.
    gateway = start_gateway(url, log, MEMBER_MISS_LIMIT="1000000", LOG_FORMAT="json")
    try:
        partner_token, admin_token = _token(gateway.base, *partner), _token(gateway.base, *admin)
        yield FuzzTarget(gateway.base, partner_token, admin_token, known, log)
    finally:
        gateway.stop()
        await drop_database(base_url, name)


def _documents(known: Known) -> st.SearchStrategy[str]:
    schema = graphql.build_schema(build_schema().as_str())
    scalars = custom_scalars(known)
    return st.one_of(
        *(
            kind(schema, custom_scalars=scalars, mode=mode)
            for kind in (queries, mutations)
            for mode in (Mode.POSITIVE, Mode.NEGATIVE)
        )
    )


def _check(response: httpx.Response, document: str) -> None:
    assert response.status_code < 500, f"{response.status_code} for\n{document}\n{response.text[:2000]}"
    assert MASKED not in response.text, f"masked internal error for\n{document}\n{response.text[:2000]}"


def _fuzz(target: FuzzTarget, token: str) -> Tally:
    tally = Tally()
    documents = _documents(target.known)
    headers = {
        "Authorization": f"Bearer {token}",
        "Accept": "application/graphql-response+json",
        "Content-Type": "application/json",
    }

    with httpx.Client(base_url=target.base, headers=headers, timeout=30) as client:

        @settings(
            max_examples=FUZZ_ROUND,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(document=documents)
        def one_round(document: str) -> None:
            try:
                response = client.post("/graphql", content=json.dumps({"query": document}))
            except httpx.TransportError as exc:
                raise AssertionError(f"no answer ({exc!r}) for\n{document}") from None
            tally.requests += 1
            tally.by_status[response.status_code] = tally.by_status.get(response.status_code, 0) + 1
            _check(response, document)

        deadline = time.monotonic() + FUZZ_SECONDS
        while time.monotonic() < deadline:
            one_round()
    return tally


@pytest.mark.parametrize("who", ["partner", "admin"])
def test_generated_operations_never_reach_a_500(fuzz_target: FuzzTarget, who: str) -> None:
    token = fuzz_target.partner_token if who == "partner" else fuzz_target.admin_token
    tally = _fuzz(fuzz_target, token)
    print(f"fuzz[{who}]: {tally.requests} requests in {FUZZ_SECONDS:.0f} s, by status {tally.by_status}")
    assert tally.requests > 0
    # Every answer was a refusal or a result, so nothing the server logged deserves a traceback:
    # each expected error is one JSON line.
    lines = fuzz_target.log.read_text(errors="replace").splitlines()
    logged = [json.loads(line) for line in lines if line.startswith("{")]
    assert len(logged) == len(lines), [line for line in lines if not line.startswith("{")][:5]
    assert not [line for line in logged if "exception" in line][:3]
    assert sum(1 for line in logged if line["logger"] == "coalition.access") >= tally.requests
