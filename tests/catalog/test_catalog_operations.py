"""The catalog handlers and refresh tasks against fleetsim over real HTTP."""

from __future__ import annotations

import time
from typing import Any

import pytest
from django.urls import reverse

from fleetui.activity.models import OperationStatus
from fleetui.catalog.models import SharedFolder, SharedFolderSync, TemplateSync, VMTemplate
from fleetui.catalog.tasks import refresh_shared_folders, refresh_templates
from fleetui.images.models import IPSW, NodeTask
from fleetui.vms.models import VM

pytestmark = pytest.mark.django_db


def test_the_refresh_task_caches_the_nodes_templates(sim_node: Any) -> None:
    refresh_templates(sim_node.node.pk)
    names = set(VMTemplate.objects.filter(node=sim_node.node).values_list("name", flat=True))
    assert names == {t["name"] for t in sim_node.sim.state.templates.values()}
    assert TemplateSync.objects.get(node=sim_node.node).synced_at is not None
    # A template deleted on the node disappears from the cache at the next refresh.
    gone = next(iter(sim_node.sim.state.templates))
    del sim_node.sim.state.templates[gone]
    refresh_templates(sim_node.node.pk)
    assert not VMTemplate.objects.filter(remote_id=gone).exists()


def test_a_failed_refresh_is_recorded_not_raised(sim_node: Any) -> None:
    sim_node.sim.set_faults(mode="http_500")
    refresh_templates(sim_node.node.pk)
    sync = TemplateSync.objects.get(node=sim_node.node)
    assert sync.synced_at is None and "500" in sync.error
    vm = sim_node.vm()
    refresh_shared_folders(vm.pk)
    assert "500" in SharedFolderSync.objects.get(vm=vm).error


def test_it_creates_and_deletes_a_template(sim_node: Any, run_op: Any, users: dict) -> None:
    vm = sim_node.vm(state="stopped")
    op = run_op("template.create", user=users["operator"], node=sim_node.node, vm=vm,
                params={"name": "Golden", "description": "base image", "category": "base", "keep_original": True})
    assert op.status == OperationStatus.SUCCEEDED, op.error
    row = VMTemplate.objects.get(node=sim_node.node, remote_id=op.result["template_id"])
    assert (row.name, row.category, row.description) == ("Golden", "base", "base image")
    vm.refresh_from_db()
    assert vm.gone_at is None

    op = run_op("template.delete", user=users["operator"], node=sim_node.node,
                params={"template_id": row.remote_id, "name": row.name})
    assert op.status == OperationStatus.SUCCEEDED, op.error
    assert not VMTemplate.objects.filter(pk=row.pk).exists()
    assert row.remote_id not in sim_node.sim.state.templates


def test_a_template_without_keeping_the_vm_removes_it(sim_node: Any, run_op: Any, users: dict) -> None:
    vm = sim_node.vm(state="stopped")
    op = run_op("template.create", user=users["operator"], node=sim_node.node, vm=vm,
                params={"name": "Consumed", "description": "", "category": "custom", "keep_original": False})
    assert op.status == OperationStatus.SUCCEEDED, op.error
    vm.refresh_from_db()
    assert vm.gone_at is not None  # the re-poll after the operation saw it go


def test_a_template_from_a_running_vm_fails_in_plain_words(sim_node: Any, run_op: Any, users: dict) -> None:
    vm = sim_node.vm(state="stopped")
    sim_node.sim.state.vms[vm.remote_id].state = "running"
    op = run_op("template.create", user=users["operator"], node=sim_node.node, vm=vm,
                params={"name": "Nope", "category": "custom", "keep_original": True})
    assert op.status == OperationStatus.FAILED and "must be stopped" in op.error


def test_it_manages_shared_folders(sim_node: Any, run_op: Any, users: dict) -> None:
    vm = sim_node.vm(state="stopped")
    op = run_op("folder.add", user=users["operator"], node=sim_node.node, vm=vm,
                params={"name": "src", "host_path": "/Users/dev/src", "read_only": True, "mount_tag": "src1"})
    assert op.status == OperationStatus.SUCCEEDED, op.error
    folder = SharedFolder.objects.get(vm=vm, name="src")
    assert (folder.host_path, folder.read_only, folder.is_enabled, folder.mount_tag) == (
        "/Users/dev/src", True, True, "src1")

    op = run_op("folder.enable", user=users["operator"], node=sim_node.node, vm=vm,
                params={"name": "src", "enabled": False})
    assert op.status == OperationStatus.SUCCEEDED, op.error
    folder.refresh_from_db()
    assert folder.is_enabled is False

    op = run_op("folder.add", user=users["operator"], node=sim_node.node, vm=vm,
                params={"name": "src", "host_path": "/elsewhere", "read_only": False})
    assert op.status == OperationStatus.FAILED and "already has a shared folder" in op.error

    op = run_op("folder.remove", user=users["operator"], node=sim_node.node, vm=vm, params={"name": "src"})
    assert op.status == OperationStatus.SUCCEEDED, op.error
    assert not SharedFolder.objects.filter(vm=vm).exists()

    # A folder added on the node by someone else shows after a refresh.
    sim_node.sim.state.vms[vm.remote_id].shared_folders.append(
        {"name": "other", "hostPath": "/tmp/other", "readOnly": False, "isEnabled": True})
    refresh_shared_folders(vm.pk)
    assert list(SharedFolder.objects.filter(vm=vm).values_list("name", flat=True)) == ["other"]


