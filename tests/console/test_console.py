"""Running a command on a VM: the page (roles, methods, validation), the handler against fleetsim, the
password's path (never stored or shown), and one command end to end through a real Celery worker."""

from __future__ import annotations

from typing import Any

import pytest
import redis
from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from fleetui.activity.models import Operation, OperationStatus
from fleetui.activity.secrets import secrets_discard
from fleetui.console.operations import OUTPUT_CAP_CHARS, _cap

PASSWORD = "s3cret-ssh-Pa55word!"


@pytest.fixture()
def world(node_factory: Any, vm_factory: Any) -> dict[str, Any]:
    node = node_factory("mac-01")
    return {"node": node, "running": vm_factory(node, "web-01", "running"),
            "stopped": vm_factory(node, "web-02", "stopped"),
            "ro_vm": vm_factory(node_factory("mac-ro", read_only=True), "ro-01", "running")}


def _data(**overrides: Any) -> dict[str, Any]:
    data = {"command": "uname -a", "ssh_user": "cideradmin", "ssh_password": PASSWORD, "timeout": 30}
    data.update(overrides)
    return data


@pytest.mark.django_db
def test_it_checks_roles(as_role: Any, world: dict[str, Any]) -> None:
    url = reverse("vm-exec", args=[world["running"].pk])
    assert as_role("anonymous").get(url).status_code == 302
    for role in ("none", "viewer"):
        assert as_role(role).get(url).status_code == 403
        assert as_role(role).post(url, _data()).status_code == 403
    assert as_role("anonymous").post(url, _data()).status_code == 302
    assert Operation.objects.count() == 0
    page = as_role("operator").get(url).content.decode()
    assert 'value="cideradmin"' in page and 'type="password"' in page


@pytest.mark.django_db
def test_it_answers_405_on_the_wrong_method(as_role: Any, world: dict[str, Any], users: dict) -> None:
    client = as_role("operator")
    assert client.put(reverse("vm-exec", args=[world["running"].pk])).status_code == 405
    op = Operation.objects.create(kind="vm.exec", node=world["node"], vm=world["running"], params={"command": "x"})
    assert client.post(reverse("vm-exec-result", args=[op.pk])).status_code == 405


@pytest.mark.django_db
@pytest.mark.parametrize(("vm_key", "overrides", "message"), [
    ("running", {"command": ""}, "This field is required"),
    ("running", {"command": "   "}, "required"),
    ("running", {"command": "echo \x00"}, "Null characters are not allowed"),
    ("running", {"command": "echo \x1b[31m"}, "control or invisible"),
    ("running", {"command": "x" * 4097}, "at most 4096"),
    ("running", {"ssh_user": "root; rm -rf /"}, "login name"),
    ("running", {"ssh_user": ""}, "required"),
    ("running", {"timeout": 0}, "greater than or equal to 1"),
    ("running", {"timeout": 601}, "less than or equal to 600"),
    ("running", {"timeout": "soon"}, "Enter a whole number"),
    ("stopped", {}, "commands run only on a running VM"),
    ("ro_vm", {}, "read-only token"),
])
def test_it_refuses_a_bad_form(as_role: Any, world: dict[str, Any], vm_key: str, overrides: dict,
                               message: str) -> None:
    response = as_role("operator").post(reverse("vm-exec", args=[world[vm_key].pk]), _data(**overrides))
    assert response.status_code == 400
    body = response.content.decode()
    assert message in body
    assert PASSWORD not in body  # never rendered back
    assert Operation.objects.count() == 0


@pytest.mark.django_db
def test_it_records_the_command_but_never_the_password(as_role: Any, world: dict[str, Any]) -> None:
    response = as_role("operator").post(reverse("vm-exec", args=[world["running"].pk]),
                                        _data(command="ls -la /Users", timeout=45))
    op = Operation.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse("vm-exec-result", args=[op.pk])
    assert op.kind == "vm.exec" and op.vm == world["running"]
    assert op.params == {"command": "ls -la /Users", "ssh_user": "cideradmin", "timeout": 45,
                         "secrets_given": ["password"]}
    assert PASSWORD not in repr(list(Operation.objects.values()))
    # The secret store holds it encrypted, never in clear.
    conn = redis.Redis.from_url(settings.REDIS_URL)
    try:
        assert conn.exists(f"fleetui:op-secrets:{op.pk}")
        for key in conn.scan_iter("*"):
            if conn.type(key) == b"string":
                assert PASSWORD.encode() not in (conn.get(key) or b"")
    finally:
        secrets_discard(op.pk)  # no worker runs it here: leave no secret behind for other tests
    page = as_role("operator").get(reverse("vm-exec-result", args=[op.pk])).content.decode()
    assert PASSWORD not in page and "ls -la /Users" in page


