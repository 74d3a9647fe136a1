"""Incident detection and delivery, run in this process against a real fleetsim node and a real local
HTTP receiver (the Celery side is in test_alerts_worker.py)."""

from __future__ import annotations

import json
import logging
import socket
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from alertdata import age_last_success, make_webhook
from django.utils import timezone

from fleetui.activity.models import Operation, OperationStatus
from fleetui.alerts.models import Delivery, DeliveryEvent, DeliveryStatus, Incident, IncidentKind
from fleetui.alerts.services import (
    alerts_node_check,
    alerts_operation_check,
    alerts_sweep,
    delivery_attempt,
    retry_delay_seconds,
    webhook_send_test,
)
from fleetui.core.crypto import decrypt
from fleetui.images.models import NodeTask, TaskStatus
from fleetui.nodes.services import node_poll
from fleetui.vms.models import VM

pytestmark = pytest.mark.django_db


def _send_all() -> list[str]:
    pending = Delivery.objects.filter(status=DeliveryStatus.PENDING).order_by("pk").values_list("pk", flat=True)
    return [delivery_attempt(delivery_id=pk).status for pk in pending]


def test_it_alerts_once_per_outage_and_recovers_once(sim_fleet: Callable[..., Any], register_sim: Callable[..., Any],
                                                     receiver: Any) -> None:
    fleet = sim_fleet(nodes=1, vms_per_node=1)
    node = register_sim(fleet.nodes[0])
    webhook = make_webhook(receiver.url("/hook/s3cr3t-path"))
    assert node_poll(node_id=node.pk).ok
    assert alerts_node_check(node_id=node.pk) == {"offline": 0, "recovered": 0, "task_failed": 0}

    fleet.nodes[0].set_faults(mode="down")
    assert not node_poll(node_id=node.pk, force=True).ok
    age_last_success(node)
    assert alerts_node_check(node_id=node.pk)["offline"] == 1
    assert _send_all() == ["delivered"]
    alert = receiver.wait_for(1)[0].json()
    assert alert["event"] == "node.offline" and alert["status"] == "firing"
    assert alert["node"] == {"id": node.pk, "name": node.name}
    assert "offline" in alert["summary"] and alert["url"] == f"/nodes/{node.pk}/"

    # Still offline at the next poll (and a second worker checking too): nothing more is sent.
    node_poll(node_id=node.pk, force=True)
    assert alerts_node_check(node_id=node.pk)["offline"] == 0
    assert alerts_sweep()["offline"] == 0
    assert _send_all() == []
    assert Incident.objects.filter(kind=IncidentKind.NODE_OFFLINE).count() == 1

    fleet.nodes[0].clear_faults()
    assert node_poll(node_id=node.pk, force=True).ok
    assert alerts_node_check(node_id=node.pk)["recovered"] == 1
    assert alerts_node_check(node_id=node.pk)["recovered"] == 0
    assert _send_all() == ["delivered"]
    got = receiver.wait_for(2)
    assert len(got) == 2
    recovery = got[1].json()
    assert recovery["event"] == "node.online" and recovery["status"] == "resolved"
    assert recovery["incident"]["id"] == alert["incident"]["id"]
    assert recovery["incident"]["resolved_at"] is not None
    assert all(r.path == "/hook/s3cr3t-path" for r in got)
    assert webhook.deliveries.count() == 2

    # A second outage is a new incident, with its own alert.
    fleet.nodes[0].set_faults(mode="down")
    node_poll(node_id=node.pk, force=True)
    age_last_success(node)
    assert alerts_node_check(node_id=node.pk)["offline"] == 1
    assert Incident.objects.filter(kind=IncidentKind.NODE_OFFLINE).count() == 2


def test_it_sends_the_slack_format(receiver: Any) -> None:
    webhook = make_webhook(receiver.url("/services/T0/B0/xyz"), fmt="slack", name="slack")
    webhook_send_test(webhook=webhook, user=None)
    assert _send_all() == ["delivered"]
    body = receiver.wait_for(1)[0].json()
    assert list(body) == ["text"]
    assert "Test alert from FleetUI" in body["text"] and "slack works" in body["text"]


def test_it_escapes_names_for_slack(receiver: Any) -> None:
    webhook = make_webhook(receiver.url(), fmt="slack", name="a<b>&c")
    webhook_send_test(webhook=webhook, user=None)
    _send_all()
    text = receiver.wait_for(1)[0].json()["text"]
    assert "a&lt;b&gt;&amp;c" in text and "<b>" not in text


