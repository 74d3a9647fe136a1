"""Snapshots, templates, shared folders, images and tasks on fleetsim."""

from __future__ import annotations

import time

import pytest


def stopped_vm(rpc, node, wait) -> str:
    vms = rpc.ok(node, "ListVMs")["vms"]
    for v in vms:
        if v["state"] in ("running", "paused"):
            rpc.ok(node, "StopVM", vmID=v["id"])
    wait(lambda: all(v["state"] == "stopped" for v in rpc.ok(node, "ListVMs")["vms"]))
    return vms[0]["id"]


def running_vm(rpc, node, wait) -> str:
    vm_id = stopped_vm(rpc, node, wait)
    rpc.ok(node, "StartVM", vmID=vm_id)
    wait(lambda: {v["id"]: v["state"] for v in rpc.ok(node, "ListVMs")["vms"]}[vm_id] == "running")
    return vm_id


def test_snapshots_create_list_restore_only_when_stopped_and_delete(node, rpc, pub, wait, published):
    vm_id = running_vm(rpc, node, wait)
    client = pub(node)
    snap = client.create_snapshot(vm_id, "pre-update", "Before system update")
    assert snap.name == "pre-update" and snap.description == "Before system update" and snap.size_bytes > 0
    assert [s.id for s in client.list_snapshots(vm_id)] == [snap.id]
    with pytest.raises(published.FleetError, match="must be stopped to restore a snapshot"):
        client.restore_snapshot(vm_id, snap.id)
    client.stop_vm(vm_id)
    wait(lambda: client.get_vm(vm_id).state == published.VMState.STOPPED)
    assert client.restore_snapshot(vm_id, snap.id)
    with pytest.raises(published.FleetError, match="already has a snapshot named"):
        client.create_snapshot(vm_id, "pre-update")
    assert client.delete_snapshot(vm_id, snap.id)
    assert client.list_snapshots(vm_id) == []
    with pytest.raises(published.FleetError, match="Snapshot not found"):
        client.restore_snapshot(vm_id, snap.id)
    kinds = [e["eventType"] for e in rpc.ok(node.fleet.manager, "GetFleetEvents", limit=20)["events"]]
    assert {"snapshot_created", "snapshot_restored", "snapshot_deleted"} <= set(kinds)


def test_templates_list_get_create_from_stopped_and_delete(node, rpc, pub, wait, published):
    client = pub(node)
    templates = client.list_templates()
    assert len(templates) == 3 and {t.category for t in templates} <= {"base", "dev", "cicd", "testing", "custom"}
    assert client.get_template(templates[0].id).name == templates[0].name
    assert client.get_template_by_name("CI Runner Base").category == "cicd"
    assert client.get_template("00000000-0000-4000-8000-000000000000") is None
    assert client.get_template_by_name("nope") is None
    vm_id = running_vm(rpc, node, wait)
    with pytest.raises(published.FleetError, match="must be stopped to create a template"):
        client.create_template_from_vm(vm_id, "From running")
    client.stop_vm(vm_id)
    wait(lambda: client.get_vm(vm_id).state == published.VMState.STOPPED)
    t = client.create_template_from_vm(vm_id, "Kept", description="d", category="testing")
    assert t.name == "Kept" and t.category == "testing" and t.source_type == "vm" and t.default_cpu > 0
    assert client.get_vm(vm_id) is not None
    t2 = client.create_template_from_vm(vm_id, "Consumed", keep_original_vm=False)
    assert client.get_vm(vm_id) is None  # keepOriginalVM false deletes the VM
    with pytest.raises(published.FleetError, match="already exists"):
        client.create_template_from_vm(rpc.ok(node, "ListVMs")["vms"][0]["id"], "Kept")
    assert client.delete_template(t2.id)
    with pytest.raises(published.FleetError, match="Template not found"):
        client.delete_template(t2.id)
    assert {x.name for x in client.list_templates()} == {x.name for x in templates} | {"Kept"}
    assert "category" in rpc.fails(node, "CreateTemplateFromVM", vmID=rpc.ok(node, "ListVMs")["vms"][0]["id"],
                                   name="z", category="weird")


