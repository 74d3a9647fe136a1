"""Alerts in headless Chromium: an admin adds a webhook pointing at a real local HTTP receiver, presses
"Send test", and sees the delivery arrive in the log without reloading (the session's Celery worker
sends it)."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from support.browser import shot

from fleetui.alerts.models import Webhook

pytestmark = [pytest.mark.browser, pytest.mark.worker, pytest.mark.django_db(transaction=True)]



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
    live_server: Any, celery_worker: Any, hook_server: dict[str, Any], logged_in_page: Any,
) -> None:
    page = logged_in_page("admin", "ada")
    secret_path = "/services/T0/B0/browserSECRET"

    page.goto("/")
    page.click("nav.mainnav >> text=Alerts")
    page.click("text=Add a webhook")
    page.fill("#id_name", "Team Slack")
    page.fill("#id_url", f"http://127.0.0.1:{hook_server['port']}{secret_path}")
    page.select_option("#id_format", "slack")
    page.check("#id_on_lease_expiring")
    shot(page, "alerts-form")
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
    shot(page, "alerts-log")
    row = page.inner_text("#delivery-log tr.delivery-delivered")
    assert "Test" in row and "204" in row
    assert hook_server["paths"] == [secret_path]
    assert "Team Slack works" in hook_server["bodies"][0]["text"]
    assert "browserSECRET" not in page.content()
    assert not [e for e in page.console_errors if "Content Security Policy" in e or "Refused" in e], \
        page.console_errors
