"""Fixtures for the provisioning, console and catalog tests (the same file sits in each folder).

- users / as_role: a user per role, and the test client logged in as one ("anonymous": logged out).
- make_node / make_vm: rows built with the ORM, for page tests (pages never call a node).
- sim_node: a fleetsim node (fast transitions and tasks) registered as a Node and polled once, so
  its VMs, images, IPSWs and capacity are in the database as the pollers would leave them.
- run_op: record an Operation with operation_create and run it the way a worker does
  (operation_run: claim, handler over real HTTP to fleetsim, outcome, re-poll).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from django.contrib.auth.models import Group, User
from django.test import Client
from django.utils import timezone
from fleetsim import SimFleet

from fleetui.activity.models import Operation
from fleetui.activity.services import operation_create, operation_run
from fleetui.core.crypto import encrypt
from fleetui.nodes.models import Node
from fleetui.nodes.services import node_poll
from fleetui.vms.models import VM

ROLES = ("viewer", "operator", "admin")
TOKEN = "csk_provisioning_test_token_0123456789"


@pytest.fixture()
def users(db: Any) -> dict[str, User]:
    # No passwords: the tests log in with force_login, and hashing costs a second per user.
    made = {"none": User.objects.create_user("nobody")}
    for role in ROLES:
        user = User.objects.create_user(f"{role}1")
        # get_or_create: a transactional test before this one may have flushed the migration's groups.
        user.groups.add(Group.objects.get_or_create(name=role)[0])
        made[role] = user
    return made


@pytest.fixture()
def as_role(client: Client, users: dict[str, User]) -> Callable[[str], Client]:
    def login(role: str) -> Client:
        client.logout()
        if role != "anonymous":
            client.force_login(users[role])
        return client

    return login


def make_node(name: str = "mac-01", *, read_only: bool = False, **fields: Any) -> Node:
    now = timezone.now()
    values: dict[str, Any] = {
        "name": name, "host": "10.0.0.1", "port": 9473, "api_token_enc": encrypt(TOKEN),
        "api_token_prefix": TOKEN[:12],
        "token_permission": Node.Permission.READ_ONLY if read_only else Node.Permission.FULL_ACCESS,
        "role": Node.Role.WORKER, "cpu_cores": 12, "total_memory_gb": 64, "disk_total_gb": 1000.0,
        "last_poll_at": now, "last_success_at": now,
    }
    values.update(fields)
    return Node.objects.create(**values)


def make_vm(node: Node, name: str, state: str = "stopped", **fields: Any) -> VM:
    now = timezone.now()
    values: dict[str, Any] = {
        "node": node, "remote_id": f"{node.name}-{name}", "name": name, "state": state, "cpu_count": 4,
        "memory_mb": 8192, "disk_size_gb": 64, "last_seen_at": now, "changed_at": now,
    }
    values.update(fields)
    return VM.objects.create(**values)


@pytest.fixture()
def node_factory(db: Any) -> Callable[..., Node]:
    return make_node


@pytest.fixture()
def vm_factory(db: Any) -> Callable[..., VM]:
    return make_vm


@dataclass
class SimNodeRow:
    sim: Any  # fleetsim SimNode
    node: Node

    def vm(self, *, state: str | None = None) -> VM:
        qs = VM.objects.filter(node=self.node, gone_at__isnull=True).order_by("name")
        if state:
            qs = qs.filter(state=state)
        vm = qs.first()
        assert vm is not None, f"no {state or ''} VM on {self.node.name}"
        return vm

    def poll(self) -> None:
        outcome = node_poll(node_id=self.node.pk, force=True)
        assert outcome.ok, outcome.error
        self.node.refresh_from_db()


@pytest.fixture()
def sim_node(db: Any, sim_fleet: Callable[..., SimFleet]) -> Iterator[SimNodeRow]:
    fleet = sim_fleet(nodes=1, vms_per_node=3, seed=7, transition_seconds=0.1, task_seconds=0.4)
    sim = fleet.nodes[0]
    node = Node.objects.create(
        name=sim.name, host=sim.host, port=sim.port, api_token_enc=encrypt(sim.api_token),
        api_token_prefix=sim.api_token[:12], token_permission=Node.Permission.FULL_ACCESS, role=sim.role,
        remote_node_id=sim.node_id,
    )
    row = SimNodeRow(sim=sim, node=node)
    row.poll()
    yield row


@pytest.fixture()
def run_op(django_capture_on_commit_callbacks: Any) -> Callable[..., Operation]:
    """run_op(kind, user=..., node=..., vm=..., params=..., secrets=...) -> the finished Operation."""

    def run(kind: str, *, user: Any, node: Node, vm: VM | None = None, params: dict | None = None,
            secrets: dict[str, str] | None = None) -> Operation:
        # Not enqueued: the worker's code path runs here, in this process.
        with django_capture_on_commit_callbacks(execute=False):
            op = operation_create(kind=kind, user=user, node=node, vm=vm, params=params, secrets=secrets)
        assert operation_run(operation_id=str(op.pk)) == "ran"
        op.refresh_from_db()
        return op

    return run
