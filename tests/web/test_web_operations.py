"""The operation partial: pending/running until the outcome, then the result; polling stops with 286."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from django.test import Client
from django.urls import reverse
from django.utils import timezone

from fleetui.activity.models import Operation, OperationStatus

HX = {"HX-Request": "true"}


def _op(fleet: Any, **fields: Any) -> Operation:
    vm = fleet.vms["running"]
    return Operation.objects.create(kind="vm.stop", node=vm.node, node_name=vm.node.name, vm=vm,
                                    vm_name=vm.name, username="operator1", **fields)


def test_it_keeps_polling_while_pending(as_role: Callable[[str], Client], fleet: Any) -> None:
    op = _op(fleet)
    client = as_role("viewer")
    partial = client.get(reverse("operation-detail", args=[op.pk]), headers=HX)
    assert partial.status_code == 200 and b"<html" not in partial.content
    html = partial.content.decode()
    assert 'hx-trigger="every 1s"' in html and "Waiting for a worker" in html and "Stop VM" in html
    assert "HX-Request" in partial["Vary"]
    op.status = OperationStatus.RUNNING
    op.save()
    assert b"Running on the node" in client.get(reverse("operation-detail", args=[op.pk]), headers=HX).content


def test_it_stops_polling_with_286_once_settled(as_role: Callable[[str], Client], fleet: Any) -> None:
    now = timezone.now()
    op = _op(fleet, status=OperationStatus.FAILED, started_at=now, finished_at=now,
             error="The node refused: at most 2 VMs can run at once.")
    client = as_role("viewer")
    partial = client.get(reverse("operation-detail", args=[op.pk]), headers=HX)
    assert partial.status_code == 286
    html = partial.content.decode()
    assert "hx-trigger" not in html and "at most 2 VMs can run at once." in html
    assert set(json.loads(partial["HX-Trigger"])) == {"vm-changed", "tasks-changed"}
    page = client.get(reverse("operation-detail", args=[op.pk]))
    assert page.status_code == 200 and b"<html" in page.content and b"operator1" in page.content


def test_it_shows_the_result_of_a_success(as_role: Callable[[str], Client], fleet: Any) -> None:
    now = timezone.now()
    op = _op(fleet, status=OperationStatus.SUCCEEDED, started_at=now, finished_at=now, result={"message": "ok"})
    html = as_role("viewer").get(reverse("operation-detail", args=[op.pk]), headers=HX).content.decode()
    assert "Succeeded" in html and "Done in 0.0 s: ok." in html


def test_it_404s_an_unknown_operation(as_role: Callable[[str], Client], db: Any) -> None:
    url = reverse("operation-detail", args=["00000000-0000-0000-0000-000000000000"])
    assert as_role("viewer").get(url).status_code == 404
    assert as_role("viewer").get("/operations/not-a-uuid/").status_code == 404
