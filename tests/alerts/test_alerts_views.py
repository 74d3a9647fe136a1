"""The alerts pages: admins only; webhooks added, edited, tested and deleted through the views; a bad
URL is refused in plain words with nothing saved; the URL's path never reaches a page."""

from __future__ import annotations

from typing import Any

import pytest
from alertdata import make_webhook
from django.db import connection
from django.test.utils import CaptureQueriesContext

from fleetui.alerts.models import Delivery, DeliveryEvent, DeliveryStatus, Webhook
from fleetui.alerts.services import delivery_attempt

pytestmark = pytest.mark.django_db

SECRET_URL = "https://hooks.slack.com/services/T00SECRET/B00SECRET/XXSECRETXX"
FORM = {"name": "Slack #ops", "url": SECRET_URL, "format": "slack", "on_node_offline": "on",
        "on_operation_failed": "on", "lease_window_minutes": "60", "enabled": "on"}


def test_it_is_for_admins_only(as_role: Any) -> None:
    webhook = make_webhook("https://example.com/hook")
    urls = ["/alerts/", "/alerts/webhooks/add/", f"/alerts/webhooks/{webhook.pk}/",
            f"/alerts/webhooks/{webhook.pk}/edit/", f"/alerts/webhooks/{webhook.pk}/delete/"]
    for role in ("none", "viewer", "operator"):
        client = as_role(role)
        for url in urls:
            assert client.get(url).status_code == 403, (role, url)
        assert client.post(f"/alerts/webhooks/{webhook.pk}/test/").status_code == 403
        assert client.post("/alerts/webhooks/add/", FORM).status_code == 403
    assert Webhook.objects.count() == 1 and Delivery.objects.count() == 0
    client = as_role("anonymous")
    assert client.get("/alerts/")["Location"].startswith("/accounts/login/")
    client = as_role("admin")
    for url in urls:
        assert client.get(url).status_code == 200, url


def test_it_adds_a_webhook_and_never_shows_its_path(as_role: Any) -> None:
    client = as_role("admin")
    response = client.post("/alerts/webhooks/add/", FORM)
    webhook = Webhook.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/alerts/webhooks/{webhook.pk}/"
    assert (webhook.format, webhook.on_node_offline, webhook.on_task_failed, webhook.on_lease_expiring) == \
        ("slack", True, False, False)
    assert webhook.url_display == "https://hooks.slack.com/…"
    for url in ("/alerts/", f"/alerts/webhooks/{webhook.pk}/", f"/alerts/webhooks/{webhook.pk}/edit/"):
        page = client.get(url).content.decode()
        assert "hooks.slack.com" in page and "SECRET" not in page, url


@pytest.mark.parametrize("url, message", [
    ("http://169.254.169.254/latest/meta-data/", "cloud metadata address"),
    ("http://[fe80::1]/x", "link-local"),
    ("http://metadata.google.internal/x", "cloud metadata service"),
    ("ftp://example.com/x", "starts with http:// or https://"),
    ("https://", "needs a host"),
    ("http://[::1", "not a valid URL"),
    ("https://example.com:99999/x", "not a valid URL"),
    ("https://exa mple.com/x", "no spaces"),
    ("", "This field is required."),
])
def test_it_refuses_a_bad_url_and_saves_nothing(as_role: Any, url: str, message: str) -> None:
    client = as_role("admin")
    response = client.post("/alerts/webhooks/add/", {**FORM, "url": url})
    assert response.status_code == 400
    assert message in response.content.decode()
    assert Webhook.objects.count() == 0


def test_it_needs_an_event_and_a_sane_window(as_role: Any) -> None:
    client = as_role("admin")
    data = {k: v for k, v in FORM.items() if not k.startswith("on_")}
    assert "Choose at least one event" in client.post("/alerts/webhooks/add/", data).content.decode()
    response = client.post("/alerts/webhooks/add/", {**FORM, "lease_window_minutes": "0"})
    assert response.status_code == 400 and Webhook.objects.count() == 0


def test_edit_keeps_the_url_when_left_empty(as_role: Any) -> None:
    client = as_role("admin")
    webhook = make_webhook(SECRET_URL, name="old")
    stored = webhook.url_enc
    response = client.post(f"/alerts/webhooks/{webhook.pk}/edit/", {**FORM, "url": "", "name": "new"})
    assert response.status_code == 302
    webhook.refresh_from_db()
    assert (webhook.name, webhook.url_enc) == ("new", stored)
    response = client.post(f"/alerts/webhooks/{webhook.pk}/edit/", {**FORM, "url": "http://169.254.169.254/"})
    assert response.status_code == 400
    webhook.refresh_from_db()
    assert webhook.url_enc == stored


def test_send_test_queues_a_delivery_shown_in_the_log(as_role: Any, receiver: Any) -> None:
    client = as_role("admin")
    webhook = make_webhook(receiver.url("/x/SECRETPATH"))
    assert client.get(f"/alerts/webhooks/{webhook.pk}/test/").status_code == 405
    response = client.post(f"/alerts/webhooks/{webhook.pk}/test/")
    assert response.status_code == 302
    delivery = Delivery.objects.get()
    assert (delivery.event, delivery.status) == (DeliveryEvent.TEST, DeliveryStatus.PENDING)
    page = client.get(f"/alerts/webhooks/{webhook.pk}/").content.decode()
    assert 'hx-trigger="every 2s"' in page and "pending" in page
    delivery_attempt(delivery_id=delivery.pk)
    partial = client.get(f"/alerts/webhooks/{webhook.pk}/", HTTP_HX_REQUEST="true")
    assert partial.status_code == 286  # settled: the log stops polling
    assert "delivered" in partial.content.decode() and "<html" not in partial.content.decode()
    assert "HX-Request" in partial["Vary"]
    assert "SECRETPATH" not in partial.content.decode()


def test_the_log_costs_the_same_queries_however_long(as_role: Any) -> None:
    client = as_role("admin")
    webhook = make_webhook("https://example.com/hook")
    client.get(f"/alerts/webhooks/{webhook.pk}/")

    def count() -> int:
        with CaptureQueriesContext(connection) as ctx:
            assert client.get(f"/alerts/webhooks/{webhook.pk}/", HTTP_HX_REQUEST="true").status_code in (200, 286)
        return len(ctx.captured_queries)

    Delivery.objects.create(webhook=webhook, event=DeliveryEvent.TEST, body="{}")
    few = count()
    Delivery.objects.bulk_create([Delivery(webhook=webhook, event=DeliveryEvent.TEST, body="{}") for _ in range(20)])
    assert count() == few


def test_delete_asks_then_deletes(as_role: Any) -> None:
    client = as_role("admin")
    webhook = make_webhook("https://example.com/hook")
    assert "Delete the webhook" in client.get(f"/alerts/webhooks/{webhook.pk}/delete/").content.decode()
    assert client.post(f"/alerts/webhooks/{webhook.pk}/delete/").status_code == 302
    assert Webhook.objects.count() == 0
    assert client.get(f"/alerts/webhooks/{webhook.pk}/").status_code == 404


def test_names_are_inert_html(as_role: Any) -> None:
    client = as_role("admin")
    webhook = make_webhook("https://example.com/hook", name="<script>alert(1)</script>")
    for url in ("/alerts/", f"/alerts/webhooks/{webhook.pk}/"):
        page = client.get(url).content.decode()
        assert "<script>alert(1)</script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
