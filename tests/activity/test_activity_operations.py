"""Operations: recording (operation_create) and running them (operation_run) against fleetsim.

These call operation_run in-process, as a worker would; tests/worker runs the same through a real
Celery worker on the real Redis broker.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from ciderstack import FleetClient
from django.contrib.auth.models import User
from django.test import RequestFactory
from fleetsim import SimFleet

from fleetui.activity.models import Operation, OperationStatus
from fleetui.activity.registry import registered_kinds
from fleetui.activity.secrets import _key, secrets_put, secrets_take
from fleetui.activity.services import OperationError, operation_create, operation_run
from fleetui.images.models import NodeTask
from fleetui.nodes.locks import redis_connection
from fleetui.nodes.models import Node
from fleetui.nodes.services import node_poll
from fleetui.vms.models import VM, Snapshot, VMState

pytestmark = pytest.mark.django_db


@pytest.fixture()
def operator(db: Any) -> User:
    return User.objects.create(username="olga")  # no password: hashing one costs ~0.5 s


@pytest.fixture()
def worker_node(registered: list[Node]) -> Node:
    node = registered[1]
    assert node_poll(node_id=node.pk).ok
    return node


def _vm(node: Node, sim: Any, state: str) -> VM:
    remote = next(v for v in sim.state.vms.values() if v.state == state)
    return VM.objects.get(node=node, remote_id=remote.id)


def _received(sim: Any, method: str) -> int:
    return sum(1 for _, m in sim.received if m == method)


def test_every_issue_3_kind_is_registered() -> None:
    kinds = registered_kinds()
    for kind in ("vm.start", "vm.stop", "vm.suspend", "vm.resume", "vm.start_recovery", "snapshot.create",
                 "snapshot.restore", "snapshot.delete", "image.pull"):
        assert kind in kinds
        assert kinds[kind].mutating


def test_create_records_who_what_where_and_queues_after_commit(
    fleet: SimFleet, worker_node: Node, operator: User, django_capture_on_commit_callbacks: Any
) -> None:
    vm = _vm(worker_node, fleet.nodes[1], "stopped")
    request = RequestFactory().post("/vms/1/action/start/", REMOTE_ADDR="203.0.113.7", HTTP_X_REQUEST_ID="req-42")

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        op = operation_create(kind="vm.start", user=operator, node=worker_node, vm=vm, request=request)

    assert len(callbacks) == 1  # queued only once the transaction commits
    op.refresh_from_db()
    assert op.status == OperationStatus.PENDING
    assert (op.kind, op.username, op.user_id) == ("vm.start", "olga", operator.pk)
    assert (op.node_name, op.vm_name, op.vm_remote_id) == (worker_node.name, vm.name, vm.remote_id)
    assert op.source_ip == "203.0.113.7" and op.request_id == "req-42"
    assert op.params == {}
    assert _received(fleet.nodes[1], "StartVM") == 0  # a page never calls the node


@pytest.mark.parametrize(
    ("kind", "params", "words"),
    [
        ("vm.explode", {}, "Unknown operation"),
        ("snapshot.create", {"name": ""}, "Give the snapshot a name"),
        ("snapshot.create", {"name": "x" * 300}, "at most 255"),
        ("snapshot.create", {"name": "a\x00b"}, "control characters"),
        ("snapshot.restore", {"snapshot_id": "no-such-snapshot"}, "not one of this VM's"),
        ("snapshot.delete", {}, "Choose a snapshot"),
        ("vm.start", {"password": "hunter2"}, "looks like a secret"),
    ],
)
def test_create_refuses_bad_input_in_plain_words_and_records_nothing(
    fleet: SimFleet, worker_node: Node, operator: User, kind: str, params: dict, words: str
) -> None:
    vm = _vm(worker_node, fleet.nodes[1], "stopped")
    with pytest.raises(OperationError) as caught:
        operation_create(kind=kind, user=operator, node=worker_node, vm=vm, params=params)
    assert words in caught.value.message
    assert not Operation.objects.exists()


def test_create_refuses_a_vm_action_without_a_vm_and_on_a_read_only_node(
    fleet: SimFleet, worker_node: Node, operator: User, register_sim: Callable[..., Node]
) -> None:
    with pytest.raises(OperationError, match="needs a VM"):
        operation_create(kind="vm.start", user=operator, node=worker_node)
    other_vm = VM.objects.create(node=Node.objects.exclude(pk=worker_node.pk).first(), remote_id="X", name="x",
                                 last_seen_at=worker_node.created_at, changed_at=worker_node.created_at)
    with pytest.raises(OperationError, match="not on that node"):
        operation_create(kind="vm.start", user=operator, node=worker_node, vm=other_vm)
    Node.objects.filter(pk=worker_node.pk).update(token_permission=Node.Permission.READ_ONLY)
    worker_node.refresh_from_db()
    vm = _vm(worker_node, fleet.nodes[1], "stopped")
    with pytest.raises(OperationError, match="read-only"):
        operation_create(kind="vm.start", user=operator, node=worker_node, vm=vm)
    assert not Operation.objects.exists()


def test_run_starts_the_vm_and_re_polls_before_it_reports_success(
    fleet: SimFleet, worker_node: Node, operator: User
) -> None:
    sim = fleet.nodes[1]
    vm = _vm(worker_node, sim, "stopped")
    op = operation_create(kind="vm.start", user=operator, node=worker_node, vm=vm)

    assert operation_run(operation_id=str(op.id)) == "ran"

    op.refresh_from_db()
    assert op.status == OperationStatus.SUCCEEDED and op.error == ""
    assert op.started_at and op.finished_at and op.finished_at >= op.started_at
    vm.refresh_from_db()
    assert vm.state in (VMState.STARTING, VMState.RUNNING)  # the node's confirmed state, already stored
    assert sim.state.vms[vm.remote_id].state in ("starting", "running")


def test_run_claims_the_operation_once_so_a_redelivery_never_calls_the_node_twice(
    fleet: SimFleet, worker_node: Node, operator: User
) -> None:
    sim = fleet.nodes[1]
    vm = _vm(worker_node, sim, "stopped")
    op = operation_create(kind="vm.start", user=operator, node=worker_node, vm=vm)

    assert operation_run(operation_id=str(op.id)) == "ran"
    assert operation_run(operation_id=str(op.id)) == "skipped"

    assert _received(sim, "StartVM") == 1
    assert Operation.objects.get(pk=op.pk).status == OperationStatus.SUCCEEDED


def test_the_node_error_is_shown_in_its_own_words(fleet: SimFleet, worker_node: Node, operator: User) -> None:
    sim = fleet.nodes[1]
    stopped = [VM.objects.get(node=worker_node, remote_id=v.id) for v in sim.state.vms.values()
               if v.state == "stopped"]
    running = sum(1 for v in sim.state.vms.values() if v.state in ("running", "starting", "paused"))
    ops = [operation_create(kind="vm.start", user=operator, node=worker_node, vm=vm) for vm in stopped[: 3 - running]]
    for op in ops:
        operation_run(operation_id=str(op.id))

    *started, refused = [Operation.objects.get(pk=op.pk) for op in ops]
    assert all(op.status == OperationStatus.SUCCEEDED for op in started)
    assert refused.status == OperationStatus.FAILED
    assert refused.error.startswith(f"Cannot start '{refused.vm_name}': macOS allows at most 2 macOS VMs")


def test_a_read_only_node_fails_the_operation_without_calling_it(
    fleet: SimFleet, worker_node: Node, operator: User
) -> None:
    vm = _vm(worker_node, fleet.nodes[1], "stopped")
    op = operation_create(kind="vm.start", user=operator, node=worker_node, vm=vm)
    Node.objects.filter(pk=worker_node.pk).update(token_permission=Node.Permission.READ_ONLY)
    operation_run(operation_id=str(op.id))
    op.refresh_from_db()
    assert op.status == OperationStatus.FAILED and "read-only" in op.error
    assert _received(fleet.nodes[1], "StartVM") == 0


def test_an_action_that_times_out_fails_clearly_and_is_not_retried(
    fleet: SimFleet, worker_node: Node, operator: User, settings: Any
) -> None:
    settings.NODE_ACTION_TIMEOUT = 1
    sim = fleet.nodes[1]
    vm = _vm(worker_node, sim, "stopped")
    op = operation_create(kind="vm.start", user=operator, node=worker_node, vm=vm)
    sim.set_faults("hang")

    operation_run(operation_id=str(op.id))

    op.refresh_from_db()
    assert op.status == OperationStatus.FAILED
    assert op.error.startswith("Timed out: the node did not answer within 1 s")
    assert "never runs twice" in op.error
    assert _received(sim, "StartVM") == 1
    assert "timed out" in Node.objects.get(pk=worker_node.pk).last_error  # the re-poll saw it too


def test_an_operation_interrupted_mid_call_is_failed_not_rerun(
    fleet: SimFleet, worker_node: Node, operator: User
) -> None:
    from django.utils import timezone

    vm = _vm(worker_node, fleet.nodes[1], "stopped")
    op = operation_create(kind="vm.start", user=operator, node=worker_node, vm=vm)
    # What a worker killed between claiming it and the node's answer leaves behind.
    Operation.objects.filter(pk=op.pk).update(status=OperationStatus.RUNNING, started_at=timezone.now())

    assert operation_run(operation_id=str(op.id)) == "interrupted"

    op.refresh_from_db()
    assert op.status == OperationStatus.FAILED and op.error.startswith("Interrupted")
    assert _received(fleet.nodes[1], "StartVM") == 0


def test_an_operation_whose_outcome_was_recorded_is_finished_on_redelivery(
    fleet: SimFleet, worker_node: Node, operator: User
) -> None:
    from django.utils import timezone

    vm = _vm(worker_node, fleet.nodes[1], "stopped")
    op = operation_create(kind="vm.start", user=operator, node=worker_node, vm=vm)
    # A worker killed during the re-poll: the node answered and the outcome was stored.
    now = timezone.now()
    Operation.objects.filter(pk=op.pk).update(status=OperationStatus.RUNNING, started_at=now, finished_at=now)

    assert operation_run(operation_id=str(op.id)) == "finished"
    assert Operation.objects.get(pk=op.pk).status == OperationStatus.SUCCEEDED
    assert _received(fleet.nodes[1], "StartVM") == 0


def test_lifecycle_suspend_resume_stop_and_recovery(
    fleet: SimFleet, worker_node: Node, operator: User, wait_for: Callable[..., Any]
) -> None:
    sim = fleet.nodes[1]
    if not any(v.state == "running" for v in sim.state.vms.values()):
        with FleetClient(sim.host, api_token=sim.api_token, port=sim.port) as client:
            client.start_vm(next(iter(sim.state.vms)))
        wait_for(lambda: node_poll(node_id=worker_node.pk).ok and VM.objects.filter(
            node=worker_node, state=VMState.RUNNING).exists(), message="a running VM")
    vm = VM.objects.filter(node=worker_node, state=VMState.RUNNING).first()

    def run(kind: str) -> Operation:
        op = operation_create(kind=kind, user=operator, node=worker_node, vm=vm)
        operation_run(operation_id=str(op.id))
        op.refresh_from_db()
        assert op.status == OperationStatus.SUCCEEDED, op.error
        vm.refresh_from_db()
        return op

    run("vm.suspend")
    assert vm.state == VMState.PAUSED
    run("vm.resume")
    assert vm.state == VMState.RUNNING
    run("vm.stop")
    assert vm.state in (VMState.STOPPING, VMState.STOPPED)
    wait_for(lambda: node_poll(node_id=worker_node.pk).ok and VM.objects.get(pk=vm.pk).state == VMState.STOPPED,
             message="the VM to stop")
    run("vm.start_recovery")
    assert vm.state in (VMState.STARTING, VMState.RUNNING)
    assert sim.state.vms[vm.remote_id].recovery


def test_snapshots_create_restore_and_delete_update_the_snapshot_rows(
    fleet: SimFleet, worker_node: Node, operator: User
) -> None:
    vm = _vm(worker_node, fleet.nodes[1], "stopped")
    op = operation_create(kind="snapshot.create", user=operator, node=worker_node, vm=vm,
                          params={"name": " before-update ", "description": "clean state"})
    assert op.params == {"name": "before-update", "description": "clean state"}
    operation_run(operation_id=str(op.id))
    op.refresh_from_db()
    assert op.status == OperationStatus.SUCCEEDED, op.error
    snapshot = Snapshot.objects.get(vm=vm)
    assert (snapshot.name, snapshot.description) == ("before-update", "clean state")
    assert snapshot.remote_id == op.result["snapshot_id"]
    vm.refresh_from_db()
    assert vm.snapshots_at is not None and vm.settings_at is not None and vm.intent

    # Our row id is accepted too, and becomes the node's id.
    restore = operation_create(kind="snapshot.restore", user=operator, node=worker_node, vm=vm,
                               params={"snapshot_id": str(snapshot.pk)})
    assert restore.params == {"snapshot_id": snapshot.remote_id, "snapshot_name": "before-update"}
    operation_run(operation_id=str(restore.id))
    assert Operation.objects.get(pk=restore.pk).status == OperationStatus.SUCCEEDED

    delete = operation_create(kind="snapshot.delete", user=operator, node=worker_node, vm=vm,
                              params={"snapshot_id": snapshot.remote_id})
    operation_run(operation_id=str(delete.id))
    assert Operation.objects.get(pk=delete.pk).status == OperationStatus.SUCCEEDED
    assert not Snapshot.objects.filter(vm=vm).exists()


def test_restoring_a_running_vm_shows_the_nodes_reason(fleet: SimFleet, worker_node: Node, operator: User) -> None:
    sim = fleet.nodes[1]
    remote = next(v for v in sim.state.vms.values() if v.state == "stopped")
    with FleetClient(sim.host, api_token=sim.api_token, port=sim.port) as client:
        snap = client.create_snapshot(remote.id, "s1")
    vm = VM.objects.get(node=worker_node, remote_id=remote.id)
    Snapshot.objects.create(vm=vm, remote_id=snap.id, name="s1", seen_at=vm.changed_at)
    remote.state = "running"  # as if started outside the dashboard since the last poll
    op = operation_create(kind="snapshot.restore", user=operator, node=worker_node, vm=vm,
                          params={"snapshot_id": snap.id})
    operation_run(operation_id=str(op.id))
    op.refresh_from_db()
    assert op.status == OperationStatus.FAILED
    assert "must be stopped to restore a snapshot" in op.error


def test_image_pull_uses_the_credentials_once_and_never_stores_them(
    fleet: SimFleet, worker_node: Node, operator: User
) -> None:
    password = "s3cr3t-registry-password"
    op = operation_create(kind="image.pull", user=operator, node=worker_node,
                          params={"reference": "ghcr.io/example/private:2.0"},
                          secrets={"username": "robot", "password": password})

    assert op.params == {"reference": "ghcr.io/example/private:2.0", "secrets_given": ["password", "username"]}
    raw = redis_connection().get(_key(op.id))
    assert raw is not None and password.encode() not in raw and b"robot" not in raw
    assert 0 < redis_connection().ttl(_key(op.id)) <= 15 * 60

    operation_run(operation_id=str(op.id))

    op.refresh_from_db()
    assert op.status == OperationStatus.SUCCEEDED, op.error
    assert redis_connection().get(_key(op.id)) is None  # consumed
    assert password not in str(Operation.objects.filter(pk=op.pk).values().get())
    task = NodeTask.objects.get(node=worker_node)  # the re-poll already shows the pull's task
    assert task.type == "oci_pull" and "ghcr.io/example/private:2.0" in task.title


def test_image_pull_fails_clearly_when_its_credentials_expired(
    fleet: SimFleet, worker_node: Node, operator: User
) -> None:
    op = operation_create(kind="image.pull", user=operator, node=worker_node,
                          params={"reference": "ghcr.io/example/private:2.0"},
                          secrets={"username": "robot", "password": "pw"})
    redis_connection().delete(_key(op.id))
    operation_run(operation_id=str(op.id))
    op.refresh_from_db()
    assert op.status == OperationStatus.FAILED and "no longer available" in op.error
    assert _received(fleet.nodes[1], "PullOCIImageOnNode") == 0


def test_image_pull_refuses_a_bad_reference(worker_node: Node, operator: User) -> None:
    for reference in ("", "UPPER/Case:tag", "ghcr.io/x:tag with space", "a" * 600, "https://ghcr.io/x"):
        with pytest.raises(OperationError):
            operation_create(kind="image.pull", user=operator, node=worker_node, params={"reference": reference})
    assert not Operation.objects.exists()


def test_secrets_are_taken_once(db: Any) -> None:
    secrets_put("op-1", {"password": "pw"})
    assert secrets_take("op-1") == {"password": "pw"}
    assert secrets_take("op-1") is None


def test_an_unexpected_handler_error_is_recorded_not_raised(
    fleet: SimFleet, worker_node: Node, operator: User
) -> None:
    vm = _vm(worker_node, fleet.nodes[1], "stopped")
    op = operation_create(kind="snapshot.create", user=operator, node=worker_node, vm=vm, params={"name": "ok"})
    # A row edited behind our back: the handler finds no name and fails inside our code.
    Operation.objects.filter(pk=op.pk).update(params={})
    assert operation_run(operation_id=str(op.id)) == "ran"
    op.refresh_from_db()
    assert op.status == OperationStatus.FAILED and op.error == "Unexpected error in the worker; see its log."
