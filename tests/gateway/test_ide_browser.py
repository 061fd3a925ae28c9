"""The GraphiQL page in a real browser (Debian's Chromium, driven by Playwright): it loads, a query
without a token is refused, and once a token is pasted every request carries it.

The page loads React, ReactDOM and GraphiQL from unpkg.com, which neither CI nor a developer's
sandbox reaches; the same versions, pinned in `graphiql_assets/package-lock.json` and installed
with `npm ci` (tests/npm.py), stand in for them: each unpkg URL is answered from the npm file it
serves. The page's `integrity=` hashes still apply, so the browser checks that these are the
bytes the page pins. Any other host is refused, and the test fails if the page asked for one.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.async_api import Browser, ConsoleMessage, Page, Request, Route, async_playwright
from playwright.async_api import TimeoutError as PlaywrightTimeoutError

from shared.database import Database
from tests.e2e.conftest import Gateway, start_gateway
from tests.factories import SeededPartner, make_partner
from tests.npm import npm_ci

CHROMIUM = Path("/usr/bin/chromium")  # Debian's (`apt-get install chromium`; .ci/run does)
ASSETS = Path(__file__).parent / "graphiql_assets"
UNPKG = {  # what graphiql.html loads -> the npm file unpkg serves for it
    "https://unpkg.com/react@18.2.0/umd/react.production.min.js": "react/umd/react.production.min.js",
    "https://unpkg.com/react-dom@18.2.0/umd/react-dom.production.min.js": (
        "react-dom/umd/react-dom.production.min.js"
    ),
    "https://unpkg.com/graphiql@3.8.3/graphiql.min.css": "graphiql/graphiql.min.css",
    "https://unpkg.com/graphiql@3.8.3/graphiql.min.js": "graphiql/graphiql.min.js",
}
CONTENT_TYPES = {".js": "application/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}
TIMEOUT_MS = 20_000

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason=f"no {CHROMIUM}: `apt-get install chromium` (CI's .ci/run installs it)"
)


@dataclass
class Watch:
    """What the page did: the requests it sent to /graphql, the hosts it was refused, and the
    errors its scripts raised or logged."""

    graphql: list[Request] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


@pytest.fixture(scope="module")
def ide_gateway(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    gateway = start_gateway(
        database_url, tmp_path_factory.mktemp("ide-browser") / "gateway.log", GRAPHQL_IDE="on"
    )
    try:
        yield gateway
    finally:
        gateway.stop()


@pytest.fixture(scope="module")
async def ide_partner(db: Database) -> SeededPartner:
    return await make_partner(db, name="IDE Browser Lumen")


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    npm_ci(ASSETS)
    async with async_playwright() as p:
        chromium = await p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        try:
            yield chromium
        finally:
            await chromium.close()


def serve_from_npm(watch: Watch, gateway: Gateway) -> Callable[[Route], Awaitable[None]]:
    """The route handler: the gateway itself as is, unpkg from node_modules, anything else refused."""

    async def handle(route: Route) -> None:
        url = route.request.url
        if urlsplit(url).netloc == f"127.0.0.1:{gateway.port}":
            await route.continue_()
        elif url in UNPKG:
            path = ASSETS / "node_modules" / UNPKG[url]
            await route.fulfill(
                status=200,
                body=path.read_bytes(),
                # unpkg's own headers: the page loads these with crossorigin (CORS mode).
                headers={
                    "Content-Type": CONTENT_TYPES[path.suffix],
                    "Access-Control-Allow-Origin": "*",
                },
            )
        else:
            watch.refused.append(url)
            await route.abort("blockedbyclient")

    return handle


async def open_ide(browser: Browser, gateway: Gateway) -> tuple[Page, Watch]:
    watch = Watch()
    page = await browser.new_page()
    await page.route("**/*", serve_from_npm(watch, gateway))

    def on_request(request: Request) -> None:
        if is_graphql_post(request):
            watch.graphql.append(request)

    def on_console(message: ConsoleMessage) -> None:
        # The browser's own line for the 401 the page is meant to get without a token is no error
        # of a script; anything else logged as an error is.
        if message.type == "error" and "status of 401" not in message.text:
            watch.errors.append(f"console: {message.text}")

    page.on("request", on_request)
    page.on("console", on_console)
    page.on("pageerror", lambda error: watch.errors.append(f"uncaught: {error}"))
    await page.goto(f"{gateway.base}/graphql")
    try:
        await page.locator(".graphiql-query-editor .CodeMirror").wait_for(timeout=TIMEOUT_MS)
    except PlaywrightTimeoutError:
        # Most likely a file the browser refused (an integrity mismatch) or a host it was denied.
        pytest.fail(f"GraphiQL did not load: errors {watch.errors}, refused hosts {watch.refused}")
    return page, watch


async def issue_token(gateway: Gateway, partner: SeededPartner) -> str:
    """What a developer pastes: an access token from POST /oauth/token (client credentials)."""
    async with httpx.AsyncClient(base_url=gateway.base) as client:
        issued = await client.post(
            "/oauth/token",
            data={"grant_type": "client_credentials"},
            auth=(partner.client_id, partner.client_secret),
        )
    assert issued.status_code == 200, issued.text
    return str(issued.json()["access_token"])


def is_graphql_post(request: Request) -> bool:
    return urlsplit(request.url).path == "/graphql" and request.method == "POST"


async def run_query(page: Page, *, keys: bool) -> dict[str, Any]:
    """Runs the editor's query (Ctrl-Enter in the editor, or the toolbar's run button); the JSON
    the server answered, once the result pane shows exactly that. The pane alone would not do:
    without a token it already shows the schema introspection's refusal before anything runs."""
    editor = page.locator(".graphiql-query-editor .CodeMirror")
    try:
        async with page.expect_response(
            lambda r: is_graphql_post(r.request) and "viewer" in (r.request.post_data or ""),
            timeout=TIMEOUT_MS,
        ) as answered:
            if keys:
                await editor.click()
                await page.keyboard.press("Control+Enter")
            else:
                await page.locator(".graphiql-execute-button").click()
    except PlaywrightTimeoutError:
        pytest.fail(f"running the query sent no request to /graphql in {TIMEOUT_MS} ms")
    answer: dict[str, Any] = await (await answered.value).json()
    await page.wait_for_function(
        """expected => {
            const cm = document.querySelector(".result-window .CodeMirror");
            try { return JSON.stringify(JSON.parse(cm.CodeMirror.getValue())) === JSON.stringify(expected); }
            catch { return false; }
        }""",
        arg=answer,
        timeout=TIMEOUT_MS,
    )
    return answer


