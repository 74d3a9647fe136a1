"""The provisioning handlers run as a worker runs them (operation_run), over real HTTP to fleetsim."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import pytest
from django.urls import reverse
from django.utils import timezone

from fleetui.activity.models import OperationStatus
from fleetui.images.models import NodeTask
from fleetui.vms.models import VM

pytestmark = pytest.mark.django_db


def _wait_for_tasks(sim_node: Any) -> None:
    time.sleep(0.5)  # the fixture's fleetsim finishes tasks in 0.4 s
    sim_node.poll()


def test_it_creates_a_vm_from_an_image_and_follows_its_task(sim_node: Any, run_op: Any, users: dict,
                                                            as_role: Any) -> None:
    image = sim_node.node.oci_images.order_by("reference").first()
    assert image is not None
    op = run_op("vm.create", user=users["operator"], node=sim_node.node,
                params={"name": "ci-made-01", "cpu_count": 2, "memory_mb": 4096, "disk_gb": 40,
                        "oci_image": image.reference})
    assert op.status == OperationStatus.SUCCEEDED, op.error
    vm_id, task_id = op.result["vm_id"], op.result["task_id"]
    assert vm_id and task_id
    task = NodeTask.objects.get(node=sim_node.node, remote_id=task_id)  # the re-poll after the call saw it
    assert task.vm_remote_id == vm_id
    _wait_for_tasks(sim_node)
    made = VM.objects.get(node=sim_node.node, remote_id=vm_id)
    assert (made.name, made.cpu_count, made.memory_mb, made.state) == ("ci-made-01", 2, 4096, "stopped")
    partial = as_role("viewer").get(reverse("vm-operation-follow", args=[op.pk]), HTTP_HX_REQUEST="true")
    assert partial["HX-Redirect"] == reverse("vm-detail", args=[made.pk])


def test_it_creates_from_an_ipsw_the_node_has(sim_node: Any, run_op: Any, users: dict) -> None:
    ipsw = sim_node.node.ipsws.order_by("path").first()
    op = run_op("vm.create", user=users["operator"], node=sim_node.node,
                params={"name": "from-ipsw", "cpu_count": 2, "memory_mb": 4096, "disk_gb": 40, "ipsw_path": ipsw.path})
    assert op.status == OperationStatus.SUCCEEDED, op.error
    _wait_for_tasks(sim_node)
    assert VM.objects.get(node=sim_node.node, remote_id=op.result["vm_id"]).os_version == ipsw.version


def test_a_failed_pull_shows_as_a_failed_task(sim_node: Any, run_op: Any, users: dict, as_role: Any) -> None:
    op = run_op("vm.create", user=users["operator"], node=sim_node.node,
                params={"name": "doomed", "cpu_count": 2, "memory_mb": 4096, "disk_gb": 40,
                        "oci_image": "ghcr.io/acme/fail-image:1"})
    assert op.status == OperationStatus.SUCCEEDED  # the node accepted it; the task is what fails
    _wait_for_tasks(sim_node)
    task = NodeTask.objects.get(node=sim_node.node, remote_id=op.result["task_id"])
    assert task.status == "failed" and "simulated failure" in task.error_message
    partial = as_role("viewer").get(reverse("vm-operation-follow", args=[op.pk]), HTTP_HX_REQUEST="true")
    assert partial.status_code == 286 and "task failed" in partial.content.decode()
    assert not VM.objects.filter(remote_id=op.result["vm_id"]).exists()


def test_the_node_refusal_is_a_failed_operation_in_plain_words(sim_node: Any, run_op: Any, users: dict) -> None:
    op = run_op("vm.create", user=users["operator"], node=sim_node.node,
                params={"name": "too-big", "cpu_count": 2, "memory_mb": 1024, "disk_gb": 40})
    assert op.status == OperationStatus.FAILED
    assert "memorySizeMB" in op.error and "between 2048" in op.error


def test_it_clones_renames_and_deletes(sim_node: Any, run_op: Any, users: dict) -> None:
    source = sim_node.vm(state="stopped")
    op = run_op("vm.clone", user=users["operator"], node=sim_node.node, vm=source, params={"new_name": "the-clone"})
    assert op.status == OperationStatus.SUCCEEDED, op.error
    clone = VM.objects.get(node=sim_node.node, remote_id=op.result["vm_id"])
    assert clone.name == "the-clone" and clone.gone_at is None

    op = run_op("vm.rename", user=users["operator"], node=sim_node.node, vm=clone, params={"new_name": "renamed"})
    assert op.status == OperationStatus.SUCCEEDED, op.error
    clone.refresh_from_db()
    assert clone.name == "renamed"
    assert sim_node.sim.state.vms[clone.remote_id].name == "renamed"

    op = run_op("vm.delete", user=users["operator"], node=sim_node.node, vm=clone)
    assert op.status == OperationStatus.SUCCEEDED, op.error
    clone.refresh_from_db()
    assert clone.gone_at is not None
    assert clone.remote_id not in sim_node.sim.state.vms


def test_deleting_a_running_vm_fails_with_the_nodes_reason(sim_node: Any, run_op: Any, users: dict) -> None:
    vm = sim_node.vm(state="stopped")
    sim_node.sim.state.vms[vm.remote_id].state = "running"
    sim_node.poll()
    vm.refresh_from_db()
    op = run_op("vm.delete", user=users["operator"], node=sim_node.node, vm=vm)
    assert op.status == OperationStatus.FAILED
    assert "must be stopped" in op.error
    assert vm.remote_id in sim_node.sim.state.vms


def test_it_changes_settings_and_stores_what_the_node_reports(sim_node: Any, run_op: Any, users: dict) -> None:
    vm = sim_node.vm(state="stopped")
    op = run_op("vm.settings", user=users["operator"], node=sim_node.node, vm=vm,
                params={"changes": {"cpu_count": 3, "memory_mb": 6144, "display_width": 1280, "display_height": 800,
                                    "intent": "ci"}})
    assert op.status == OperationStatus.SUCCEEDED, op.error
    assert sorted(op.result["changed"]) == ["cpu_count", "display_height", "display_width", "intent", "memory_mb"]
    vm.refresh_from_db()
    assert (vm.cpu_count, vm.memory_mb, vm.display_width, vm.display_height, vm.intent) == (3, 6144, 1280, 800, "ci")
    assert vm.settings_at is not None
    remote = sim_node.sim.state.vms[vm.remote_id]
    assert (remote.cpu_count, remote.memory_mb, remote.intent) == (3, 6144, "ci")


def test_a_lease_is_set_extended_from_its_expiry_and_cleared(sim_node: Any, run_op: Any, users: dict) -> None:
    vm = sim_node.vm(state="stopped")
    before = timezone.now()
    op = run_op("vm.lease_set", user=users["operator"], node=sim_node.node, vm=vm, params={"ttl_seconds": 3600})
    assert op.status == OperationStatus.SUCCEEDED, op.error
    vm.refresh_from_db()
    assert vm.ttl_seconds == 3600
    first = vm.expires_at
    assert before + timedelta(seconds=3590) <= first <= timezone.now() + timedelta(seconds=3601)

    op = run_op("vm.lease_extend", user=users["operator"], node=sim_node.node, vm=vm,
                params={"extend_seconds": 1800})
    assert op.status == OperationStatus.SUCCEEDED, op.error
    vm.refresh_from_db()
    assert abs((vm.expires_at - (first + timedelta(seconds=1800))).total_seconds()) <= 2
    assert sim_node.sim.state.vms[vm.remote_id].expires_at is not None

    op = run_op("vm.lease_clear", user=users["operator"], node=sim_node.node, vm=vm)
    assert op.status == OperationStatus.SUCCEEDED, op.error
    vm.refresh_from_db()
    assert vm.expires_at is None and vm.ttl_seconds is None
    assert sim_node.sim.state.vms[vm.remote_id].expires_at is None

    op = run_op("vm.lease_extend", user=users["operator"], node=sim_node.node, vm=vm, params={"extend_seconds": 60})
    assert op.status == OperationStatus.FAILED and "no lease to extend" in op.error


def test_a_dead_node_fails_the_operation_without_raising(sim_node: Any, run_op: Any, users: dict) -> None:
    vm = sim_node.vm(state="stopped")
    sim_node.sim.set_faults(mode="http_503")
    op = run_op("vm.rename", user=users["operator"], node=sim_node.node, vm=vm, params={"new_name": "never"})
    assert op.status == OperationStatus.FAILED and op.error
    assert sim_node.sim.state.vms[vm.remote_id].name != "never"