def test_it_retries_5xx_with_growing_delays_then_succeeds(receiver: Any, settings: Any) -> None:
    settings.ALERT_RETRY_BASE_MS = 1000
    receiver.respond(500, 503)
    webhook = make_webhook(receiver.url())
    delivery = webhook_send_test(webhook=webhook, user=None)
    first = delivery_attempt(delivery_id=delivery.pk)
    assert (first.status, first.retry_in) == ("retry", 1.0)
    delivery.refresh_from_db()
    assert (delivery.status, delivery.status_code, delivery.attempts) == (DeliveryStatus.RETRYING, 500, 1)
    assert delivery.error == "HTTP 500 from the webhook" and delivery.next_attempt_at is not None
    second = delivery_attempt(delivery_id=delivery.pk)
    assert (second.status, second.retry_in) == ("retry", 2.0)
    assert delivery_attempt(delivery_id=delivery.pk).status == "delivered"
    delivery.refresh_from_db()
    assert (delivery.status, delivery.status_code, delivery.attempts, delivery.error) == ("delivered", 200, 3, "")
    assert delivery.duration_ms is not None and delivery.delivered_at is not None
    assert len(receiver.received()) == 3
    # Settled: a late duplicate of the task sends nothing.
    assert delivery_attempt(delivery_id=delivery.pk).status == "skipped"
    assert len(receiver.received()) == 3


def test_it_gives_up_after_the_last_attempt_and_never_retries_a_4xx(receiver: Any, settings: Any) -> None:
    settings.ALERT_MAX_ATTEMPTS = 2
    receiver.respond(500, 500, 404)
    webhook = make_webhook(receiver.url())
    delivery = webhook_send_test(webhook=webhook, user=None)
    assert delivery_attempt(delivery_id=delivery.pk).status == "retry"
    assert delivery_attempt(delivery_id=delivery.pk).status == "failed"
    delivery.refresh_from_db()
    assert delivery.error == "HTTP 500 from the webhook; gave up after 2 attempts"
    other = webhook_send_test(webhook=webhook, user=None)
    assert delivery_attempt(delivery_id=other.pk).status == "failed"
    other.refresh_from_db()
    assert (other.status_code, other.attempts, other.error) == (404, 1, "HTTP 404 from the webhook (not retried)")


def test_backoff_doubles_and_is_capped(settings: Any) -> None:
    settings.ALERT_RETRY_BASE_MS = 10_000
    assert [retry_delay_seconds(n) for n in (1, 2, 3, 4)] == [10.0, 20.0, 40.0, 80.0]
    assert retry_delay_seconds(30) == 3600.0


def test_it_never_leaks_the_url_path(caplog: pytest.LogCaptureFixture) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    secret = "T0SECRET/B0SECRET/xoxSECRETxox"
    webhook = make_webhook(f"http://127.0.0.1:{port}/services/{secret}?token=qSECRETq")
    assert secret not in webhook.url_enc and "SECRET" not in webhook.url_display
    assert webhook.url_display == f"http://127.0.0.1:{port}/…"
    assert decrypt(webhook.url_enc).endswith("token=qSECRETq")
    assert "SECRET" not in repr(webhook) and "SECRET" not in str(webhook)
    delivery = webhook_send_test(webhook=webhook, user=None)
    with caplog.at_level(logging.DEBUG):
        outcome = delivery_attempt(delivery_id=delivery.pk)
    assert outcome.status == "retry"
    delivery.refresh_from_db()
    assert delivery.error == "connection refused"
    assert "SECRET" not in caplog.text and "SECRET" not in delivery.body and "SECRET" not in delivery.error
    assert str(port) in caplog.text  # the masked address is logged, to know which webhook failed


def test_a_failed_operation_alerts_once(receiver: Any) -> None:
    webhook = make_webhook(receiver.url(), on_node_offline=False)
    op = Operation.objects.create(kind="vm.start", status=OperationStatus.FAILED, username="alice",
                                  node_name="mac-1", vm_name="build-7", error="the VM is locked",
                                  finished_at=timezone.now())
    ok = Operation.objects.create(kind="vm.stop", status=OperationStatus.SUCCEEDED, node_name="mac-1",
                                  finished_at=timezone.now())
    assert alerts_operation_check(operation_id=str(ok.pk)) is None
    incident = alerts_operation_check(operation_id=str(op.pk))
    assert incident is not None and incident.resolved_at is not None
    assert alerts_operation_check(operation_id=str(op.pk)) is None
    assert alerts_sweep()["operation_failed"] == 0
    assert _send_all() == ["delivered"]
    body = receiver.wait_for(1)[0].json()
    assert body["event"] == "operation.failed"
    assert body["summary"] == "Start VM failed (VM build-7 on mac-1, asked by alice): the VM is locked"
    assert body["url"] == f"/operations/{op.pk}/"
    assert webhook.deliveries.count() == 1


def test_the_sweep_catches_a_failed_operation_the_hook_missed(receiver: Any) -> None:
    make_webhook(receiver.url())
    Operation.objects.create(kind="vm.stop", status=OperationStatus.FAILED, node_name="mac-1",
                             error="timed out", finished_at=timezone.now())
    Operation.objects.create(kind="vm.stop", status=OperationStatus.FAILED, node_name="mac-1",
                             error="old news", finished_at=timezone.now() - timedelta(hours=3))
    assert alerts_sweep()["operation_failed"] == 1
    assert alerts_sweep()["operation_failed"] == 0
    assert Delivery.objects.count() == 1


