"""Alerts through the real machinery: polls and operations in this process queue the checks on the
"alerts" queue, the session's Celery worker detects the incidents and posts the webhooks (with Celery
retries) to a real HTTP receiver on 127.0.0.1."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from alertdata import age_last_success, make_webhook

from fleetui.activity.services import operation_create
from fleetui.alerts.models import Delivery, DeliveryStatus, Incident
from fleetui.alerts.services import webhook_send_test
from fleetui.nodes.services import node_poll
from fleetui.vms.models import VM, VMState

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def test_it_alerts_once_per_outage_and_once_on_recovery(celery_worker: Any, sim_fleet: Callable[..., Any],
                                                        register_sim: Callable[..., Any], receiver: Any) -> None:
    fleet = sim_fleet(nodes=1, vms_per_node=1)
    node = register_sim(fleet.nodes[0])
    make_webhook(receiver.url("/hook/secret"))
    assert node_poll(node_id=node.pk, force=True).ok

    fleet.nodes[0].set_faults(mode="down")
    age_last_success(node)
    assert not node_poll(node_id=node.pk, force=True).ok
    alert = receiver.wait_for(1)[0].json()
    assert (alert["event"], alert["node"]["name"]) == ("node.offline", node.name)

    # Still offline at the next two polls: no second alert.
    node_poll(node_id=node.pk, force=True)
    node_poll(node_id=node.pk, force=True)
    time.sleep(1.0)
    assert len(receiver.received()) == 1

    fleet.nodes[0].clear_faults()
    assert node_poll(node_id=node.pk, force=True).ok
    recovery = receiver.wait_for(2)[1].json()
    assert (recovery["event"], recovery["status"]) == ("node.online", "resolved")
    node_poll(node_id=node.pk, force=True)
    time.sleep(0.8)
    assert len(receiver.received()) == 2
    assert Incident.objects.get().resolved_at is not None
    assert list(Delivery.objects.values_list("status", flat=True)) == ["delivered", "delivered"]


def test_celery_retries_a_5xx_with_backoff_then_succeeds(celery_worker: Any, receiver: Any,
                                                         wait_for: Callable[..., Any]) -> None:
    receiver.respond(500, 502)
    webhook = make_webhook(receiver.url())
    delivery = webhook_send_test(webhook=webhook, user=None)
    got = receiver.wait_for(3)
    delivery = wait_for(lambda: Delivery.objects.filter(pk=delivery.pk, status=DeliveryStatus.DELIVERED).first(),
                        message="the delivery to be delivered")
    assert (delivery.attempts, delivery.status_code, delivery.error) == (3, 200, "")
    # FLEETUI_ALERT_RETRY_BASE_MS=100 in tests: 0.1 s, then 0.2 s.
    assert got[1].at - got[0].at >= 0.09
    assert got[2].at - got[1].at >= 0.19
    assert len(receiver.received()) == 3


def test_a_failed_operation_is_alerted_by_the_worker(celery_worker: Any, sim_fleet: Callable[..., Any],
                                                     register_sim: Callable[..., Any], receiver: Any) -> None:
    fleet = sim_fleet(nodes=1, vms_per_node=2)
    node = register_sim(fleet.nodes[0])
    assert node_poll(node_id=node.pk, force=True).ok
    make_webhook(receiver.url(), on_node_offline=False)
    vm = VM.objects.filter(node=node, state=VMState.STOPPED).first() or VM.objects.filter(node=node).first()
    fleet.nodes[0].set_faults(mode="http_500")
    op = operation_create(kind="vm.start", user=None, node=node, vm=vm)
    body = receiver.wait_for(1, timeout=20)[0].json()
    assert body["event"] == "operation.failed"
    assert body["details"]["operation_id"] == str(op.pk)
    assert body["vm"]["name"] == vm.name
