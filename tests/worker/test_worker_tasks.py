"""Celery tasks run by a real worker (`celery -A fleetui worker -Q polls,actions -P threads`, a
separate process) on the real Redis broker, against fleetsim over HTTP and the test database.

The data must be committed for the worker to see it: every test here is transactional.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.utils import timezone
from fleetsim import SimFleet

from fleetui.activity.models import Operation, OperationStatus
from fleetui.activity.secrets import _key
from fleetui.activity.services import operation_create
from fleetui.images.models import NodeTask
from fleetui.nodes.locks import redis_connection
from fleetui.nodes.models import Health, Node
from fleetui.nodes.tasks import poll_fleet, poll_node
from fleetui.vms.models import VM, VMState

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


@pytest.fixture()
def fleet(sim_fleet: Callable[..., SimFleet]) -> SimFleet:
    return sim_fleet()


@pytest.fixture()
def nodes(celery_worker: Any, fleet: SimFleet, register_sim: Callable[..., Node],
          wait_for: Callable[..., Any]) -> list[Node]:
    """The fleet registered; registration queues a first poll, which the worker runs."""
    registered = [register_sim(sim) for sim in fleet.nodes]
    ids = [n.pk for n in registered]
    wait_for(lambda: Node.objects.filter(pk__in=ids, last_success_at__isnull=False).count() == len(ids),
             timeout=15, message="the worker's first poll of every node")
    return list(Node.objects.filter(pk__in=ids).order_by("pk"))


def _finished(op: Operation, wait_for: Callable[..., Any], timeout: float = 15) -> Operation:
    return wait_for(lambda: Operation.objects.filter(pk=op.pk, status__in=(OperationStatus.SUCCEEDED,
                                                                            OperationStatus.FAILED)).first(),
                    timeout=timeout, message=f"operation {op.kind} to finish")


def test_the_worker_runs_an_operation_and_re_polls_the_node(
    fleet: SimFleet, nodes: list[Node], wait_for: Callable[..., Any]
) -> None:
    user = User.objects.create(username="olga")
    node, sim = nodes[1], fleet.nodes[1]
    remote = next(v for v in sim.state.vms.values() if v.state == "stopped")
    vm = VM.objects.get(node=node, remote_id=remote.id)
    polled_before = Node.objects.get(pk=node.pk).last_poll_at

    op = operation_create(kind="vm.start", user=user, node=node, vm=vm)
    op = _finished(op, wait_for)

    assert op.status == OperationStatus.SUCCEEDED, op.error
    # When the operation shows finished, the node's confirmed state is already stored.
    assert VM.objects.get(pk=vm.pk).state in (VMState.STARTING, VMState.RUNNING)
    assert Node.objects.get(pk=node.pk).last_poll_at > polled_before
    assert sum(1 for _, m in sim.received if m == "StartVM") == 1
    # Follow-up polls keep going while the VM is starting: it shows running without anyone asking.
    wait_for(lambda: VM.objects.get(pk=vm.pk).state == VMState.RUNNING, timeout=10, message="the VM running")


def test_the_worker_records_the_nodes_refusal(fleet: SimFleet, nodes: list[Node], wait_for: Callable[..., Any]) -> None:
    node, sim = nodes[2], fleet.nodes[2]
    alive = [v for v in sim.state.vms.values() if v.state in ("running", "starting", "paused")]
    stopped = [v for v in sim.state.vms.values() if v.state == "stopped"]
    ops = []
    for remote in stopped[: 3 - len(alive)]:
        vm = VM.objects.get(node=node, remote_id=remote.id)
        ops.append(operation_create(kind="vm.start", user=None, node=node, vm=vm))
    finished = [_finished(op, wait_for) for op in ops]
    failed = [op for op in finished if op.status == OperationStatus.FAILED]
    assert len(failed) == 1
    assert "macOS allows at most 2 macOS VMs" in failed[0].error


def test_an_image_pull_on_the_worker_consumes_its_secret_and_shows_the_task(
    fleet: SimFleet, nodes: list[Node], wait_for: Callable[..., Any]
) -> None:
    node = nodes[1]
    op = operation_create(kind="image.pull", user=None, node=node, params={"reference": "ghcr.io/acme/base:15"},
                          secrets={"username": "robot", "password": "registry-pass-123"})
    op = _finished(op, wait_for)
    assert op.status == OperationStatus.SUCCEEDED, op.error
    assert redis_connection().get(_key(op.id)) is None
    assert NodeTask.objects.filter(node=node, type="oci_pull").exists()


def test_poll_node_on_the_worker_records_a_node_going_down_and_coming_back(
    fleet: SimFleet, nodes: list[Node], wait_for: Callable[..., Any]
) -> None:
    node, sim = nodes[2], fleet.nodes[2]
    sim.set_faults("down")
    asked = timezone.now()
    poll_node.delay(node.pk)
    down = wait_for(lambda: Node.objects.filter(pk=node.pk, last_error_at__gt=asked).first(), timeout=10,
                    message="the failed poll")
    assert down.last_error == "cannot reach the node: connection refused"
    assert down.health() == Health.STALE

    sim.clear_faults()
    asked = timezone.now()
    poll_node.delay(node.pk)
    up = wait_for(lambda: Node.objects.filter(pk=node.pk, last_success_at__gt=asked).first(), timeout=10,
                  message="the good poll")
    assert up.health() == Health.ONLINE and up.consecutive_failures == 0 and up.last_error == ""


def test_poll_fleet_fans_out_one_poll_per_node_and_skips_backed_off_ones(
    nodes: list[Node], wait_for: Callable[..., Any]
) -> None:
    backed_off = nodes[2]
    Node.objects.filter(pk=backed_off.pk).update(backoff_until=timezone.now() + timedelta(minutes=5))
    asked = timezone.now()

    poll_fleet.delay()

    wait_for(lambda: Node.objects.filter(pk__in=[nodes[0].pk, nodes[1].pk], last_poll_at__gt=asked).count() == 2,
             timeout=10, message="both nodes polled")
    assert Node.objects.get(pk=backed_off.pk).last_poll_at <= asked


def test_manage_py_poll_waits_for_the_workers_and_prints_a_line_per_node(nodes: list[Node]) -> None:
    out = io.StringIO()
    call_command("poll", stdout=out)
    lines = out.getvalue().strip().splitlines()
    assert len(lines) == 3
    assert sorted(line.split()[0] for line in lines) == sorted(node.name for node in nodes)
    for line in lines:
        assert " online " in line and "4 VMs" in line, line
