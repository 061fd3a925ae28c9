"""GraphiQL for a developer's browser when GRAPHQL_IDE is on, and nothing of it when off; the API
behind it needs a token either way (introspection included)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.e2e.conftest import Gateway, start_gateway
from tests.factories import SeededPartner, make_partner

BROWSER = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
INTROSPECTION = {"query": "{ __schema { queryType { name } } }"}


@pytest.fixture(scope="module")
def ide_server(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    """As `make run` serves it: the IDE on, logs as text."""
    log = tmp_path_factory.mktemp("ide") / "gateway.log"
    gateway = start_gateway(database_url, log, GRAPHQL_IDE="on", LOG_FORMAT="text")
    try:
        yield gateway
    finally:
        gateway.stop()


@pytest.fixture(scope="module")
async def ide_partner(db) -> SeededPartner:
    return await make_partner(db, name="IDE Lumen")


def test_a_browser_gets_graphiql_with_a_token_field(ide_server: Gateway) -> None:
    page = httpx.get(f"{ide_server.base}/graphql", headers=BROWSER)
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert page.headers["x-frame-options"] == "DENY" and page.headers["cache-control"] == "no-store"
    html = page.text
    assert "graphiql.min.js" in html and 'integrity="sha384-' in html
    assert '<input id="token"' in html
    assert 'headers.set("Authorization", "Bearer " + token())' in html


async def test_the_api_behind_the_page_still_needs_a_token(ide_server: Gateway, ide_partner) -> None:
    async with httpx.AsyncClient(base_url=ide_server.base) as client:
        anonymous = await client.post("/graphql", json=INTROSPECTION)
        assert anonymous.status_code == 401
        # A GET carrying a query is an API call, whatever the browser accepts.
        get_query = await client.get("/graphql", params=INTROSPECTION, headers=BROWSER)
        assert get_query.status_code == 401
        token = (
            await client.post(
                "/oauth/token",
                data={"grant_type": "client_credentials"},
                auth=(ide_partner.client_id, ide_partner.client_secret),
            )
        ).json()["access_token"]
        # What the page's fetch sends once a token is pasted.
        answer = await client.post(
            "/graphql", json=INTROSPECTION, headers={"Authorization": f"Bearer {token}"}
        )
    assert answer.status_code == 200
    assert answer.json()["data"]["__schema"]["queryType"]["name"] == "Query"


def test_make_runs_text_log(ide_server: Gateway) -> None:
    httpx.get(f"{ide_server.base}/graphql", headers={**BROWSER, "X-Request-Id": "ide-look"})
    lines = ide_server.output().splitlines()
    assert lines and not any(line.startswith("{") for line in lines)
    [access] = [line for line in lines if "[ide-look]" in line]
    assert "coalition.access [ide-look] GET /graphql 200" in access


def test_off_by_default_no_page(server: str) -> None:
    """The session's server runs with production defaults: a browser's GET is an API call."""
    response = httpx.get(f"{server}/graphql", headers=BROWSER)
    assert response.status_code == 401
    assert not response.headers["content-type"].startswith("text/html")
