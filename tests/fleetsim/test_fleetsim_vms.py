"""VM lifecycle on fleetsim, through the published 0.1.1 client and the raw wire."""

from __future__ import annotations

import time

import pytest
from fleetsim import MAX_ALIVE_VMS


def states(rpc, node) -> dict[str, str]:
    return {v["id"]: v["state"] for v in rpc.ok(node, "ListVMs")["vms"]}


def all_stopped(rpc, node, wait) -> list[str]:
    """Stop every VM of the node; return the VM ids."""
    for vm_id, state in states(rpc, node).items():
        if state in ("running", "paused", "starting"):
            rpc.ok(node, "StopVM", vmID=vm_id)
    wait(lambda: set(states(rpc, node).values()) == {"stopped"})
    return list(states(rpc, node))


def test_it_lists_vms_with_the_published_client(node, pub, published):
    client = pub(node)
    vms = client.list_vms()
    assert len(vms) == 4
    for vm in vms:
        assert vm.id and vm.name and vm.cpu_count > 0 and vm.memory_mb >= 4096
        assert isinstance(vm.state, published.VMState)
    assert client.get_vm(vms[0].id).name == vms[0].name
    assert client.get_vm("00000000-0000-4000-8000-000000000000") is None


def test_it_starts_through_starting_and_stops_through_stopping(node, rpc, pub, wait):
    ids = all_stopped(rpc, node, wait)
    client = pub(node)
    assert client.start_vm(ids[0]) is True
    assert states(rpc, node)[ids[0]] == "starting"
    wait(lambda: states(rpc, node)[ids[0]] == "running")
    assert client.get_vm(ids[0]).ip_address
    assert client.stop_vm(ids[0]) is True
    assert states(rpc, node)[ids[0]] == "stopping"
    wait(lambda: states(rpc, node)[ids[0]] == "stopped")
    assert client.get_vm(ids[0]).ip_address is None


def test_it_suspends_and_resumes_with_start(node, rpc, pub, wait, published):
    ids = all_stopped(rpc, node, wait)
    client = pub(node)
    with pytest.raises(published.FleetError, match="only a running VM"):
        client.suspend_vm(ids[0])
    client.start_vm(ids[0])
    wait(lambda: states(rpc, node)[ids[0]] == "running")
    client.suspend_vm(ids[0])
    assert states(rpc, node)[ids[0]] == "paused"
    client.start_vm(ids[0])  # resume
    assert states(rpc, node)[ids[0]] == "running"
    kinds = [e["eventType"] for e in rpc.ok(node.fleet.manager, "GetFleetEvents", limit=10)["events"]]
    assert "vm_resumed" in kinds and "vm_suspended" in kinds


def test_it_refuses_a_third_running_vm_counting_paused_and_starting(node, rpc, wait):
    ids = all_stopped(rpc, node, wait)
    rpc.ok(node, "StartVM", vmID=ids[0])
    wait(lambda: states(rpc, node)[ids[0]] == "running")
    rpc.ok(node, "SuspendVM", vmID=ids[0])  # paused still counts
    rpc.ok(node, "StartVM", vmID=ids[1])  # starting counts too
    error = rpc.fails(node, "StartVM", vmID=ids[2])
    assert f"at most {MAX_ALIVE_VMS}" in error and "macOS VMs" in error
    assert states(rpc, node)[ids[2]] == "stopped"
    assert rpc.fails(node, "StartVMRecovery", vmID=ids[2])
    rpc.ok(node, "StopVM", vmID=ids[1])
    wait(lambda: states(rpc, node)[ids[1]] == "stopped")
    rpc.ok(node, "StartVM", vmID=ids[2])


def test_it_boots_into_recovery(node, rpc, pub, wait):
    ids = all_stopped(rpc, node, wait)
    assert pub(node).start_vm_recovery(ids[0]) is True
    wait(lambda: states(rpc, node)[ids[0]] == "running")
    events = rpc.ok(node.fleet.manager, "GetFleetEvents", limit=5, eventType="vm_started")["events"]
    assert "recovery" in events[0]["message"]


