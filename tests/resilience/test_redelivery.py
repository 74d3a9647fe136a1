"""Redelivered tasks: an action reaches the node once, whatever the broker delivers twice; a poll
delivered twice is harmless; what a lost worker leaves behind is settled by the reaper.

Tests that commit (transaction=True) use `broker_switch`: what operation_create queues on commit goes
to a broker no worker reads, so the deliveries are exactly the ones each test makes.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import close_old_connections
from django.utils import timezone
from fleetsim import SimFleet

from fleetui.activity.liveness import HEARTBEAT_TTL_SECONDS, operation_alive
from fleetui.activity.models import Operation, OperationStatus
from fleetui.activity.secrets import SECRETS_TTL_SECONDS
from fleetui.activity.services import operation_create, operations_reap
from fleetui.activity.tasks import run_operation
from fleetui.nodes.models import Node
from fleetui.nodes.services import node_poll
from fleetui.nodes.tasks import poll_node
from fleetui.vms.models import VM


def received(sim: Any, method: str) -> int:
    return sum(1 for _, name in list(sim.received) if name == method)


def stopped_vm(node: Node, sim: Any) -> VM:
    remote = next(v.id for v in sim.state.vms.values() if v.state == "stopped")
    return VM.objects.get(node=node, remote_id=remote)


@pytest.fixture()
def setup(db: Any, sim_fleet: Callable[..., SimFleet], register_sim: Callable[..., Node]) -> tuple[Any, Node, User]:
    fleet = sim_fleet(nodes=2)
    sim = fleet.nodes[1]
    node = register_sim(sim)
    assert node_poll(node_id=node.pk).ok
    return sim, node, User.objects.create_user("redeliver-op")


@pytest.mark.django_db
def test_an_action_delivered_twice_reaches_the_node_once(setup: tuple[Any, Node, User]) -> None:
    sim, node, user = setup
    op = operation_create(kind="vm.start", user=user, node=node, vm=stopped_vm(node, sim))
    # The task itself (what the worker calls), twice for one id: a redelivery after it finished.
    assert run_operation(str(op.pk)) == "ran"
    assert run_operation(str(op.pk)) == "skipped"
    assert received(sim, "StartVM") == 1
    assert Operation.objects.get(pk=op.pk).status == OperationStatus.SUCCEEDED


@pytest.mark.django_db(transaction=True)
def test_a_duplicate_delivered_while_the_first_still_runs_leaves_it_alone(
    broker_switch: Any, setup: tuple[Any, Node, User],
) -> None:
    """Redis hands an unacknowledged task back when the worker's connection drops, while the task
    runs on: the duplicate must neither call the node nor fail the running operation."""
    sim, node, user = setup
    op = operation_create(kind="vm.start", user=user, node=node, vm=stopped_vm(node, sim))
    sim.set_faults(None, latency_ms=1500)  # a slow node: the first delivery is mid-call for 1.5 s
    outcomes: dict[str, str] = {}

    def first() -> None:
        try:
            outcomes["first"] = run_operation(str(op.pk))
        finally:
            close_old_connections()

    thread = threading.Thread(target=first)
    thread.start()
    deadline = time.monotonic() + 5
    while received(sim, "StartVM") == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert received(sim, "StartVM") == 1
    assert operation_alive(op.pk)

    outcomes["duplicate"] = run_operation(str(op.pk))
    sim.clear_faults()  # the call in flight still takes its 1.5 s; the re-poll after it need not
    thread.join(timeout=15)

    assert outcomes == {"first": "ran", "duplicate": "running"}
    assert received(sim, "StartVM") == 1
    done = Operation.objects.get(pk=op.pk)
    assert done.status == OperationStatus.SUCCEEDED, done.error  # its real outcome, not "interrupted"
    assert not operation_alive(op.pk)  # the heartbeat ends with the operation


@pytest.mark.django_db(transaction=True)
def test_two_deliveries_at_the_same_moment_run_it_once(broker_switch: Any, setup: tuple[Any, Node, User]) -> None:
    sim, node, user = setup
    op = operation_create(kind="vm.start", user=user, node=node, vm=stopped_vm(node, sim))
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def deliver() -> None:
        try:
            barrier.wait()
            outcomes.append(run_operation(str(op.pk)))
        finally:
            close_old_connections()

    threads = [threading.Thread(target=deliver) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=20)
    assert sorted(outcomes) == ["ran", "running"] or sorted(outcomes) == ["ran", "skipped"], outcomes
    assert received(sim, "StartVM") == 1
    assert Operation.objects.get(pk=op.pk).status == OperationStatus.SUCCEEDED


@pytest.mark.django_db
def test_the_reaper_fails_an_operation_whose_worker_is_gone_and_never_reruns_it(
    setup: tuple[Any, Node, User],
) -> None:
    sim, node, user = setup
    op = operation_create(kind="vm.start", user=user, node=node, vm=stopped_vm(node, sim))
    # What a worker killed mid-call leaves: claimed, no outcome, no heartbeat any more.
    started = timezone.now() - timedelta(seconds=HEARTBEAT_TTL_SECONDS + 1)
    Operation.objects.filter(pk=op.pk).update(status=OperationStatus.RUNNING, started_at=started)
    # One that started a moment ago with a live heartbeat is left alone.
    busy = operation_create(kind="vm.stop", user=user, node=node, vm=stopped_vm(node, sim))
    Operation.objects.filter(pk=busy.pk).update(status=OperationStatus.RUNNING, started_at=started)
    from fleetui.activity.liveness import _beat, _key

    _beat(_key(busy.pk))

    counts = operations_reap()

    assert counts["interrupted"] == 1
    lost = Operation.objects.get(pk=op.pk)
    assert lost.status == OperationStatus.FAILED
    assert lost.error.startswith("Interrupted: the worker running this operation was lost")
    assert Operation.objects.get(pk=busy.pk).status == OperationStatus.RUNNING
    assert received(sim, "StartVM") == 0  # never re-run
    # The task, delivered again later, finds it settled.
    assert run_operation(str(op.pk)) == "skipped"
    assert received(sim, "StartVM") == 0


@pytest.mark.django_db
def test_the_reaper_fails_an_operation_the_queue_lost(setup: tuple[Any, Node, User]) -> None:
    sim, node, user = setup
    op = operation_create(kind="vm.start", user=user, node=node, vm=stopped_vm(node, sim))
    fresh = operation_create(kind="vm.start", user=user, node=node, vm=stopped_vm(node, sim))
    Operation.objects.filter(pk=op.pk).update(created_at=timezone.now() - timedelta(seconds=SECRETS_TTL_SECONDS + 5))

    assert operations_reap()["stale_pending"] == 1
    lost = Operation.objects.get(pk=op.pk)
    assert lost.status == OperationStatus.FAILED and lost.error.startswith("Never started")
    assert Operation.objects.get(pk=fresh.pk).status == OperationStatus.PENDING
    assert run_operation(str(op.pk)) == "skipped"  # its message, if it turns up, changes nothing
    assert received(sim, "StartVM") == 0


@pytest.mark.django_db
def test_a_poll_delivered_twice_writes_nothing_new(setup: tuple[Any, Node, User]) -> None:
    sim, node, _ = setup
    poll_node(node.pk)  # the task body, as a worker runs it
    vm_rows = VM.objects.filter(node=node).count()
    changed = list(VM.objects.filter(node=node).values_list("remote_id", "changed_at"))
    result = poll_node(node.pk)
    assert result["ok"] and result["writes"]["vms_created"] == 0 and result["writes"]["vms_updated"] == 0
    assert VM.objects.filter(node=node).count() == vm_rows == len(sim.state.vms)
    assert list(VM.objects.filter(node=node).values_list("remote_id", "changed_at")) == changed


@pytest.mark.django_db
def test_a_poll_failing_on_the_node_is_not_retried(setup: tuple[Any, Node, User]) -> None:
    sim, node, _ = setup
    sim.set_faults("http_500")
    # Eagerly, through Celery's own task machinery: a Retry would show as state RETRY.
    result = poll_node.apply(args=[node.pk])
    assert result.state == "SUCCESS"
    assert result.result["error"].startswith("the node answered HTTP 500")
