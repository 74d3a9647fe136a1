"""SIGKILL the worker in the middle of an operation: nothing is lost, nothing runs twice.

The decision (see fleetui.activity.services): an operation whose worker died while the node call
was in flight is not run again, because the node may have done it (a VM started twice, a snapshot
restored twice). It ends `failed` with "Interrupted: the worker ... was lost", and the node is
re-polled so the page shows what really happened. Its task message is not lost: Redis keeps it as
unacknowledged and hands it back after the visibility timeout, and the worker that gets it settles
the operation. (The reaper in poll_fleet settles it sooner, once the heartbeat has expired.)
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import User
from fleetsim import SimFleet

from fleetui.activity.liveness import HEARTBEAT_TTL_SECONDS, operation_alive
from fleetui.activity.models import Operation, OperationStatus
from fleetui.activity.services import operation_create
from fleetui.celery import app
from fleetui.nodes.models import Node
from fleetui.nodes.services import node_poll
from fleetui.vms.models import VM, VMState

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def received(sim: Any, method: str) -> int:
    return sum(1 for _, name in list(sim.received) if name == method)


def unacked_for(r: Any, operation_id: str) -> list[bytes]:
    """Delivery tags of the unacknowledged task messages that carry this operation."""
    tags = []
    for tag, raw in r.hgetall("unacked").items():
        message = json.loads(raw)[0]
        if operation_id in json.dumps(message):
            tags.append(tag)
    return tags


def test_sigkill_mid_operation_loses_nothing_and_runs_nothing_twice(
    broker_switch: Any, start_worker: Callable[..., Any], sim_fleet: Callable[..., SimFleet],
    register_sim: Callable[..., Node], wait_for: Callable[..., Any],
) -> None:
    r = broker_switch.client()
    fleet = sim_fleet(nodes=2)
    sim = fleet.nodes[1]
    node = register_sim(sim)
    assert node_poll(node_id=node.pk).ok
    user = User.objects.create_user("kill-operator")
    vm = VM.objects.get(node=node, remote_id=next(v.id for v in sim.state.vms.values() if v.state == "stopped"))

    doomed = start_worker(queues="actions", concurrency=1, name="doomed")
    sim.set_faults(None, latency_ms=3000)  # a slow node: the StartVM call stays in flight for 3 s
    op = operation_create(kind="vm.start", user=user, node=node, vm=vm)  # queued on commit
    op_id = str(op.pk)
    wait_for(lambda: received(sim, "StartVM") == 1, timeout=20, message="the StartVM call to reach the node")
    assert Operation.objects.get(pk=op_id).status == OperationStatus.RUNNING

    doomed.kill()
    sim.clear_faults()

    # Nothing lost: the broker still holds the task, unacknowledged.
    tags = unacked_for(r, op_id)
    assert len(tags) == 1, "the task message of the operation is gone"
    # The node did get the call (it runs the start after its latency): the operation must not run again.
    wait_for(lambda: sim.state.vms[vm.remote_id].state in ("starting", "running"), timeout=10,
             message="the node to act on the call it received")
    assert Operation.objects.get(pk=op_id).status == OperationStatus.RUNNING  # nobody has settled it yet

    # The dead worker's heartbeat runs out by itself.
    wait_for(lambda: not operation_alive(op_id), timeout=HEARTBEAT_TTL_SECONDS + 3,
             message="the dead worker's heartbeat to expire")
    # Redis hands an unacknowledged task back once the visibility timeout has passed (21 min with our
    # settings). Stand-in for that wait: the delivery time in the broker's index is made that old; the
    # new worker's own restore pass (kombu's restore_visible, as in production) then requeues it.
    visibility = app.conf.broker_transport_options["visibility_timeout"]
    r.zadd("unacked_index", {tag: time.time() - visibility - 5 for tag in tags})

    survivor = start_worker(queues="actions", concurrency=1, name="survivor")
    wait_for(lambda: Operation.objects.get(pk=op_id).status == OperationStatus.FAILED, timeout=20,
             message="the redelivered task to settle the operation")

    settled = Operation.objects.get(pk=op_id)
    assert settled.error.startswith("Interrupted: the worker running this operation was lost")
    assert settled.finished_at is not None
    assert received(sim, "StartVM") == 1  # never twice
    # The re-poll after it shows what the node really did.
    wait_for(lambda: VM.objects.get(pk=vm.pk).state in (VMState.STARTING, VMState.RUNNING), timeout=10,
             message="the re-poll to show the VM the node started")
    # And the broker holds nothing of it any more: acknowledged, not lost, not pending forever.
    wait_for(lambda: not unacked_for(r, op_id), timeout=5, message="the redelivered task to be acknowledged")
    assert r.llen("actions") == 0
    assert "'interrupted'" in survivor.log()
    time.sleep(0.5)
    assert received(sim, "StartVM") == 1