def test_it_refuses_to_start_a_running_vm_and_to_stop_a_stopped_one(node, rpc, wait):
    ids = all_stopped(rpc, node, wait)
    assert "cannot be stopped" in rpc.fails(node, "StopVM", vmID=ids[0])
    rpc.ok(node, "StartVM", vmID=ids[0])
    wait(lambda: states(rpc, node)[ids[0]] == "running")
    assert "cannot be started" in rpc.fails(node, "StartVM", vmID=ids[0])


def test_it_clones_renames_and_deletes(node, rpc, pub, wait, published):
    ids = all_stopped(rpc, node, wait)
    client = pub(node)
    clone = client.clone_vm(ids[0], "clone-a")
    assert clone.name == "clone-a" and clone.id not in ids and clone.state == published.VMState.STOPPED
    with pytest.raises(published.FleetError, match="already exists"):
        client.clone_vm(ids[0], "clone-a")
    assert client.rename_vm(clone.id, "clone-b")
    assert client.get_vm(clone.id).name == "clone-b"
    client.start_vm(clone.id)
    with pytest.raises(published.FleetError, match="must be stopped before it can be deleted"):
        client.delete_vm(clone.id)
    client.stop_vm(clone.id)
    wait(lambda: states(rpc, node)[clone.id] == "stopped")
    assert client.delete_vm(clone.id)
    assert client.get_vm(clone.id) is None
    with pytest.raises(published.FleetError, match="VM not found"):
        client.delete_vm(clone.id)


def test_it_refuses_to_clone_a_running_vm(node, rpc, wait):
    ids = all_stopped(rpc, node, wait)
    rpc.ok(node, "StartVM", vmID=ids[0])
    assert "must be stopped to be cloned" in rpc.fails(node, "CloneVM", vmID=ids[0], newName="x")


def test_create_vm_is_a_task_that_yields_a_stopped_vm(node, rpc, pub, wait, published):
    client = pub(node)
    vm_id = client.create_vm("made-by-test", cpu_count=2, memory_mb=4096, disk_gb=40,
                             oci_image="ghcr.io/cirruslabs/macos-sequoia-base:latest")
    assert vm_id
    assert client.get_vm(vm_id) is None  # not there until the task completes
    first = [t for t in client.get_tasks() if t.vm_id == vm_id][0]
    assert first.type == "vm_creation" and first.status in (published.TaskStatus.PENDING, published.TaskStatus.RUNNING)
    time.sleep(0.4)
    later = [t for t in client.get_tasks() if t.vm_id == vm_id][0]
    assert later.progress > first.progress
    vm = wait(lambda: client.get_vm(vm_id))
    assert vm.name == "made-by-test" and vm.state == published.VMState.STOPPED
    assert (vm.cpu_count, vm.memory_mb, vm.disk_size_gb) == (2, 4096, 40)
    done = [t for t in client.get_tasks(include_completed=True) if t.vm_id == vm_id][0]
    assert done.status == published.TaskStatus.COMPLETED and done.progress == 100 and done.completed_at
    assert [t for t in client.get_tasks() if t.vm_id == vm_id] == []


def test_create_vm_is_idempotent_per_request_id_and_validates(node, rpc):
    body = {"requestID": "req-1", "name": "x1", "cpuCount": 2, "memorySizeMB": 4096, "diskSizeGB": 40}
    first = rpc.ok(node, "CreateVMOnNode", **body)["vmID"]
    assert rpc.ok(node, "CreateVMOnNode", **body)["vmID"] == first
    assert "cpuCount" in rpc.fails(node, "CreateVMOnNode", **{**body, "requestID": "r2", "cpuCount": "four"})
    assert "memorySizeMB" in rpc.fails(node, "CreateVMOnNode", **{**body, "requestID": "r3", "memorySizeMB": 1})
    assert "IPSW not found" in rpc.fails(node, "CreateVMOnNode", **{**body, "requestID": "r4", "name": "x4",
                                                                      "ipswPath": "/nope"})
    assert "already being created" in rpc.fails(node, "CreateVMOnNode", **{**body, "requestID": "r6"})
    assert "name" in rpc.fails(node, "CreateVMOnNode", requestID="r5", cpuCount=2, memorySizeMB=4096, diskSizeGB=40)