def test_it_downloads_an_ipsw_and_follows_its_progress(sim_node: Any, run_op: Any, users: dict,
                                                       as_role: Any) -> None:
    url = "https://updates.example.com/restore/UniversalMac_15.3_24D60_Restore.ipsw"
    op = run_op("ipsw.download", user=users["operator"], node=sim_node.node,
                params={"url": url, "name": "macOS 15.3", "version": "15.3"})
    assert op.status == OperationStatus.SUCCEEDED, op.error
    task = NodeTask.objects.get(node=sim_node.node, remote_id=op.result["task_id"])
    assert task.status in ("pending", "running")
    follow = reverse("vm-operation-follow", args=[op.pk])
    partial = as_role("viewer").get(follow, HTTP_HX_REQUEST="true")
    assert partial.status_code == 200 and "<progress" in partial.content.decode()
    time.sleep(0.5)
    sim_node.poll()
    assert NodeTask.objects.get(pk=task.pk).status == "completed"
    assert IPSW.objects.filter(node=sim_node.node, name="macOS 15.3", version="15.3").exists()
    partial = as_role("viewer").get(follow, HTTP_HX_REQUEST="true")
    assert partial.status_code == 286 and "HX-Redirect" not in partial


def test_it_reads_ipsw_info(sim_node: Any, run_op: Any, users: dict, as_role: Any) -> None:
    ipsw = IPSW.objects.filter(node=sim_node.node).order_by("path").first()
    op = run_op("ipsw.info", user=users["viewer"], node=sim_node.node, params={"path": ipsw.path})
    assert op.status == OperationStatus.SUCCEEDED, op.error
    assert op.result["info"]["version"] == ipsw.version and op.result["info"]["buildVersion"]
    assert "success" not in op.result["info"]
    page = as_role("viewer").get(reverse("vm-operation-follow", args=[op.pk])).content.decode()
    assert 'id="ipsw-info"' in page and op.result["info"]["buildVersion"] in page

    op = run_op("ipsw.info", user=users["viewer"], node=sim_node.node, params={"path": "/nowhere.ipsw"})
    assert op.status == OperationStatus.FAILED and "IPSW not found" in op.error


def test_it_pushes_a_vm_and_a_failed_push_shows_its_error(sim_node: Any, run_op: Any, users: dict) -> None:
    vm = sim_node.vm(state="stopped")
    op = run_op("image.push", user=users["operator"], node=sim_node.node, vm=vm,
                params={"image_name": "ghcr.io/acme/build:1", "insecure": True})
    assert op.status == OperationStatus.SUCCEEDED, op.error
    task = NodeTask.objects.get(node=sim_node.node, remote_id=op.result["task_id"])
    assert task.vm_remote_id.upper() == vm.remote_id.upper()

    op = run_op("image.push", user=users["operator"], node=sim_node.node, vm=vm,
                params={"image_name": "ghcr.io/acme/fail-push:1", "insecure": False})
    assert op.status == OperationStatus.SUCCEEDED
    time.sleep(0.5)
    sim_node.poll()
    task = NodeTask.objects.get(node=sim_node.node, remote_id=op.result["task_id"])
    assert task.status == "failed" and "simulated failure" in task.error_message
    assert VM.objects.get(pk=vm.pk).gone_at is None


def test_it_reads_a_template_by_id_and_by_name(sim_node: Any, run_op: Any, users: dict, as_role: Any) -> None:
    refresh_templates(sim_node.node.pk)
    row = VMTemplate.objects.filter(node=sim_node.node).order_by("name").first()
    sim_node.sim.state.templates[row.remote_id]["description"] = "changed on the node"
    op = run_op("template.read", user=users["viewer"], node=sim_node.node, params={"template_id": row.remote_id})
    assert op.status == OperationStatus.SUCCEEDED, op.error
    assert op.result["found"] is True and op.result["name"] == row.name
    row.refresh_from_db()
    assert row.description == "changed on the node"

    op = run_op("template.read", user=users["viewer"], node=sim_node.node, params={"name": "CI Runner Base"})
    assert op.status == OperationStatus.SUCCEEDED and op.result["found"] is True
    page = as_role("viewer").get(reverse("vm-operation-follow", args=[op.pk])).content.decode()
    assert "Found template <strong>CI Runner Base</strong>" in page

    op = run_op("template.read", user=users["viewer"], node=sim_node.node, params={"name": "No Such Template"})
    assert op.status == OperationStatus.SUCCEEDED and op.result == {"found": False}

    del sim_node.sim.state.templates[row.remote_id]
    op = run_op("template.read", user=users["viewer"], node=sim_node.node, params={"template_id": row.remote_id})
    assert op.result == {"found": False}
    assert not VMTemplate.objects.filter(pk=row.pk).exists()  # gone from the node, gone from the cache
