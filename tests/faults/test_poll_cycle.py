"""A poll cycle through the real Celery worker: one node hanging does not hold the others back."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from fleetsim import SimFleet

from fleetui.nodes.models import Node
from fleetui.nodes.tasks import poll_fleet

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def test_healthy_nodes_update_in_the_same_cycle_as_a_hanging_one(
    celery_worker: Any, fleet: SimFleet, register_sim: Callable[..., Node], wait_for: Callable[..., Any],
) -> None:
    nodes = [register_sim(sim) for sim in fleet.nodes]
    # Registration queues each node's first poll; let those land first.
    wait_for(lambda: Node.objects.filter(last_success_at__isnull=False).count() == 3, timeout=15,
             message="the first polls after registration")
    hanging, healthy = nodes[1], [nodes[0], nodes[2]]
    before = {n.pk: n.last_success_at for n in Node.objects.all()}

    fleet.nodes[1].set_faults("hang")
    started = time.monotonic()
    assert poll_fleet() == 3

    def healthy_updated() -> bool:
        return all(Node.objects.get(pk=n.pk).last_success_at > before[n.pk] for n in healthy)

    wait_for(healthy_updated, timeout=10, message="the healthy nodes' polls")
    healthy_done = time.monotonic() - started
    # The hanging node's poll is still waiting for its answer (the worker's read timeout is 2 s).
    assert Node.objects.get(pk=hanging.pk).last_error == ""

    wait_for(lambda: Node.objects.get(pk=hanging.pk).last_error, timeout=15, message="the hanging node's timeout")
    stuck = Node.objects.get(pk=hanging.pk)
    assert stuck.last_error.startswith("timed out: the node did not answer within 2 s")
    assert stuck.last_success_at == before[hanging.pk]
    for node in healthy:
        # They were written before the hanging poll gave up: same cycle, not held back by it.
        assert Node.objects.get(pk=node.pk).last_success_at < stuck.last_error_at
    assert healthy_done < 2.0, f"healthy nodes took {healthy_done:.2f} s"
