"""Polls and actions on separate queues, consumed by separate workers: long commands filling every
action slot do not hold back a single poll."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import User
from fleetsim import SimFleet

from fleetui.activity.models import Operation, OperationStatus
from fleetui.activity.services import operation_create
from fleetui.nodes.models import Node
from fleetui.nodes.tasks import poll_node
from fleetui.vms.models import VM

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

SLEEP_SECONDS = 6


def test_long_commands_filling_the_action_workers_never_starve_polls(
    broker_switch: Any, start_worker: Callable[..., Any], sim_fleet: Callable[..., SimFleet],
    register_sim: Callable[..., Node], wait_for: Callable[..., Any],
) -> None:
    fleet = sim_fleet(nodes=2)
    nodes = [register_sim(sim) for sim in fleet.nodes]  # each queues its first poll
    start_worker(queues="polls", concurrency=2, name="polls")
    start_worker(queues="actions", concurrency=1, name="actions")
    wait_for(lambda: Node.objects.filter(last_success_at__isnull=False).count() == 2, timeout=15,
             message="the first polls")
    sim = fleet.nodes[1]
    running = next(v.id for v in sim.state.vms.values() if v.state == "running")
    vm = VM.objects.get(node=nodes[1], remote_id=running)
    user = User.objects.create_user("queue-op")

    # Two long commands: one fills the only action slot, the other waits behind it.
    params = {"command": f"sleep {SLEEP_SECONDS}", "ssh_user": "", "timeout": 60}
    long_ops = [operation_create(kind="vm.exec", user=user, node=nodes[1], vm=vm, params=params) for _ in range(2)]
    wait_for(lambda: Operation.objects.get(pk=long_ops[0].pk).status == OperationStatus.RUNNING, timeout=10,
             message="the first command to start")

    for round_ in range(2):
        seen = {n.pk: Node.objects.get(pk=n.pk).last_success_at for n in nodes}
        asked = time.monotonic()
        for node in nodes:
            poll_node.delay(node.pk)
        def polled(seen: dict[int, Any] = seen) -> bool:
            return all(Node.objects.get(pk=n.pk).last_success_at > seen[n.pk] for n in nodes)

        wait_for(polled, timeout=4, message=f"polls (round {round_ + 1}) while the action worker is busy")
        assert time.monotonic() - asked < 4  # the commands run for 6 s; and see the statuses below
        # The commands are still where they were: the polls did not wait for them.
        assert Operation.objects.get(pk=long_ops[0].pk).status == OperationStatus.RUNNING
        assert Operation.objects.get(pk=long_ops[1].pk).status == OperationStatus.PENDING

    wait_for(lambda: Operation.objects.get(pk=long_ops[0].pk).status == OperationStatus.SUCCEEDED,
             timeout=SLEEP_SECONDS + 10, message="the first command to finish")
    done = Operation.objects.get(pk=long_ops[0].pk)
    assert done.result["exit_code"] == 0 and done.duration_seconds >= SLEEP_SECONDS
