"""Redis (broker, locks, cache, operation secrets) stops and comes back, on a redis-server of these
tests' own (the machine's shared Redis is never touched).

Decisions tested here:
- Pages never need Redis: they answer 200 while it is down, with a warning banner (a PING remembered
  for 5 s per process, fleetui.core.broker).
- An action clicked while it is down is refused at once with a clear message and nothing recorded;
  if the queue dies between that check and the enqueue, the Operation is marked failed in plain words
  (never re-queued later: a click replayed minutes afterwards would surprise whoever made it).
- Workers reconnect by themselves; an operation in flight during the outage finishes once.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import Group, User
from django.test import Client
from django.urls import reverse
from fleetsim import SimFleet

from fleetui.activity.models import Operation, OperationStatus
from fleetui.activity.services import operation_create, operation_enqueue
from fleetui.core import broker
from fleetui.nodes.models import Node
from fleetui.nodes.services import node_poll
from fleetui.nodes.tasks import poll_node
from fleetui.vms.models import VM

BANNER = "The task queue (Redis) cannot be reached: pages show what the workers last saw"
REFUSED = "The task queue (Redis) cannot be reached, so nothing can be sent to the node now."


def received(sim: Any, method: str) -> int:
    return sum(1 for _, name in list(sim.received) if name == method)


def forget_broker_check() -> None:
    # Stands in for the 5 s a page trusts its last PING, so the test need not sleep through it.
    broker._last.clear()


@pytest.fixture()
def redis_everywhere(broker_switch: Any, settings: Any) -> Any:
    """Broker, locks, secrets and Django's cache all on the private Redis."""
    settings.CACHES = {**settings.CACHES, "default": {**settings.CACHES["default"], "LOCATION": broker_switch.url}}
    forget_broker_check()
    yield broker_switch
    forget_broker_check()


def operator_client(client: Client) -> Client:
    user = User.objects.create_user("outage-operator")
    user.groups.add(Group.objects.get(name="operator"))
    client.force_login(user)
    return client


@pytest.mark.django_db(transaction=True)
def test_pages_answer_with_a_warning_and_actions_are_refused_while_redis_is_down(
    redis_everywhere: Any, sim_fleet: Callable[..., SimFleet], register_sim: Callable[..., Node], client: Client,
) -> None:
    fleet = sim_fleet(nodes=2)
    sim = fleet.nodes[1]
    node = register_sim(sim)
    assert node_poll(node_id=node.pk).ok
    vm = VM.objects.get(node=node, remote_id=next(v.id for v in sim.state.vms.values() if v.state == "stopped"))
    web = operator_client(client)
    other_vm = VM.objects.filter(node=node).exclude(pk=vm.pk).first()
    earlier = operation_create(kind="vm.stop", user=None, node=node, vm=other_vm)
    pages = {
        "fleet overview": reverse("fleet-overview"), "node list": reverse("node-list"),
        "node detail": reverse("node-detail", args=[node.pk]), "VM list": reverse("vm-list"),
        "VM detail": reverse("vm-detail", args=[vm.pk]), "tasks": reverse("task-list"),
        "images": reverse("image-list"), "activity": reverse("activity"),
        "operation": reverse("operation-detail", args=[earlier.pk]),
    }
    assert BANNER not in web.get(pages["fleet overview"]).content.decode()

    redis_everywhere.stop()
    forget_broker_check()
    try:
        for name, url in pages.items():
            started = time.monotonic()
            response = web.get(url)
            took = time.monotonic() - started
            assert response.status_code == 200, f"{name}: {response.status_code}"
            assert BANNER in response.content.decode(), f"{name} shows no warning"
            assert took < 2.0, f"{name} took {took:.2f} s with Redis down"

        # A click: refused at once, in plain words, nothing recorded, nothing sent.
        before = Operation.objects.count()
        response = web.post(reverse("vm-action", args=[vm.pk, "start"]), follow=True)
        assert response.status_code == 200
        assert REFUSED in response.content.decode()
        assert Operation.objects.count() == before
        # The same through HTMX: the error comes back as the partial.
        response = web.post(reverse("vm-action", args=[vm.pk, "start"]), HTTP_HX_REQUEST="true")
        assert response.status_code == 200 and REFUSED in response.content.decode()
        assert Operation.objects.count() == before

        # The queue dying between that check and the enqueue: the operation fails in plain words.
        raced = Operation.objects.create(kind="vm.start", node=node, node_name=node.name, vm=vm, vm_name=vm.name,
                                         vm_remote_id=vm.remote_id)
        started = time.monotonic()
        assert operation_enqueue(operation_id=raced.pk) is False
        assert time.monotonic() - started < 5
        raced.refresh_from_db()
        assert raced.status == OperationStatus.FAILED
        assert raced.error.startswith("Could not queue the operation: the task queue (Redis) is unreachable")
        assert received(sim, "StartVM") == 0
    finally:
        redis_everywhere.start()

    forget_broker_check()
    assert BANNER not in web.get(pages["fleet overview"]).content.decode()
    response = web.post(reverse("vm-action", args=[vm.pk, "start"]), HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    assert Operation.objects.filter(kind="vm.start", status=OperationStatus.PENDING, vm=vm).count() == 1


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_workers_recover_by_themselves_when_redis_comes_back(
    redis_everywhere: Any, start_worker: Callable[..., Any], sim_fleet: Callable[..., SimFleet],
    register_sim: Callable[..., Node], wait_for: Callable[..., Any],
) -> None:
    fleet = sim_fleet(nodes=2)
    sim = fleet.nodes[1]
    node = register_sim(sim)
    worker = start_worker(queues="polls,actions", concurrency=2, name="outage")
    wait_for(lambda: Node.objects.get(pk=node.pk).last_success_at, timeout=15, message="the first poll")
    vm = VM.objects.get(node=node, remote_id=next(v.id for v in sim.state.vms.values() if v.state == "stopped"))
    user = User.objects.create_user("outage-op")

    # An operation in flight (slow node) when Redis goes away.
    sim.set_faults(None, latency_ms=2500)
    op = operation_create(kind="vm.start", user=user, node=node, vm=vm)
    wait_for(lambda: received(sim, "StartVM") == 1, timeout=15, message="the StartVM call")
    redis_everywhere.stop()
    time.sleep(1.0)
    sim.clear_faults()
    redis_everywhere.start()  # empty: no persistence, so whatever was queued is gone

    # It finished once, recorded in the database (which never went away).
    wait_for(lambda: Operation.objects.get(pk=op.pk).status == OperationStatus.SUCCEEDED, timeout=20,
             message="the in-flight operation to finish")
    assert received(sim, "StartVM") == 1

    # The worker reconnected by itself: new polls and actions run.
    seen = Node.objects.get(pk=node.pk).last_success_at
    poll_node.delay(node.pk)
    wait_for(lambda: Node.objects.get(pk=node.pk).last_success_at > seen, timeout=30,
             message="a poll after Redis came back")
    other = VM.objects.get(node=node, remote_id=next(
        v.id for v in sim.state.vms.values() if v.state == "stopped" and v.id != vm.remote_id))
    again = operation_create(kind="snapshot.create", user=user, node=node, vm=other,
                             params={"name": "after-outage"})
    wait_for(lambda: Operation.objects.get(pk=again.pk).status == OperationStatus.SUCCEEDED, timeout=20,
             message="an action after Redis came back")
    assert received(sim, "StartVM") == 1
    assert worker.alive(), "the worker had to be restarted"
    time.sleep(0.5)
    assert received(sim, "CreateSnapshot") == 1