def test_create_vm_from_a_failing_image_fails_the_task(node, rpc, wait):
    vm_id = rpc.ok(node, "CreateVMOnNode", requestID="r", name="doomed", cpuCount=2, memorySizeMB=4096,
                   diskSizeGB=40, ociImageReference="registry.nonexistent.invalid/x/y:1")["vmID"]

    def failed():
        tasks = rpc.ok(node, "GetTasks", includeCompleted=True)["tasks"]
        return [t for t in tasks if t.get("vmID") == vm_id and t["status"] == "failed"]

    task = wait(failed)[0]
    assert "no such registry" in task["errorMessage"]
    assert vm_id not in states(rpc, node)


def test_settings_with_intent_and_ttl(node, rpc, pub, wait, published):
    ids = all_stopped(rpc, node, wait)
    client = pub(node)
    conf = client.get_vm_settings(ids[0])
    assert set(conf) >= {"cpuCount", "memorySize", "displayWidth", "displayHeight", "intent"}
    assert client.update_vm_settings(ids[0], cpu_count=2, memory_size=4096, display_width=1280,
                                     display_height=800, intent="disposable", ttl_seconds=3600)
    conf = client.get_vm_settings(ids[0])
    assert (conf["cpuCount"], conf["memorySize"], conf["displayWidth"], conf["displayHeight"]) == (2, 4096, 1280, 800)
    assert conf["intent"] == "disposable" and conf["ttlSeconds"] == 3600 and conf["expiresAt"].endswith("Z")
    client.update_vm_settings(ids[0], ttl_seconds=-1)
    conf = client.get_vm_settings(ids[0])
    assert "ttlSeconds" not in conf and "expiresAt" not in conf
    with pytest.raises(published.FleetError, match="Unknown intent"):
        client.update_vm_settings(ids[0], intent="forever")
    with pytest.raises(published.FleetError, match="ttlSeconds"):
        client.update_vm_settings(ids[0], ttl_seconds=0)
    assert "must be an integer" in rpc.fails(node, "UpdateVMSettings", vmID=ids[0], cpuCount="2")
    client.start_vm(ids[1])
    with pytest.raises(published.FleetError, match="must be stopped to change cpuCount"):
        client.update_vm_settings(ids[1], cpu_count=4)
    assert client.update_vm_settings(ids[1], intent="ci")  # intent and TTL may change while running


def test_cleanup_removes_only_expired_disposable_vms_unless_forced(node, rpc, pub, wait):
    ids = all_stopped(rpc, node, wait)
    client = pub(node)
    client.update_vm_settings(ids[0], intent="disposable", ttl_seconds=1)
    client.update_vm_settings(ids[1], intent="persistent", ttl_seconds=1)
    client.update_vm_settings(ids[2], intent="disposable", ttl_seconds=3600)
    client.update_vm_settings(ids[3], intent="disposable", ttl_seconds=-1)
    assert client.cleanup_vms() == 0  # nothing has expired yet: nothing is removed
    assert set(states(rpc, node)) == set(ids)
    time.sleep(1.1)
    assert client.cleanup_vms() == 1
    assert set(states(rpc, node)) == set(ids[1:])
    assert client.cleanup_vms(force=True) == 1  # the expired persistent one
    assert set(states(rpc, node)) == set(ids[2:])
    assert client.cleanup_vms(force=True) == 0


def test_an_expired_running_disposable_vm_is_retired(node, rpc, wait):
    ids = all_stopped(rpc, node, wait)
    rpc.ok(node, "StartVM", vmID=ids[0])
    wait(lambda: states(rpc, node)[ids[0]] == "running")
    rpc.ok(node, "UpdateVMSettings", vmID=ids[0], intent="disposable", ttlSeconds=1)
    wait(lambda: states(rpc, node)[ids[0]] == "stopped", timeout=3)
    kinds = [e["eventType"] for e in rpc.ok(node.fleet.manager, "GetFleetEvents", limit=5)["events"]]
    assert "vm_expired" in kinds