def test_shared_folders(node, rpc, pub, published):
    client = pub(node)
    vm_id = rpc.ok(node, "ListVMs")["vms"][0]["id"]
    assert client.list_shared_folders(vm_id) == []
    assert client.add_shared_folder(vm_id, "src", "/Users/dev/src", read_only=True, mount_tag="srctag")
    assert client.list_shared_folders(vm_id) == [
        {"name": "src", "hostPath": "/Users/dev/src", "readOnly": True, "isEnabled": True, "mountTag": "srctag"}]
    with pytest.raises(published.FleetError, match="already has a shared folder"):
        client.add_shared_folder(vm_id, "src", "/tmp")
    with pytest.raises(published.FleetError, match="absolute path"):
        client.add_shared_folder(vm_id, "rel", "relative/path")
    assert client.set_shared_folder_enabled(vm_id, "src", False)
    assert client.list_shared_folders(vm_id)[0]["isEnabled"] is False
    assert "true or false" in rpc.fails(node, "SetSharedFolderEnabled", vmID=vm_id, name="src", enabled="no")
    assert client.remove_shared_folder(vm_id, "src")
    with pytest.raises(published.FleetError, match="no shared folder named"):
        client.remove_shared_folder(vm_id, "src")


def test_ipsws_list_info_and_download_task(node, rpc, pub, wait, published):
    client = pub(node)
    ipsws = client.list_ipsws()
    assert ipsws and set(ipsws[0]) >= {"name", "version", "path", "sizeBytes"}
    info = client.get_ipsw_info(ipsws[0]["path"])
    assert info["version"] == ipsws[0]["version"] and info["buildVersion"] and info["sizeBytes"] > 0
    assert client.get_ipsw_info("/nope.ipsw")["success"] is False
    assert client.download_ipsw("https://updates.cdn-apple.com/x/UniversalMac_15.4_Restore.ipsw", "macOS 15.4", "15.4")
    task = [t for t in client.get_tasks() if t.type == "ipsw_download"][0]
    assert task.title == "Download macOS 15.4"
    wait(lambda: any(i["version"] == "15.4" for i in client.list_ipsws()))
    with pytest.raises(published.FleetError, match="http"):
        client.download_ipsw("ftp://x/y.ipsw", "n", "1")


def test_oci_pull_progress_rises_then_completes_and_the_image_is_listed(node, rpc, pub, wait, published):
    client = pub(node)
    ref = "ghcr.io/acme/macos-runner:2"
    assert client.pull_oci_image(ref, username="u", password="p")
    t1 = [t for t in client.get_tasks() if t.type == "oci_pull"][0]
    time.sleep(0.3)
    t2 = [t for t in client.get_tasks() if t.type == "oci_pull"][0]
    assert t1.id == t2.id and 0 <= t1.progress < t2.progress < 100 and t2.status == published.TaskStatus.RUNNING
    image = wait(lambda: [i for i in client.list_oci_images() if i["reference"] == ref])[0]
    assert image["digest"].startswith("sha256:") and image["sizeBytes"] > 0 and image["pulledAt"]
    assert [t for t in client.get_tasks() if t.type == "oci_pull"] == []
    done = [t for t in client.get_tasks(include_completed=True) if t.id == t1.id][0]
    assert done.status == published.TaskStatus.COMPLETED and done.progress == 100
    kinds = [e["eventType"] for e in rpc.ok(node.fleet.manager, "GetFleetEvents", limit=10)["events"]]
    assert "image_pulled" in kinds
    with pytest.raises(published.FleetError, match="Invalid image reference"):
        client.pull_oci_image("not a reference")


@pytest.mark.parametrize("ref", ["ghcr.io/acme/will-fail:1", "registry.nonexistent.invalid/acme/x:1"])
def test_a_failing_pull_ends_failed_with_an_error_message(node, rpc, pub, wait, published, ref):
    client = pub(node)
    client.pull_oci_image(ref)

    def failed():
        return [t for t in client.get_tasks(include_completed=True)
                if t.title == f"Pull {ref}" and t.status == published.TaskStatus.FAILED]

    task = wait(failed)[0]
    assert task.error_message and task.progress < 100
    assert not [i for i in client.list_oci_images() if i["reference"] == ref]
    events = rpc.ok(node.fleet.manager, "GetFleetEvents", limit=10, eventType="task_failed")["events"]
    assert events and events[0]["taskID"] == task.id


def test_push_image_returns_a_task_id_and_needs_a_stopped_vm(node, rpc, pub, wait, published):
    client = pub(node)
    vm_id = running_vm(rpc, node, wait)
    with pytest.raises(published.FleetError, match="must be stopped"):
        client.push_image(vm_id, "ghcr.io/acme/pushed:1")
    client.stop_vm(vm_id)
    wait(lambda: client.get_vm(vm_id).state == published.VMState.STOPPED)
    task_id = client.push_image(vm_id, "ghcr.io/acme/pushed:1", insecure=True)
    task = [t for t in client.get_tasks() if t.id == task_id][0]
    assert task.type == "image_push" and task.vm_id == vm_id
    wait(lambda: [t for t in client.get_tasks(include_completed=True)
                  if t.id == task_id and t.status == published.TaskStatus.COMPLETED])
