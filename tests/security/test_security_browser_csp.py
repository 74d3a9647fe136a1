"""Every page in headless Chromium under the real Content-Security-Policy: the browser reports no
violation (no inline script, handler or style, no eval from htmx) on any of them."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.conf import settings
from django.test import Client
from secdata import all_endpoints, auth_headers, make_rich_fleet, make_users, url_for

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
# Records what the browser refuses, before any page script runs.
LISTEN = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__cspViolations.push(e.violatedDirective + " " + (e.blockedURI || "inline") + " " + (e.sourceFile || ""));
});
"""


@pytest.fixture()
def chromium(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread; no ORM call happens inside it.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def test_no_page_violates_the_csp_in_a_real_browser(live_server: Any, chromium: Any) -> None:
    from test_security_roles_matrix import EXPECTED

    users = make_users()
    fleet = make_rich_fleet(users)
    client = Client()
    client.force_login(users["admin"])
    context = chromium.new_context()
    session = client.cookies[settings.SESSION_COOKIE_NAME].value
    context.add_cookies([{"name": settings.SESSION_COOKIE_NAME, "value": session, "url": live_server.url}])
    context.add_init_script(LISTEN)
    page = context.new_page()
    page.set_default_timeout(15_000)
    console: list[str] = []
    page.on("console", lambda message: console.append(message.text) if message.type == "error" else None)
    violations: dict[str, list[str]] = {}
    visited = 0
    for endpoint in all_endpoints():
        # (Exports are downloads, not pages.)
        if "GET" not in EXPECTED.get(endpoint.name, {}) or endpoint.name == "login" or "export" in endpoint.name \
                or auth_headers(endpoint):  # /metrics is for a scraper, not a page
            continue
        url = url_for(endpoint, fleet)
        response = page.goto(live_server.url + url, wait_until="load")
        assert response is not None and response.status < 500, url
        assert response.headers.get("content-security-policy", "").startswith("default-src 'self'")
        page.wait_for_timeout(50)  # htmx initialises on load; give it a tick to act on the page
        found = page.evaluate("window.__cspViolations")
        if found:
            violations[url] = found
        visited += 1
    assert violations == {}
    assert [text for text in console if "Content Security Policy" in text or "Refused" in text] == []
    assert visited >= 40
    # The control: an inline handler put into the page is refused, and the listener hears it.
    page.goto(live_server.url + "/", wait_until="load")
    page.evaluate("document.body.insertAdjacentHTML('beforeend', '<img src=\"/x.png\" onerror=\"window.pwned=1\">')")
    page.wait_for_timeout(300)
    assert page.evaluate("window.__cspViolations.length") >= 1
    assert page.evaluate("window.pwned === undefined")
    # htmx itself loaded and configured (it is what would need eval or inline styles).
    assert page.evaluate("typeof htmx !== 'undefined' && htmx.config.allowEval === false "
                         "&& htmx.config.includeIndicatorStyles === false")
