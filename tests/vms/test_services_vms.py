"""VM writes: the poller's changed-only upsert, and per-VM details fetched from fleetsim."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from ciderstack import FleetClient
from ciderstack.types import VM as RemoteVM
from django.utils import timezone
from fleetsim import SimFleet

from fleetui.nodes.models import Node
from fleetui.nodes.services import node_poll
from fleetui.vms.models import VM, Snapshot, VMState
from fleetui.vms.services import vm_refresh_details, vms_record

pytestmark = pytest.mark.django_db


def _remote(vm_id: str, name: str, state: str = "stopped", **extra: Any) -> RemoteVM:
    data = {"id": vm_id, "name": name, "state": state, "cpuCount": 4, "memoryMB": 8192, "diskSizeGB": 64}
    data.update(extra)
    return RemoteVM.from_dict(data)


@pytest.fixture()
def node(db: Any) -> Node:
    return Node.objects.create(name="n1", host="10.0.0.1")


def test_vms_record_creates_updates_changed_rows_only_and_marks_gone(node: Node) -> None:
    t0 = timezone.now()
    counts = vms_record(node_id=node.pk, remote_vms=[_remote("A", "a"), _remote("B", "b")], now=t0)
    assert counts == {"vms_created": 2, "vms_updated": 0, "vms_gone": 0}

    t1 = t0 + timedelta(seconds=10)
    counts = vms_record(node_id=node.pk, remote_vms=[_remote("A", "a"), _remote("B", "b", "running")], now=t1)
    assert counts == {"vms_created": 0, "vms_updated": 1, "vms_gone": 0}
    a, b = VM.objects.get(remote_id="A"), VM.objects.get(remote_id="B")
    assert a.changed_at == t0 and a.last_seen_at == t0  # untouched
    assert b.state == VMState.RUNNING and b.changed_at == t1

    t2 = t1 + timedelta(seconds=10)
    assert vms_record(node_id=node.pk, remote_vms=[_remote("B", "b", "running")], now=t2)["vms_gone"] == 1
    assert VM.objects.get(remote_id="A").gone_at == t2
    # Back again: un-gone, as one update.
    t3 = t2 + timedelta(seconds=10)
    counts = vms_record(node_id=node.pk, remote_vms=[_remote("A", "a"), _remote("B", "b", "running")], now=t3)
    assert counts == {"vms_created": 0, "vms_updated": 1, "vms_gone": 0}
    assert VM.objects.get(remote_id="A").gone_at is None


def test_vms_record_makes_odd_values_fit_the_model(node: Node) -> None:
    odd = _remote("C" * 80, "x" * 400, "migrating", cpuCount=-3, memoryMB="lots", diskSizeGB=None,
                  osVersion="1" * 100, ipAddress=None)
    vms_record(node_id=node.pk, remote_vms=[odd, _remote("", "no id")], now=timezone.now())
    vm = VM.objects.get()
    assert len(vm.remote_id) == 64 and len(vm.name) == 255 and len(vm.os_version) == 64
    # The SDK reads an unreadable number as 0; a negative one does not fit and is dropped.
    assert vm.state == VMState.UNKNOWN and vm.cpu_count is None and vm.memory_mb == 0 and vm.ip_address == ""


def test_the_same_vm_id_on_two_nodes_is_two_vms(node: Node) -> None:
    other = Node.objects.create(name="n2", host="10.0.0.2")
    now = timezone.now()
    vms_record(node_id=node.pk, remote_vms=[_remote("A", "a")], now=now)
    vms_record(node_id=other.pk, remote_vms=[_remote("A", "a")], now=now)
    assert VM.objects.count() == 2
    assert vms_record(node_id=other.pk, remote_vms=[], now=now)["vms_gone"] == 1
    assert VM.objects.get(node=node).gone_at is None


def test_vm_refresh_details_stores_snapshots_and_settings(
    sim_fleet: Callable[..., SimFleet], register_sim: Callable[..., Node]
) -> None:
    sim = sim_fleet(nodes=1).nodes[0]
    node = register_sim(sim)
    node_poll(node_id=node.pk)
    remote = next(iter(sim.state.vms.values()))
    with FleetClient(sim.host, api_token=sim.api_token, port=sim.port) as client:
        first = client.create_snapshot(remote.id, "one", "first")
        client.create_snapshot(remote.id, "two")
        client.update_vm_settings(remote.id, intent="disposable", ttl_seconds=3600)
    vm = VM.objects.get(node=node, remote_id=remote.id)

    assert vm_refresh_details(vm_id=vm.pk) == ""

    vm.refresh_from_db()
    assert vm.intent == "disposable" and vm.ttl_seconds == 3600
    assert vm.expires_at is not None and vm.expires_at > timezone.now()
    assert vm.display_width == remote.display_width and vm.settings_at and vm.snapshots_at
    assert sorted(Snapshot.objects.filter(vm=vm).values_list("name", flat=True)) == ["one", "two"]
    assert Snapshot.objects.get(vm=vm, name="one").description == "first"

    with FleetClient(sim.host, api_token=sim.api_token, port=sim.port) as client:
        client.delete_snapshot(remote.id, first.id)
        client.update_vm_settings(remote.id, ttl_seconds=-1)
    assert vm_refresh_details(vm_id=vm.pk) == ""
    vm.refresh_from_db()
    assert list(Snapshot.objects.filter(vm=vm).values_list("name", flat=True)) == ["two"]
    assert vm.ttl_seconds is None and vm.expires_at is None


def test_vm_refresh_details_says_why_it_could_not(
    sim_fleet: Callable[..., SimFleet], register_sim: Callable[..., Node]
) -> None:
    sim = sim_fleet(nodes=1).nodes[0]
    node = register_sim(sim)
    node_poll(node_id=node.pk)
    vm = VM.objects.filter(node=node).first()

    sim.set_faults("down")
    assert vm_refresh_details(vm_id=vm.pk) == "cannot reach the node: connection refused"
    assert vm_refresh_details(vm_id=123456) == "the VM is no longer known"
    VM.objects.filter(pk=vm.pk).update(gone_at=timezone.now())
    assert vm_refresh_details(vm_id=vm.pk) == "the VM is no longer on its node"
    Node.objects.filter(pk=node.pk).update(backoff_until=timezone.now() + timedelta(minutes=1))
    VM.objects.filter(pk=vm.pk).update(gone_at=None)
    assert "backed off" in vm_refresh_details(vm_id=vm.pk)


def test_one_details_fetch_per_vm_at_a_time(
    sim_fleet: Callable[..., SimFleet], register_sim: Callable[..., Node]
) -> None:
    from fleetui.nodes.locks import redis_lock

    sim = sim_fleet(nodes=1).nodes[0]
    node = register_sim(sim)
    node_poll(node_id=node.pk)
    vm = VM.objects.filter(node=node).first()
    with redis_lock(f"vm-details:{vm.pk}", ttl=10) as held:
        assert held
        assert vm_refresh_details(vm_id=vm.pk, wait=0) == "the VM's details are being fetched already"
    assert not any(m == "ListSnapshots" for _, m in sim.received)
    assert vm_refresh_details(vm_id=vm.pk, wait=0) == ""


def test_vm_refresh_details_reads_the_vm_itself_and_notices_it_gone(
    sim_fleet: Callable[..., SimFleet], register_sim: Callable[..., Node]
) -> None:
    sim = sim_fleet(nodes=1, transition_seconds=0.0).nodes[0]
    node = register_sim(sim)
    node_poll(node_id=node.pk)
    vm = VM.objects.filter(node=node, state=VMState.STOPPED).first()
    assert vm is not None
    with FleetClient(sim.host, api_token=sim.api_token, port=sim.port) as client:
        client.rename_vm(vm.remote_id, "renamed-by-hand")

    assert vm_refresh_details(vm_id=vm.pk) == ""  # GetVM (via ListVMs) before the details
    vm.refresh_from_db()
    assert vm.name == "renamed-by-hand" and vm.gone_at is None

    with FleetClient(sim.host, api_token=sim.api_token, port=sim.port) as client:
        client.delete_vm(vm.remote_id)
    assert vm_refresh_details(vm_id=vm.pk) == "the VM is no longer on its node"
    vm.refresh_from_db()
    assert vm.gone_at is not None
