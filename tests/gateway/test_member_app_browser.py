"""The member web app in a real browser (Debian's Chromium, driven by Playwright) against a real
`coalition serve`: a member signs in through the real login page (authorization code + PKCE, done
by the page itself), sees their balance, history and partners; a partner earns through the API
and the balance on the page changes without a reload (the subscription); the spend code shows
with its QR code and countdown; "Sign out" ends the sign-in at the server. A phone-sized
screenshot goes to docs/member-app.png.

The page may reach nothing but the gateway: any other host is refused and fails the test, and so
does any script error or Content-Security-Policy violation it logs.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from playwright.async_api import Browser, ConsoleMessage, Page, Route, async_playwright

from services.members import credentials
from shared.database import Database
from tests.e2e.conftest import Gateway, free_port, run_cli, start_gateway
from tests.factories import SeededPartner, balance, earn, enroll, make_partner

CHROMIUM = Path("/usr/bin/chromium")  # Debian's (`apt-get install chromium`; .ci/run does)
SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "member-app.png"
PHONE = {"width": 390, "height": 844}
TIMEOUT_MS = 20_000
PASSWORD = "correct horse battery staple"

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason=f"no {CHROMIUM}: `apt-get install chromium` (CI's .ci/run installs it)"
)

EARN = """mutation($input: RecordPurchaseInput!) {
  recordPurchase(input: $input) { pointsEarned userErrors { code field message } } }"""


@dataclass
class AppServer:
    gateway: Gateway
    client_id: str


@dataclass
class Watch:
    """What the page did that it should not: hosts it asked for, errors its scripts raised or
    logged (a CSP violation is logged as an error)."""

    refused: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


@pytest.fixture(scope="module")
def app_server(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppServer]:
    """A member-app client registered for this server's /app/ (so the port is chosen first), and
    the server started with it as MEMBER_APP_CLIENT_ID, as an operator would."""
    port = free_port()
    created = run_cli(
        database_url,
        "clients",
        "create-app",
        "--name",
        "Browser test app",
        "--redirect-uri",
        f"http://127.0.0.1:{port}/app/",
    )
    assert created.returncode == 0, created.stderr
    client_id = str(json.loads(created.stdout)["client_id"])
    log = tmp_path_factory.mktemp("member-app-browser") / "gateway.log"
    gateway = start_gateway(database_url, log, port=port, MEMBER_APP_CLIENT_ID=client_id)
    try:
        yield AppServer(gateway, client_id)
    finally:
        gateway.stop()


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as p:
        chromium = await p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        try:
            yield chromium
        finally:
            await chromium.close()


async def open_app(browser: Browser, gateway: Gateway) -> tuple[Page, Watch]:
    watch = Watch()
    context = await browser.new_context(viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True)
    page = await context.new_page()

    async def only_the_gateway(route: Route) -> None:
        if urlsplit(route.request.url).netloc == f"127.0.0.1:{gateway.port}":
            await route.continue_()
        else:
            watch.refused.append(route.request.url)
            await route.abort("blockedbyclient")

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            watch.errors.append(f"console: {message.text}")

    await page.route("**/*", only_the_gateway)
    page.on("console", on_console)
    page.on("pageerror", lambda error: watch.errors.append(f"uncaught: {error}"))
    await page.goto(f"{gateway.base}/app/")
    return page, watch


async def partner_token(gateway: Gateway, partner: SeededPartner) -> str:
    async with httpx.AsyncClient(base_url=gateway.base) as client:
        issued = await client.post(
            "/oauth/token",
            data={"grant_type": "client_credentials"},
            auth=(partner.client_id, partner.client_secret),
        )
    assert issued.status_code == 200, issued.text
    return str(issued.json()["access_token"])


async def earn_through_the_api(gateway: Gateway, token: str, member_number: str, amount: str) -> int:
    async with httpx.AsyncClient(base_url=gateway.base) as client:
        answer = await client.post(
            "/graphql",
            json={
                "query": EARN,
                "variables": {
                    "input": {
                        "idempotencyKey": str(uuid.uuid4()),
                        "memberNumber": member_number,
                        "orderId": f"browser-{uuid.uuid4().hex[:8]}",
                        "amount": {"amount": amount, "currency": "EUR"},
                    }
                },
            },
            headers={"Authorization": f"Bearer {token}"},
        )
    body = answer.json()
    assert answer.status_code == 200 and "errors" not in body, body
    assert body["data"]["recordPurchase"]["userErrors"] == [], body
    return int(body["data"]["recordPurchase"]["pointsEarned"])


def digits(text: str) -> str:
    return re.sub(r"\D", "", text)


async def shows(page: Page, selector: str, value: int) -> None:
    """Waits until the element shows `value` (however the browser's locale groups digits)."""
    await page.wait_for_function(
        """([selector, expected]) => {
            const node = document.querySelector(selector);
            return node && node.textContent.replace(/\\D/g, "") === expected;
        }""",
        arg=[selector, str(value)],
        timeout=TIMEOUT_MS,
    )


async def test_log_in_see_the_balance_and_watch_it_change_live(
    browser: Browser, app_server: AppServer, db: Database
) -> None:
    gateway = app_server.gateway
    partner = await make_partner(db, name="Browser Café Lumen")
    email = f"app-{uuid.uuid4().hex[:8]}@example.com"
    member = await enroll(db, partner, email=email)
    await credentials.set_password(db, member.id, PASSWORD)
    outcome = await earn(db, partner, member.member_number, "42.00")
    assert not outcome.errors
    before = (await balance(db, member.id)).available
    assert before > 0

    page, watch = await open_app(browser, gateway)
    try:
        # (a) Signed out: one button, which sends the browser to the login page with PKCE.
        login = page.get_by_role("button", name="Sign in")
        await login.wait_for(timeout=TIMEOUT_MS)
        async with page.expect_navigation(url=re.compile(r"/oauth/authorize\?"), timeout=TIMEOUT_MS):
            await login.click()
        asked = parse_qs(urlsplit(page.url).query)
        assert asked["response_type"] == ["code"] and asked["client_id"] == [app_server.client_id]
        assert asked["redirect_uri"] == [f"{gateway.base}/app/"] and asked["scope"] == ["member"]
        assert asked["code_challenge_method"] == ["S256"]
        assert re.fullmatch(r"[A-Za-z0-9_-]{43}", asked["code_challenge"][0])  # base64url SHA-256
        assert len(asked["state"][0]) >= 16

        # (b) The real login page; Enter submits its form, and the app takes the code back.
        await page.locator("input[name=username]").fill(email)
        await page.locator("input[name=password]").fill(PASSWORD)
        async with page.expect_navigation(url=re.compile(r"/app/"), timeout=TIMEOUT_MS):
            await page.locator("input[name=password]").press("Enter")
        await shows(page, "#available", before)
        assert urlsplit(page.url).query == "", "the spent code stays in the address bar"
        assert await page.locator("#member-number").inner_text() == f"Member {member.member_number}"
        assert await page.locator("#history li").count() == 1
        assert "Browser Café Lumen" in await page.locator("#history").inner_text()
        assert "Browser Café Lumen" in await page.locator("#links").inner_text()
        await page.wait_for_function(
            "() => document.querySelector('#live-state').textContent.startsWith('Live')",
            timeout=TIMEOUT_MS,
        )

        # (c) The partner earns through the API; the page shows it without a reload (a marker set
        # on this document would be gone after one), the history refetched with it.
        await page.evaluate("() => { window.__sameDocument = true; }")
        token = await partner_token(gateway, partner)
        earned = await earn_through_the_api(gateway, token, member.member_number, "17.00")
        assert earned > 0
        await shows(page, "#available", before + earned)
        await page.wait_for_function(
            "() => document.querySelectorAll('#history li').length === 2", timeout=TIMEOUT_MS
        )
        assert await page.evaluate("() => window.__sameDocument === true")
        assert digits(await page.locator("#available").inner_text()) == str(
            (await balance(db, member.id)).available
        )

        # (d) The spend code: 8 digits, a QR code, a countdown from two minutes.
        await page.get_by_role("button", name="Show spend code").click()
        await page.wait_for_function(
            "() => /^\\d{8}$/.test(document.querySelector('#spend-code').textContent)", timeout=TIMEOUT_MS
        )
        assert await page.locator("#qr svg path").count() == 1
        assert re.fullmatch(r"Valid for [12]:\d\d", await page.locator("#countdown").inner_text())

        SCREENSHOT.parent.mkdir(exist_ok=True)
        await page.screenshot(path=str(SCREENSHOT), full_page=True)

        # (e) Keyboard: the toggle is a labelled checkbox, reachable and switched with the keyboard.
        toggle = page.get_by_label("Require a spend code for every spend")
        await toggle.focus()
        await page.keyboard.press("Space")
        await page.wait_for_function(
            "() => document.querySelector('#settings-state').textContent.startsWith('Saved')",
            timeout=TIMEOUT_MS,
        )
        assert await toggle.is_checked()

        # (f) Unlink, confirmed in the browser's dialog: the partner leaves the list.
        page.once("dialog", lambda dialog: dialog.accept())
        await page.get_by_role("button", name="Unlink Browser Café Lumen").click()
        await page.wait_for_function(
            "() => !document.querySelector('#links').textContent.includes('Browser Café Lumen')",
            timeout=TIMEOUT_MS,
        )

        # (g) Sign out: the tab forgets the tokens and the server ends the sign-in (RFC 7009 revoke
        # of the refresh token as a public client): neither token works any more, anywhere.
        stored = await page.evaluate("() => JSON.parse(sessionStorage.getItem('coalition.app.session'))")
        await page.get_by_role("button", name="Sign out").click()
        await page.get_by_role("button", name="Sign in").wait_for(timeout=TIMEOUT_MS)
        assert await page.locator("#notice").inner_text() == "You are signed out."
        assert await page.evaluate("() => sessionStorage.getItem('coalition.app.session')") is None
        async with httpx.AsyncClient(base_url=gateway.base) as client:
            refreshed = await client.post(
                "/oauth/token",
                data={
                    "grant_type": "refresh_token",
                    "refresh_token": stored["refreshToken"],
                    "client_id": app_server.client_id,
                },
            )
            assert refreshed.status_code == 400 and refreshed.json()["error"] == "invalid_grant"
            viewer = await client.post(
                "/graphql",
                json={"query": "{ viewer { clientId } }"},
                headers={"Authorization": f"Bearer {stored['accessToken']}"},
            )
            assert viewer.status_code == 401
        await page.reload()  # and a reload does not sign the member back in
        await page.get_by_role("button", name="Sign in").wait_for(timeout=TIMEOUT_MS)
        assert await page.locator("#signed-in").is_hidden()

        assert watch.refused == [], f"the page asked for hosts other than the gateway: {watch.refused}"
        assert watch.errors == [], watch.errors
    finally:
        await page.context.close()
