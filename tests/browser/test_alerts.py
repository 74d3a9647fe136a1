"""Alerts in headless Chromium: an admin adds a webhook pointing at a real local HTTP receiver, presses
"Send test", and sees the delivery arrive in the log without reloading (the session's Celery worker
sends it)."""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from django.contrib.auth.models import Group, User

from fleetui.alerts.models import Webhook

pytestmark = [pytest.mark.browser, pytest.mark.worker, pytest.mark.django_db(transaction=True)]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
PASSWORD = "browser-pass-123"
# Screenshots for a human to look at (never into the repo): set FLEETUI_SHOTS=/tmp/shots.
SHOTS = os.environ.get("FLEETUI_SHOTS", "")


def _shot(page: Any, name: str) -> None:
    if SHOTS:
        os.makedirs(SHOTS, exist_ok=True)
        page.screenshot(path=os.path.join(SHOTS, f"browser-{name}.png"), full_page=True)


@pytest.fixture()
def page(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread; Django then refuses ORM calls here.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.set_default_timeout(15_000)
        page.console_errors = []  # type: ignore[attr-defined]
        page.on("console", lambda m: page.console_errors.append(m.text) if m.type == "error" else None)
        try:
            yield page
        finally:
            browser.close()


@pytest.fixture()
def hook_server() -> Iterator[dict[str, Any]]:
    got: dict[str, Any] = {"bodies": [], "paths": []}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            got["bodies"].append(json.loads(body))
            got["paths"].append(self.path)
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    got["port"] = server.server_address[1]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield got
    finally:
        server.shutdown()
        server.server_close()


def test_an_admin_adds_a_webhook_sends_a_test_and_sees_it_delivered(
    settings: Any, live_server: Any, celery_worker: Any, hook_server: dict[str, Any], page: Any,
) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    user = User.objects.create_user("ada", password=PASSWORD)
    user.groups.add(Group.objects.get_or_create(name="admin")[0])
    secret_path = "/services/T0/B0/browserSECRET"

    page.goto(live_server.url + "/accounts/login/")
    page.fill("#id_username", "ada")
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.click("nav.mainnav >> text=Alerts")
    page.click("text=Add a webhook")
    page.fill("#id_name", "Team Slack")
    page.fill("#id_url", f"http://127.0.0.1:{hook_server['port']}{secret_path}")
    page.select_option("#id_format", "slack")
    page.check("#id_on_lease_expiring")
    _shot(page, "alerts-form")
    page.click("main form.stacked button[type=submit]")

    page.wait_for_url(re.compile(r"/alerts/webhooks/\d+/$"))
    webhook = Webhook.objects.get()
    assert page.url == f"{live_server.url}/alerts/webhooks/{webhook.pk}/"
    assert "browserSECRET" not in page.content()
    assert f"http://127.0.0.1:{hook_server['port']}/…" in page.inner_text("dl.info")

    page.evaluate("window.__noReload = true")
    page.click("#send-test")  # a plain POST, then the page again with the pending delivery
    page.wait_for_selector("#delivery-log tr.delivery")
    page.wait_for_selector("#delivery-log tr.delivery-delivered", timeout=20_000)
    _shot(page, "alerts-log")
    row = page.inner_text("#delivery-log tr.delivery-delivered")
    assert "Test" in row and "204" in row
    assert hook_server["paths"] == [secret_path]
    assert "Team Slack works" in hook_server["bodies"][0]["text"]
    assert "browserSECRET" not in page.content()
    assert not [e for e in page.console_errors if "Content Security Policy" in e or "Refused" in e], \
        page.console_errors
