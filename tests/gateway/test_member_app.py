"""The member web app's files at /app, as the gateway serves them: the page and its modules under a
Content-Security-Policy of this origin only, its config, and vendored modules that are exactly the
npm packages' files (pinned in member_app_assets/). The app in a browser is
test_member_app_browser.py."""

from __future__ import annotations

import posixpath
import re
from pathlib import Path

import pytest

from services.gateway.member_app import CONTENT_SECURITY_POLICY, STATIC
from shared.settings import get_settings
from tests.npm import npm_ci

ASSETS = Path(__file__).parent / "member_app_assets"
IMPORT = re.compile(r"""^(?:import|export)\b[^'"]*from\s+['"](\.[^'"]+)['"]""", re.M)
VENDORED = {  # file under static/app/vendor/ -> the npm package's file it is
    "graphql-ws/client.js": "graphql-ws/dist/client.js",
    "graphql-ws/common-CGW11Fyb.js": "graphql-ws/dist/common-CGW11Fyb.js",
    "graphql-ws/LICENSE.md": "graphql-ws/LICENSE.md",
    "uqr/index.mjs": "uqr/dist/index.mjs",
    "uqr/LICENSE": "uqr/LICENSE",
}


async def test_the_page_and_its_modules_are_served_under_a_self_only_policy(gateway) -> None:
    page = await gateway.client.get("/app/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert '<h2 id="balance-heading">Balance</h2>' in page.text
    assert page.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert (
        "default-src 'self'" in CONTENT_SECURITY_POLICY
        and "frame-ancestors 'none'" in CONTENT_SECURITY_POLICY
    )
    assert page.headers["referrer-policy"] == "no-referrer"
    assert page.headers["x-content-type-options"] == "nosniff"

    # Every module the page loads, and every module those import, is served as JavaScript.
    seen: set[str] = set()
    todo = ["/app/app.js"]
    while todo:
        path = todo.pop()
        seen.add(path)
        module = await gateway.client.get(path)
        assert module.status_code == 200, path
        assert module.headers["content-type"].startswith("text/javascript"), (path, module.headers)
        assert module.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
        folder = path.rsplit("/", 1)[0]
        for imported in re.findall(
            r"""^(?:import|export)\b[^'"]*from\s+['"](\.[^'"]+)['"]""", module.text, re.M
        ):
            resolved = posixpath.normpath(posixpath.join(folder, imported))
            if resolved not in seen:
                todo.append(resolved)
    assert {
        "/app/api.js",
        "/app/auth.js",
        "/app/qr.js",
        "/app/vendor/graphql-ws/client.js",
        "/app/vendor/graphql-ws/common-CGW11Fyb.js",
        "/app/vendor/uqr/index.mjs",
    } <= seen

    # Nothing inline the policy would block: no inline script, style element or style attribute.
    html = (STATIC / "index.html").read_text()
    assert not re.search(r"<script(?![^>]*\bsrc=)", html) and "<style" not in html and "style=" not in html


async def test_app_without_a_slash_goes_to_the_page(gateway) -> None:
    answer = await gateway.client.get("/app", follow_redirects=False)
    assert answer.status_code in (307, 308) and answer.headers["location"].endswith("/app/")
    assert (await gateway.client.get("/app/missing.js")).status_code == 404


async def test_config_names_the_member_app_client(gateway, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MEMBER_APP_CLIENT_ID", raising=False)
    get_settings.cache_clear()
    try:
        unset = await gateway.client.get("/app/config.json")
        monkeypatch.setenv("MEMBER_APP_CLIENT_ID", "cl_member_app_test")
        get_settings.cache_clear()
        configured = await gateway.client.get("/app/config.json")
    finally:
        monkeypatch.delenv("MEMBER_APP_CLIENT_ID", raising=False)
        get_settings.cache_clear()
    assert unset.json() == {"clientId": None, "scope": "member"}
    assert configured.json() == {"clientId": "cl_member_app_test", "scope": "member"}
    assert configured.headers["cache-control"] == "no-store"
    assert configured.headers["content-security-policy"] == CONTENT_SECURITY_POLICY


def test_vendored_files_are_the_npm_packages_bytes() -> None:
    npm_ci(ASSETS)
    vendor = STATIC / "vendor"
    on_disk = {str(p.relative_to(vendor)) for p in vendor.rglob("*") if p.is_file()} - {"README.md"}
    assert on_disk == set(VENDORED), "vendor/ holds files VENDORED does not list, or lacks some"
    for ours, theirs in VENDORED.items():
        assert (vendor / ours).read_bytes() == (ASSETS / "node_modules" / theirs).read_bytes(), ours
    readme = (vendor / "README.md").read_text()
    lock = (ASSETS / "package-lock.json").read_text()
    for package in ("graphql-ws", "uqr"):
        version = re.search(rf'"node_modules/{package}": {{\s*"version": "([^"]+)"', lock)
        assert version and f"| {version.group(1)} |" in readme, f"vendor/README.md names {package}'s version"