async def test_graphiql_in_a_browser(
    browser: Browser, ide_gateway: Gateway, ide_partner: SeededPartner
) -> None:
    page, watch = await open_ide(browser, ide_gateway)
    try:
        # (a) The editor is up, with the page's default query in it.
        assert "viewer" in await page.locator(".graphiql-query-editor").inner_text()
        assert await page.locator("#token-state").inner_text() == "no token: requests will be refused"

        # (b) No token: the API's refusal, in the result pane.
        refused = await run_query(page, keys=False)
        assert [e["extensions"]["code"] for e in refused["errors"]] == ["UNAUTHENTICATED"], refused
        assert watch.graphql and all("authorization" not in r.headers for r in watch.graphql)

        # (c) A token pasted into the field (Enter commits it, as the change event wants), and the
        # query run with Ctrl-Enter: the partner's own identity ...
        token = await issue_token(ide_gateway, ide_partner)
        sent_before = len(watch.graphql)
        async with page.expect_request(
            lambda r: urlsplit(r.url).path == "/graphql" and "__schema" in (r.post_data or "")
        ):
            await page.locator("#token").fill(token)
            await page.locator("#token").press("Enter")
        assert await page.locator("#token-state").inner_text() == "sent as Authorization: Bearer …"
        answer = await run_query(page, keys=True)
        assert "errors" not in answer, answer
        assert answer["data"]["viewer"]["clientId"] == ide_partner.client_id
        assert answer["data"]["viewer"]["partner"]["name"] == "IDE Browser Lumen"
        await page.screenshot(path="/tmp/ide.png")

        # (d) ... and every request since, the schema's introspection included, carried it.
        since = watch.graphql[sent_before:]
        assert len(since) >= 2  # the introspection again, then the query
        assert {r.headers.get("authorization") for r in since} == {f"Bearer {token}"}
        assert any(re.search(r"\bviewer\b", r.post_data or "") for r in since)

        assert watch.refused == [], f"the page needs hosts it may not reach: {watch.refused}"
        assert watch.errors == []
    finally:
        await page.close()


async def test_a_token_pasted_then_run_at_once(
    browser: Browser, ide_gateway: Gateway, ide_partner: SeededPartner
) -> None:
    """Paste, then click Run: the click's blur is what commits the token (the change event), and
    the run must survive it. It did not while a new token remounted GraphiQL (a new React key):
    the click landed on a button already replaced, and no query was sent."""
    page, watch = await open_ide(browser, ide_gateway)
    try:
        token = await issue_token(ide_gateway, ide_partner)
        await page.locator("#token").fill(token)
        answer = await run_query(page, keys=False)
        assert answer["data"]["viewer"]["clientId"] == ide_partner.client_id, answer
        [query] = [r for r in watch.graphql if "viewer" in (r.post_data or "")]
        assert query.headers.get("authorization") == f"Bearer {token}"
        assert watch.refused == [] and watch.errors == []
    finally:
        await page.close()