def test_a_failed_node_task_alerts_once(sim_fleet: Callable[..., Any], register_sim: Callable[..., Any],
                                        receiver: Any) -> None:
    fleet = sim_fleet(nodes=1, vms_per_node=0)
    node = register_sim(fleet.nodes[0])
    make_webhook(receiver.url(), on_node_offline=False, on_operation_failed=False)
    now = timezone.now()
    NodeTask.objects.create(node=node, remote_id="t-1", type="imagePull", title="Pull ghcr.io/acme/base:15",
                            status=TaskStatus.FAILED, error_message="manifest unknown", completed_at=now,
                            last_seen_at=now)
    NodeTask.objects.create(node=node, remote_id="t-0", type="imagePull", title="Old pull", status=TaskStatus.FAILED,
                            completed_at=now - timedelta(days=1), last_seen_at=now)
    NodeTask.objects.create(node=node, remote_id="t-2", type="imagePull", status=TaskStatus.RUNNING, last_seen_at=now)
    assert alerts_node_check(node_id=node.pk)["task_failed"] == 1
    assert alerts_node_check(node_id=node.pk)["task_failed"] == 0
    assert alerts_sweep()["task_failed"] == 0
    _send_all()
    body = receiver.wait_for(1)[0].json()
    assert body["event"] == "node_task.failed"
    assert "Pull ghcr.io/acme/base:15" in body["summary"] and "manifest unknown" in body["summary"]


def test_leases_alert_each_webhook_within_its_window(sim_fleet: Callable[..., Any],
                                                     register_sim: Callable[..., Any], receiver: Any) -> None:
    fleet = sim_fleet(nodes=1, vms_per_node=2)
    node = register_sim(fleet.nodes[0])
    node_poll(node_id=node.pk)
    soon, later = VM.objects.filter(node=node).order_by("pk")[:2]
    now = timezone.now()
    VM.objects.filter(pk=soon.pk).update(expires_at=now + timedelta(minutes=20))
    VM.objects.filter(pk=later.pk).update(expires_at=now + timedelta(minutes=90))
    wide = make_webhook(receiver.url("/wide"), name="wide", on_lease_expiring=True, lease_window_minutes=120)
    narrow = make_webhook(receiver.url("/narrow"), name="narrow", on_lease_expiring=True, lease_window_minutes=30)
    counts = alerts_sweep()
    assert (counts["lease_incidents"], counts["lease_alerts"]) == (2, 3)
    assert alerts_sweep()["lease_alerts"] == 0
    assert narrow.deliveries.count() == 1 and wide.deliveries.count() == 2
    assert narrow.deliveries.get().incident.vm_id == soon.pk
    _send_all()
    bodies = [json.loads(r.body) for r in receiver.wait_for(3) if r.path == "/narrow"]
    assert bodies[0]["event"] == "vm.lease_expiring"
    assert "ends in 19 min" in bodies[0]["summary"] or "ends in 20 min" in bodies[0]["summary"]
    # The lease is extended: its incident closes; entering the window again is a new incident.
    VM.objects.filter(pk=soon.pk).update(expires_at=now + timedelta(minutes=25))
    counts = alerts_sweep()
    assert counts["lease_resolved"] == 1 and counts["lease_incidents"] == 1
    assert Incident.objects.filter(kind=IncidentKind.LEASE_EXPIRING, resolved_at__isnull=True).count() == 2


def test_a_disabled_or_unsubscribed_webhook_gets_nothing(sim_fleet: Callable[..., Any],
                                                         register_sim: Callable[..., Any], receiver: Any) -> None:
    fleet = sim_fleet(nodes=1, vms_per_node=0)
    node = register_sim(fleet.nodes[0])
    make_webhook(receiver.url(), name="off", enabled=False)
    make_webhook(receiver.url(), name="ops-only", on_node_offline=False)
    fleet.nodes[0].set_faults(mode="down")
    node_poll(node_id=node.pk, force=True)
    age_last_success(node)
    assert alerts_node_check(node_id=node.pk)["offline"] == 1
    assert Delivery.objects.filter(event=DeliveryEvent.ALERT).count() == 0


def test_a_removed_node_ends_its_outage_without_a_recovery(sim_fleet: Callable[..., Any],
                                                           register_sim: Callable[..., Any], receiver: Any) -> None:
    fleet = sim_fleet(nodes=1, vms_per_node=0)
    node = register_sim(fleet.nodes[0])
    make_webhook(receiver.url())
    fleet.nodes[0].set_faults(mode="down")
    node_poll(node_id=node.pk, force=True)
    age_last_success(node)
    assert alerts_node_check(node_id=node.pk)["offline"] == 1
    node.delete()
    alerts_sweep()
    incident = Incident.objects.get()
    assert incident.resolved_at is not None and incident.dedup_key is None
    assert list(Delivery.objects.values_list("event", flat=True)) == [DeliveryEvent.ALERT]
