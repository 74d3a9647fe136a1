"""Each node fault during a poll: a defined node state in plain words, no exception, every page 200;
a node that keeps failing is backed off, and the pages say so."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape
from fault_cases import FAULTS, POLL_ERRORS
from fleetsim import SimFleet

from fleetui.nodes.models import Health, Node
from fleetui.nodes.services import BREAKER_THRESHOLD, node_poll
from fleetui.vms.models import VM

pytestmark = pytest.mark.django_db


def page_urls(node: Node, vm: VM) -> dict[str, str]:
    return {
        "fleet overview": reverse("fleet-overview"),
        "node list": reverse("node-list"),
        "node detail": reverse("node-detail", args=[node.pk]),
        "VM list": reverse("vm-list"),
        "VM detail": reverse("vm-detail", args=[vm.pk]),
        "tasks": reverse("task-list"),
        "activity": reverse("activity"),
    }


def assert_pages_answer(client: Client, node: Node, vm: VM, *, must_show: str = "") -> None:
    for name, url in page_urls(node, vm).items():
        response = client.get(url)
        assert response.status_code == 200, f"{name} answered {response.status_code}"
        if must_show and name == "node detail":
            assert escape(must_show) in response.content.decode(), f"the node page does not show {must_show!r}"


@pytest.mark.parametrize("fault", FAULTS)
def test_it_records_each_poll_fault_in_plain_words_and_pages_still_answer(
    fleet: SimFleet, register_sim: Callable[..., Node], apply_fault: Callable[..., None], viewer_client: Client,
    caplog: pytest.LogCaptureFixture, fault: str,
) -> None:
    sim = fleet.nodes[1]
    nodes = [register_sim(s) for s in fleet.nodes]
    node = nodes[1]
    assert node_poll(node_id=node.pk).ok
    vms_before = set(VM.objects.filter(node=node, gone_at__isnull=True).values_list("remote_id", "state"))
    vm = VM.objects.filter(node=node).first()
    assert vm is not None

    apply_fault(sim, node, fault)
    with caplog.at_level(logging.WARNING):
        outcome = node_poll(node_id=node.pk)  # never raises: that is part of the promise

    assert not outcome.ok and outcome.error
    node.refresh_from_db()
    assert node.last_error.startswith(POLL_ERRORS[fault]), node.last_error
    assert node.last_error_at is not None and node.consecutive_failures == 1
    assert node.health() == Health.STALE  # seen recently, failing now
    assert sim.api_token not in node.last_error
    # What was seen before is kept, not thrown away or half-overwritten.
    assert set(VM.objects.filter(node=node, gone_at__isnull=True).values_list("remote_id", "state")) == vms_before
    # A node fault is not an error of ours: nothing logged as an unexpected exception.
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], [r.getMessage() for r in caplog.records]
    # The other nodes are polled as usual.
    assert node_poll(node_id=nodes[2].pk).ok

    assert_pages_answer(viewer_client, node, vm, must_show=node.last_error[:40])


@pytest.mark.parametrize("fault", ["down", "hang", "http_503"])
def test_a_node_that_keeps_failing_is_backed_off_and_the_pages_say_so(
    fleet: SimFleet, register_sim: Callable[..., Node], apply_fault: Callable[..., None], viewer_client: Client,
    fault: str,
) -> None:
    sim = fleet.nodes[2]
    node = register_sim(sim)
    assert node_poll(node_id=node.pk).ok
    vm = VM.objects.filter(node=node).first()
    apply_fault(sim, node, fault)
    for _ in range(BREAKER_THRESHOLD):
        node_poll(node_id=node.pk, scheduled=True)
    node.refresh_from_db()
    assert node.circuit_open

    # Circuit open: scheduled polls make no call to the node at all.
    calls_before = len(sim.received)
    skipped = node_poll(node_id=node.pk, scheduled=True)
    assert skipped.skipped == "backed off after repeated failures"
    assert len(sim.received) == calls_before

    # The pages say so: the node card and detail show "backing off" and the plain error.
    detail = viewer_client.get(reverse("node-detail", args=[node.pk])).content.decode()
    assert "backing off" in detail and escape(node.last_error[:40]) in detail
    assert "backing off" in viewer_client.get(reverse("node-list")).content.decode()
    assert_pages_answer(viewer_client, node, vm)

    # The probe: once the backoff runs out and the node answers, one poll closes the circuit.
    sim.clear_faults()
    Node.objects.filter(pk=node.pk).update(backoff_until=timezone.now() - timedelta(seconds=1), port=sim.port)
    assert node_poll(node_id=node.pk, scheduled=True).ok
    node.refresh_from_db()
    assert not node.circuit_open and node.consecutive_failures == 0 and node.last_error == ""
    assert "backing off" not in viewer_client.get(reverse("node-detail", args=[node.pk])).content.decode()