@pytest.mark.django_db
def test_the_result_page_polls_until_done_and_shows_output_inert(as_role: Any, world: dict[str, Any]) -> None:
    op = Operation.objects.create(kind="vm.exec", node=world["node"], vm=world["running"], vm_name="web-01",
                                  params={"command": "cat x", "ssh_user": "cideradmin", "timeout": 30})
    url = reverse("vm-exec-result", args=[op.pk])
    client = as_role("viewer")
    partial = client.get(url, HTTP_HX_REQUEST="true")
    assert partial.status_code == 200 and 'hx-trigger="every 1s"' in partial.content.decode()
    op.status = OperationStatus.SUCCEEDED
    op.finished_at = timezone.now()
    op.result = {"exit_code": 2, "success": False, "duration": 0.25, "stdout": "<script>alert(1)</script>\n",
                 "stderr": "<img src=x onerror=alert(2)>", "stdout_truncated": True, "stderr_truncated": False}
    op.save()
    partial = client.get(url, HTTP_HX_REQUEST="true")
    assert partial.status_code == 286
    body = partial.content.decode()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body and "<script>alert" not in body
    assert "&lt;img src=x onerror=alert(2)&gt;" in body and "<img src=x" not in body
    assert "exit 2" in body and "0.250 s" in body and "Output cut at" in body


def test_output_is_capped() -> None:
    assert _cap("a" * 10) == ("a" * 10, False)
    text, cut = _cap("b" * (OUTPUT_CAP_CHARS + 5))
    assert cut and len(text) == OUTPUT_CAP_CHARS


@pytest.mark.django_db
def test_the_handler_runs_the_command_on_fleetsim(sim_node: Any, run_op: Any, users: dict) -> None:
    vm = sim_node.vm(state="stopped")
    sim_node.sim.state.vms[vm.remote_id].state = "running"
    sim_node.poll()
    vm.refresh_from_db()
    op = run_op("vm.exec", user=users["operator"], node=sim_node.node, vm=vm,
                params={"command": "echo hello; echo oops >&2; whoami; exit 3", "ssh_user": "builder", "timeout": 10},
                secrets={"password": PASSWORD})
    assert op.status == OperationStatus.SUCCEEDED, op.error
    assert op.result["exit_code"] == 3 and op.result["success"] is False
    assert op.result["stdout"] == "hello\nbuilder\n" and op.result["stderr"] == "oops\n"
    assert op.result["duration"] >= 0
    assert PASSWORD not in repr(op.result) and PASSWORD not in repr(op.params)

    op = run_op("vm.exec", user=users["operator"], node=sim_node.node, vm=vm,
                params={"command": "sleep 30", "ssh_user": "cideradmin", "timeout": 1})
    assert op.status == OperationStatus.SUCCEEDED
    assert op.result["exit_code"] == 124 and "timed out" in op.result["stderr"]


@pytest.mark.django_db
def test_a_command_on_a_stopped_vm_is_a_failed_operation(sim_node: Any, run_op: Any, users: dict) -> None:
    vm = sim_node.vm(state="stopped")
    op = run_op("vm.exec", user=users["operator"], node=sim_node.node, vm=vm,
                params={"command": "uptime", "ssh_user": "cideradmin", "timeout": 5})
    assert op.status == OperationStatus.FAILED
    assert "did not run" in op.error and "not running" in op.error


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_command_runs_through_a_real_worker(celery_worker: Any, sim_fleet: Any, register_sim: Any,
                                              as_role: Any, wait_for: Any) -> None:
    fleet = sim_fleet(nodes=1, vms_per_node=2, seed=3, transition_seconds=0.1, task_seconds=0.4)
    sim = fleet.nodes[0]
    node = register_sim(sim)
    from fleetui.nodes.services import node_poll

    assert node_poll(node_id=node.pk, force=True).ok
    vm = node.vms.order_by("name").first()
    sim.state.vms[vm.remote_id].state = "running"
    assert node_poll(node_id=node.pk, force=True).ok
    client = as_role("operator")
    response = client.post(reverse("vm-exec", args=[vm.pk]),
                           _data(command="sw_vers -productName; sleep 1; echo done", timeout=20))
    assert response.status_code == 302
    op = Operation.objects.get(kind="vm.exec")
    # The page answers at once while the command runs (it takes a second on the node).
    assert client.get(response["Location"]).status_code == 200
    wait_for(lambda: Operation.objects.get(pk=op.pk).is_finished, timeout=20, message="the command to finish")
    op.refresh_from_db()
    assert op.status == OperationStatus.SUCCEEDED, op.error
    assert op.result["stdout"] == "macOS\ndone\n" and op.result["exit_code"] == 0
    assert op.started_at and op.finished_at and op.duration_seconds >= 1
    assert PASSWORD not in celery_worker.log()
    assert PASSWORD not in repr(list(Operation.objects.values()))
