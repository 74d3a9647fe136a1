"""Fixtures for the page tests: a user per role, and fleet rows built directly with the ORM
(no node needed: pages only read the database)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import Group, User
from django.utils import timezone

from fleetui.core.crypto import encrypt
from fleetui.images.models import IPSW, NodeTask, OCIImage
from fleetui.nodes.models import Node, NodeStatsSample
from fleetui.vms.models import VM, Snapshot

ROLES = ("viewer", "operator", "admin")
# Who may do what: the lowest role each kind of endpoint needs.
PASSWORD = "x-pass-123"
TOKEN = "csk_web_test_token_0123456789abcdef"


@pytest.fixture(autouse=True)
def _web_settings(settings: Any) -> None:
    # Test users only: PBKDF2's deliberate slowness would dominate these tests' runtime.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    # The rows below are "seen 3 s ago": pin the interval health is derived from, whatever the environment says.
    settings.POLL_INTERVAL = 10


@pytest.fixture()
def users(db: Any) -> dict[str, User]:
    # The root conftest's users, with a password: tests/web also signs in through the login form.
    # `as_role` is the root conftest's, logging in these users.
    made = {"none": User.objects.create_user("nobody", password=PASSWORD)}
    for role in ROLES:
        user = User.objects.create_user(f"{role}1", password=PASSWORD)
        user.groups.add(Group.objects.get_or_create(name=role)[0])  # a flush may have dropped them
        made[role] = user
    return made


def make_node(name: str = "mac-01", *, online: bool = True, read_only: bool = False, samples: int = 5,
              **fields: Any) -> Node:
    now = timezone.now()
    values: dict[str, Any] = {
        "name": name,
        "host": "10.0.0.1",
        "port": 9473,
        "api_token_enc": encrypt(TOKEN),
        "api_token_prefix": TOKEN[:12],
        "token_permission": Node.Permission.READ_ONLY if read_only else Node.Permission.FULL_ACCESS,
        "role": Node.Role.WORKER,
        "machine_model": "Mac16,1",
        "os_version": "15.3",
        "cpu_cores": 12,
        "total_memory_gb": 64,
        "cpu_usage_percent": 37.5,
        "memory_used_gb": 20.0,
        "memory_total_gb": 64.0,
        "disk_used_gb": 400.0,
        "disk_total_gb": 1000.0,
        "running_vm_count": 1,
        "total_vm_count": 2,
        "stats_at": now - timedelta(seconds=3),
        "last_poll_at": now - timedelta(seconds=3),
        "last_success_at": now - timedelta(seconds=3) if online else now - timedelta(hours=1),
        "last_error": "" if online else "connection refused",
        "last_error_at": None if online else now - timedelta(seconds=5),
    }
    values.update(fields)
    node = Node.objects.create(**values)
    NodeStatsSample.objects.bulk_create(
        NodeStatsSample(
            node=node, at=now - timedelta(seconds=10 * (samples - i)), cpu_usage_percent=10.0 + 5 * i,
            memory_used_gb=20.0, memory_total_gb=64.0, disk_used_gb=400.0, disk_total_gb=1000.0,
            running_vm_count=1, total_vm_count=2,
        )
        for i in range(samples)
    )
    return node


def make_vm(node: Node, name: str, state: str = "stopped", **fields: Any) -> VM:
    now = timezone.now()
    values: dict[str, Any] = {
        "node": node, "remote_id": f"{node.name}-{name}", "name": name, "state": state, "cpu_count": 4,
        "memory_mb": 8192, "disk_size_gb": 64, "os_version": "15.3", "last_seen_at": now, "changed_at": now,
    }
    values.update(fields)
    return VM.objects.create(**values)


@dataclass
class Fleet:
    nodes: list[Node] = field(default_factory=list)
    vms: dict[str, VM] = field(default_factory=dict)
    snapshot: Snapshot | None = None
    task: NodeTask | None = None


@pytest.fixture()
def fleet(db: Any) -> Fleet:
    """Two online nodes with VMs in every settled state, a snapshot, a task and images."""
    now = timezone.now()
    n1 = make_node("mac-01", role=Node.Role.MANAGER)
    n2 = make_node("mac-02")
    result = Fleet(nodes=[n1, n2])
    for node, name, state in [
        (n1, "build-stopped", "stopped"),
        (n1, "build-running", "running"),
        (n2, "ci-paused", "paused"),
        (n2, "ci-starting", "starting"),
    ]:
        result.vms[state] = make_vm(node, name, state)
    result.snapshot = Snapshot.objects.create(
        vm=result.vms["stopped"], remote_id="snap-1", name="before-update", description="clean install",
        created_at=now - timedelta(days=1), size_bytes=12_000_000_000, seen_at=now,
    )
    result.task = NodeTask.objects.create(
        node=n1, remote_id="task-1", type="pullImage", title="Pull ghcr.io/acme/base:15", status="running",
        progress=42, started_at=now - timedelta(seconds=30), last_seen_at=now,
    )
    OCIImage.objects.create(node=n1, reference="ghcr.io/acme/base:15", size_bytes=30_000_000_000, seen_at=now)
    IPSW.objects.create(node=n2, path="/ipsw/UniversalMac_15.3.ipsw", name="macOS 15.3", version="15.3",
                        size_bytes=15_000_000_000, seen_at=now)
    return result


@pytest.fixture()
def node_factory(db: Any) -> Callable[..., Node]:
    return make_node


@pytest.fixture()
def vm_factory(db: Any) -> Callable[..., VM]:
    return make_vm
