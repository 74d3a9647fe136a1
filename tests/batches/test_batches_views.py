"""Bulk actions and fan-out commands through their pages, with nodes and VMs built with the ORM (no
worker: operations stay pending unless a test runs or settles them): roles, methods, the review
page's skips, bad input (a clear message and nothing recorded), the batch cap, "select all
matching", cancellation against the worker's claim, the live partial, and the exports."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta
from typing import Any

import pytest
from batchdata import make_node, make_vm
from django.db.models import Count
from django.urls import reverse
from django.utils import timezone

from fleetui.activity.models import Operation, OperationStatus
from fleetui.activity.secrets import _key as secret_key
from fleetui.activity.services import operation_run
from fleetui.batches.models import Batch, BatchItem
from fleetui.batches.selectors import MAX_BATCH_VMS
from fleetui.batches.services import CANCELLED_ERROR, batch_cancel, batch_create
from fleetui.nodes.locks import redis_connection
from fleetui.vms.models import VM

PASSWORD = "fan-0ut-Secret-pw!"
NEW = "/batches/new/"


@pytest.fixture()
def world(db: Any) -> dict[str, Any]:
    a, b = make_node("mac-a"), make_node("mac-b")
    offline = make_node("mac-off", last_success_at=timezone.now() - timedelta(hours=1),
                        last_poll_at=timezone.now())
    ro = make_node("mac-ro", read_only=True)
    return {
        "a_stopped": make_vm(a, "a-stopped"), "a_running": make_vm(a, "a-running", "running"),
        "a_paused": make_vm(a, "a-paused", "paused"),
        "b_stopped": make_vm(b, "b-stopped"), "b_running": make_vm(b, "b-running", "running",
                                                                   expires_at=timezone.now() + timedelta(hours=1)),
        "b_gone": make_vm(b, "b-gone", gone_at=timezone.now()),
        "off": make_vm(offline, "off-stopped"), "ro": make_vm(ro, "ro-stopped"),
    }


def _ids(world: dict[str, Any], *keys: str) -> list[int]:
    return [world[key].pk for key in keys]


def _nothing_recorded() -> None:
    assert Batch.objects.count() == 0
    assert BatchItem.objects.count() == 0
    assert Operation.objects.count() == 0


# ---------------------------------------------------------------- roles and methods


def test_it_checks_roles(as_role: Any, world: dict[str, Any]) -> None:
    data = {"action": "start", "vm": _ids(world, "a_stopped"), "confirmed": "1"}
    assert as_role("anonymous").post(NEW, data)["Location"].startswith("/accounts/login/")
    assert as_role("anonymous").get("/batches/")["Location"].startswith("/accounts/login/")
    for role in ("none", "viewer"):
        assert as_role(role).post(NEW, data).status_code == 403
    assert as_role("none").get("/batches/").status_code == 403
    _nothing_recorded()
    assert as_role("viewer").get("/batches/").status_code == 200
    response = as_role("operator").post(NEW, data)
    assert response.status_code == 302
    batch = Batch.objects.get()
    assert response["Location"] == reverse("batch-detail", args=[batch.pk])
    detail, cancel = reverse("batch-detail", args=[batch.pk]), reverse("batch-cancel", args=[batch.pk])
    export = reverse("batch-export", args=[batch.pk])
    viewer = as_role("viewer")
    assert viewer.get(detail).status_code == 200
    assert viewer.get(export).status_code == 200
    assert b"Cancel the rest" not in viewer.get(detail).content
    assert viewer.post(cancel).status_code == 403
    assert Operation.objects.get().status == OperationStatus.PENDING
    assert as_role("none").get(detail).status_code == 403
    assert as_role("admin").post(cancel).status_code == 302


def test_it_answers_405_on_the_wrong_method(as_role: Any, world: dict[str, Any]) -> None:
    client = as_role("operator")
    batch = Batch.objects.create(action="start", username="x")
    assert client.get(NEW).status_code == 405
    assert client.post("/batches/").status_code == 405
    assert client.get(reverse("batch-cancel", args=[batch.pk])).status_code == 405
    assert client.post(reverse("batch-detail", args=[batch.pk])).status_code == 405
    assert client.post(reverse("batch-export", args=[batch.pk])).status_code == 405
    assert client.get(reverse("batch-detail", args=["0" * 8 + "-0000-0000-0000-" + "0" * 12])).status_code == 404


# ---------------------------------------------------------------- the VM list's selection


def test_the_vm_list_offers_selection_to_operators_only(as_role: Any, world: dict[str, Any]) -> None:
    page = as_role("operator").get("/vms/?state=stopped&q=stop").content.decode()
    assert 'id="bulk-form"' in page and 'action="/batches/new/"' in page
    assert page.count('class="bulk-vm"') == 4  # a-stopped, b-stopped, off-stopped, ro-stopped (gone hidden)
    assert f'name="vm" value="{world["a_stopped"].pk}" form="bulk-form"' in page
    # "select all matching" carries the filter (not the page or the sort).
    assert 'name="match" form="bulk-form" value="?state=stopped&amp;q=stop"' in page
    assert "Select all 4 VMs matching this filter" in page
    partial = as_role("operator").get("/vms/?state=stopped", headers={"HX-Request": "true"}).content.decode()
    assert 'form="bulk-form"' in partial and 'value="?state=stopped"' in partial
    viewer_page = as_role("viewer").get("/vms/").content.decode()
    assert "bulk-form" not in viewer_page and "bulk-vm" not in viewer_page


def test_select_all_matching_takes_every_page_of_the_filter(as_role: Any, world: dict[str, Any]) -> None:
    node = make_node("mac-many")
    VM.objects.bulk_create([VM(node=node, remote_id=f"r{i}", name=f"many-{i:03d}", state="stopped",
                               last_seen_at=timezone.now(), changed_at=timezone.now()) for i in range(70)])
    make_vm(node, "many-running", "running")
    response = as_role("operator").post(NEW, {"action": "start", "scope": "matching",
                                              "match": f"?node={node.pk}&state=stopped&page=2&sort=-name"})
    assert response.status_code == 200
    page = response.content.decode()
    assert page.count('data-plan="run"') == 70  # every page, not the 50 of one
    assert "many-running" not in page
    assert page.count('<input type="hidden" name="vm"') == 70
    _nothing_recorded()


def test_it_caps_the_batch_size(as_role: Any, world: dict[str, Any]) -> None:
    node = make_node("mac-huge")
    VM.objects.bulk_create([VM(node=node, remote_id=f"h{i}", name=f"huge-{i:03d}", state="stopped",
                               last_seen_at=timezone.now(), changed_at=timezone.now())
                            for i in range(MAX_BATCH_VMS + 1)])
    client = as_role("operator")
    response = client.post(NEW, {"action": "start", "scope": "matching", "match": f"?node={node.pk}"})
    assert response.status_code == 400
    assert f"{MAX_BATCH_VMS + 1} VMs are selected, but a batch acts on at most {MAX_BATCH_VMS}" in \
        response.content.decode()
    ids = list(VM.objects.filter(node=node).values_list("pk", flat=True))
    response = client.post(NEW, {"action": "start", "vm": ids, "confirmed": "1"})
    assert response.status_code == 400 and b"at most 500" in response.content
    _nothing_recorded()


# ---------------------------------------------------------------- the review page and its skips


def test_the_review_page_says_what_each_vm_gets(as_role: Any, world: dict[str, Any]) -> None:
    Operation.objects.create(kind="vm.stop", node=world["b_stopped"].node, vm=world["b_stopped"])  # busy
    keys = ("a_stopped", "a_running", "a_paused", "b_stopped", "b_gone", "off", "ro")
    response = as_role("operator").post(NEW, {"action": "start", "vm": _ids(world, *keys)})
    assert response.status_code == 200
    page = response.content.decode()
    assert "2</strong> of 7 VMs" in page and "5 will be skipped" in page
    for reason in ("Already running.", "An operation on this VM is still running.",
                   "The VM is no longer on its node.", "The node is offline.", "read-only"):
        assert reason in page, reason
    assert "Resume VM" in page  # a paused VM starts by resuming
    assert 'id="batch-confirm">Start 2 VMs</button>' in page
    assert Batch.objects.count() == 0 and Operation.objects.count() == 1


@pytest.mark.parametrize(("data", "message"), [
    ({}, "Choose what to do"),
    ({"action": "", "vm": ["1"]}, "Choose what to do"),
    ({"action": "reboot", "vm": ["1"]}, "Select a valid choice"),
    ({"action": "start"}, "Select at least one VM"),
    ({"action": "start", "vm": ["abc"]}, "not a list of VMs"),
    ({"action": "start", "vm": ["-1"]}, "not a list of VMs"),
    ({"action": "start", "vm": ["99999999999999"]}, "not a list of VMs"),
    ({"action": "start", "vm": ["999999"], "confirmed": "1"}, "None of the selected VMs exists any more"),
    ({"action": "start", "vm": ["999999"]}, "None of the selected VMs exists any more"),
    ({"action": "start", "scope": "matching", "match": "?q=no-such-vm"}, "No VM matches this filter"),
])
def test_it_refuses_a_bad_selection(as_role: Any, world: dict[str, Any], data: dict, message: str) -> None:
    response = as_role("operator").post(NEW, data)
    assert response.status_code == 400
    assert message in response.content.decode()
    _nothing_recorded()


@pytest.mark.parametrize(("action", "keys", "fields", "message"), [
    ("start", ("a_running", "b_running"), {}, "Nothing was done: none of the selected VMs can do this now."),
    ("suspend", ("a_stopped",), {}, "Only a running VM can be suspended (it is stopped)."),
    ("delete", ("a_running",), {"confirm": "delete 0"}, "Stop it before deleting it (it is running)."),
    ("snapshot", ("a_stopped",), {"snapshot_name": ""}, "Give the snapshots a name."),
    ("snapshot", ("a_stopped",), {"snapshot_name": "bad\x1bname"}, "control or invisible"),
    ("ttl_set", ("a_stopped",), {"amount": "0", "unit": "hours"}, "greater than or equal to 1"),
    ("ttl_set", ("a_stopped",), {"amount": "91", "unit": "days"}, "between 1 minute and 90 days"),
    ("ttl_set", ("a_stopped",), {"amount": "2", "unit": "weeks"}, "Select a valid choice"),
    ("ttl_extend", ("a_stopped",), {"amount": "1", "unit": "hours"}, "It has no lease to extend; set one first."),
    ("delete", ("a_stopped", "b_stopped"), {"confirm": "delete 1"}, "Type delete 2 exactly"),
    ("delete", ("a_stopped",), {"confirm": ""}, "Type delete 1 exactly"),
    ("exec", ("a_running",), {"command": "", "ssh_user": "cideradmin", "timeout": "30"}, "Command is required"),
    ("exec", ("a_running",), {"command": "ls", "ssh_user": "root; rm", "timeout": "30"}, "login name"),
    ("exec", ("a_running",), {"command": "ls", "ssh_user": "cideradmin", "timeout": "601"}, "less than or equal"),
    ("exec", ("a_stopped",), {"command": "ls", "ssh_user": "cideradmin", "timeout": "30"},
     "Commands run only on a running VM (it is stopped)."),
])
def test_it_refuses_bad_parameters(as_role: Any, world: dict[str, Any], action: str, keys: tuple[str, ...],
                                   fields: dict, message: str) -> None:
    data = {"action": action, "vm": _ids(world, *keys), "confirmed": "1", "ssh_password": PASSWORD, **fields}
    response = as_role("operator").post(NEW, data)
    assert response.status_code == 400
    page = response.content.decode()
    assert message in page
    assert PASSWORD not in page  # never rendered back
    _nothing_recorded()


# ---------------------------------------------------------------- recording a batch


@pytest.mark.parametrize(("action", "fields", "kind", "params"), [
    ("stop", {}, "vm.stop", {}),
    ("suspend", {}, "vm.suspend", {}),
    ("snapshot", {"snapshot_name": " before-upgrade ", "snapshot_description": "bulk"}, "snapshot.create",
     {"name": "before-upgrade", "description": "bulk"}),
    ("ttl_set", {"amount": "2", "unit": "hours"}, "vm.lease_set", {"ttl_seconds": 7200}),
    ("ttl_extend", {"amount": "30", "unit": "minutes"}, "vm.lease_extend", {"extend_seconds": 1800}),
])
def test_it_records_one_operation_per_vm(as_role: Any, world: dict[str, Any], action: str, fields: dict,
                                         kind: str, params: dict, django_capture_on_commit_callbacks: Any) -> None:
    with django_capture_on_commit_callbacks(execute=False) as queued:
        response = as_role("operator").post(NEW, {"action": action, "vm": _ids(world, "b_running", "b_gone"),
                                                  "confirmed": "1", **fields})
    assert response.status_code == 302
    batch = Batch.objects.get()
    ops = list(Operation.objects.filter(batch_item__batch=batch))
    assert [op.kind for op in ops] == [kind] and ops[0].vm == world["b_running"]
    assert ops[0].params == params and ops[0].username == "operator1"
    assert len(queued) == 1  # enqueued after the commit, like a single click
    skipped = BatchItem.objects.get(batch=batch, operation__isnull=True)
    assert skipped.vm == world["b_gone"] and skipped.skipped_reason == "The VM is no longer on its node."


def test_a_delete_needs_the_count_typed(as_role: Any, world: dict[str, Any]) -> None:
    client = as_role("operator")
    review = client.post(NEW, {"action": "delete", "vm": _ids(world, "a_stopped", "b_stopped", "a_running")})
    assert "Type delete 2 to confirm" in review.content.decode()
    response = client.post(NEW, {"action": "delete", "vm": _ids(world, "a_stopped", "b_stopped", "a_running"),
                                 "confirmed": "1", "confirm": " Delete  2 "})
    assert response.status_code == 302
    assert sorted(Operation.objects.values_list("kind", "vm_name")) == [("vm.delete", "a-stopped"),
                                                                         ("vm.delete", "b-stopped")]


def test_a_fan_out_keeps_the_password_out_of_every_row(as_role: Any, world: dict[str, Any]) -> None:
    client = as_role("operator")
    response = client.post(NEW, {"action": "exec", "vm": _ids(world, "a_running", "b_running", "a_stopped"),
                                 "confirmed": "1", "command": "uname -a", "ssh_user": "cideradmin",
                                 "ssh_password": PASSWORD, "timeout": "30"})
    assert response.status_code == 302
    batch = Batch.objects.get()
    assert batch.params == {"command": "uname -a", "ssh_user": "cideradmin", "timeout": 30}
    ops = list(Operation.objects.all())
    assert len(ops) == 2
    conn = redis_connection()
    for op in ops:
        assert op.params == {"command": "uname -a", "ssh_user": "cideradmin", "timeout": 30,
                             "secrets_given": ["password"]}
        stored = conn.get(secret_key(op.pk))
        assert stored and PASSWORD.encode() not in stored  # encrypted, one copy per operation
    for row in [*Operation.objects.values(), *Batch.objects.values(), *BatchItem.objects.values()]:
        assert PASSWORD not in json.dumps(row, default=str)
    page = client.get(reverse("batch-detail", args=[batch.pk])).content.decode()
    assert "uname -a" in page and PASSWORD not in page
    # Cancelled before any worker took them: their secrets go at once, not at their TTL.
    assert batch_cancel(batch=batch, user=None) == 2
    assert all(conn.get(secret_key(op.pk)) is None for op in ops)


# ---------------------------------------------------------------- cancelling


def test_cancel_marks_only_pending_operations_and_the_worker_skips_them(as_role: Any, world: dict[str, Any],
                                                                          users: dict) -> None:
    batch = batch_create(action="start", vm_ids=_ids(world, "a_stopped", "b_stopped", "a_paused"),
                         user=users["operator"])
    first, second, third = Operation.objects.filter(batch_item__batch=batch).order_by("batch_item__position")
    # A worker has claimed the first already (its own conditional UPDATE), the second has finished.
    assert Operation.objects.filter(pk=first.pk, status="pending").update(status="running") == 1
    Operation.objects.filter(pk=second.pk).update(status="succeeded", finished_at=timezone.now())
    response = as_role("operator").post(reverse("batch-cancel", args=[batch.pk]))
    assert response.status_code == 302
    statuses = dict(Operation.objects.values_list("pk", "status"))
    assert statuses == {first.pk: "running", second.pk: "succeeded", third.pk: "cancelled"}
    third.refresh_from_db()
    assert third.error == CANCELLED_ERROR and third.finished_at is not None
    batch.refresh_from_db()
    assert batch.cancelled_at is not None and batch.cancelled_by == "operator1"
    # The queued task arrives later: the claim (pending -> running) finds nothing, the node is never called
    # (this node's host is not even reachable: a call would fail the operation, not skip it).
    assert operation_run(operation_id=str(third.pk)) == "skipped"
    third.refresh_from_db()
    assert third.status == "cancelled"
    page = as_role("operator").get(reverse("batch-detail", args=[batch.pk])).content.decode()
    assert 'id="batch-cancelled"' in page and "Cancel the rest" not in page
    # Cancelling again changes nothing.
    assert as_role("operator").post(reverse("batch-cancel", args=[batch.pk])).status_code == 302
    assert dict(Operation.objects.values_list("pk", "status")) == statuses


def test_a_batch_with_nothing_left_to_cancel_is_not_marked_cancelled(world: dict[str, Any], users: dict) -> None:
    batch = batch_create(action="start", vm_ids=_ids(world, "b_stopped"), user=users["operator"])
    Operation.objects.filter(batch_item__batch=batch).update(status="running")
    assert batch_cancel(batch=batch, user=users["operator"]) == 0
    batch.refresh_from_db()
    assert batch.cancelled_at is None
    assert Operation.objects.get().status == "running"


# ---------------------------------------------------------------- the live page and the exports


def test_the_partial_polls_until_every_operation_settled(as_role: Any, world: dict[str, Any], users: dict) -> None:
    batch = batch_create(action="start", vm_ids=_ids(world, "a_stopped", "b_stopped", "a_running"),
                         user=users["operator"])
    url = reverse("batch-detail", args=[batch.pk])
    client = as_role("viewer")
    live = client.get(url, headers={"HX-Request": "true"})
    assert live.status_code == 200 and 'hx-trigger="every 1s"' in live.content.decode()
    assert "HX-Request" in live["Vary"]
    ops = Operation.objects.filter(batch_item__batch=batch).order_by("batch_item__position")
    Operation.objects.filter(pk=ops[0].pk).update(status="succeeded", started_at=timezone.now(),
                                                  finished_at=timezone.now())
    assert client.get(url, headers={"HX-Request": "true"}).status_code == 200
    Operation.objects.filter(pk=ops[1].pk).update(status="failed", error="the node said no <b>",
                                                  finished_at=timezone.now())
    done = client.get(url, headers={"HX-Request": "true"})
    assert done.status_code == 286
    body = done.content.decode()
    assert "hx-trigger" not in body and 'data-count="failures">1 with failures' in body
    assert "the node said no &lt;b&gt;" in body
    only = client.get(url + "?only=failures").content.decode()
    assert only.count('data-status="failed"') == 1 and 'data-status="succeeded"' not in only
    listing = client.get("/batches/").content.decode()
    assert "1 succeeded" in listing and "1 failed" in listing and "1 skipped" in listing


def _exec_batch(world: dict[str, Any], users: dict) -> Batch:
    batch = batch_create(action="exec", vm_ids=_ids(world, "a_running", "b_running", "a_stopped"),
                         params={"command": "echo hi", "ssh_user": "cideradmin", "timeout": 30},
                         user=users["operator"])
    now = timezone.now()
    ops = Operation.objects.filter(batch_item__batch=batch).order_by("batch_item__position")
    outcomes = [{"exit_code": 0, "success": True, "duration": 0.25, "stdout": "=cmd|' /C calc'!A0\n",
                 "stderr": ""},
                {"exit_code": 3, "success": False, "duration": 1.5, "stdout": 'a,"quoted"\nline2',
                 "stderr": "boom\n"}]
    for op, result in zip(ops, outcomes, strict=True):
        Operation.objects.filter(pk=op.pk).update(status="succeeded", result=result, started_at=now,
                                                  finished_at=now)
    return batch


def test_the_exports_carry_each_vms_result_escaped(as_role: Any, world: dict[str, Any], users: dict) -> None:
    batch = _exec_batch(world, users)
    client = as_role("viewer")
    url = reverse("batch-export", args=[batch.pk])
    response = client.get(url + "?format=csv")
    assert response.streaming and response["Content-Type"].startswith("text/csv")
    assert response["Content-Disposition"].startswith('attachment; filename="batch-exec-')
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert [(r["vm"], r["status"], r["exit_code"]) for r in rows] == [
        ("a-running", "succeeded", "0"), ("a-stopped", "skipped", ""), ("b-running", "succeeded", "3")]
    assert rows[0]["stdout"] == "'=cmd|' /C calc'!A0\n"  # a formula stays inert in a spreadsheet
    assert rows[2]["stdout"] == 'a,"quoted"\nline2' and rows[2]["duration_seconds"] == "1.5"
    assert rows[1]["error"] == "Commands run only on a running VM (it is stopped)."
    data = json.loads(b"".join(client.get(url + "?format=json").streaming_content))
    assert data["action"] == "exec" and data["params"]["command"] == "echo hi"
    assert [(r["vm"], r["exit_code"], r["stderr"]) for r in data["results"]] == [
        ("a-running", 0, ""), ("a-stopped", None, ""), ("b-running", 3, "boom\n")]
    assert data["results"][0]["stdout"] == "=cmd|' /C calc'!A0\n"  # JSON keeps it exact
    failures = json.loads(b"".join(client.get(url + "?format=json&only=failures").streaming_content))
    assert [r["vm"] for r in failures["results"]] == ["b-running"]
    bad = client.get(url + "?format=xml")
    assert bad.status_code == 400 and b"csv or json" in bad.content


def test_the_results_view_filters_to_the_failures(as_role: Any, world: dict[str, Any], users: dict) -> None:
    batch = _exec_batch(world, users)
    url = reverse("batch-detail", args=[batch.pk])
    page = as_role("viewer").get(url).content.decode()
    assert 'data-exit="0"' in page and 'data-exit="3"' in page and "1.500 s" in page
    assert "=cmd|&#x27; /C calc&#x27;!A0" in page and "boom" in page
    only = as_role("viewer").get(url + "?only=failures").content.decode()
    assert 'data-exit="3"' in only and 'data-exit="0"' not in only and 'data-vm="a-stopped"' not in only
    assert f'href="/batches/{batch.pk}/export/?format=csv&amp;only=failures"' in only


def test_counts_are_derived_from_the_operations(world: dict[str, Any], users: dict) -> None:
    batch = batch_create(action="stop", vm_ids=_ids(world, "a_running", "b_running", "a_stopped"),
                         user=users["operator"])
    counts = dict(BatchItem.objects.filter(batch=batch).values_list("operation__status").annotate(n=Count("pk")))
    assert counts == {"pending": 2, None: 1}


def test_a_second_batch_skips_the_vms_the_first_is_still_working_on(world: dict[str, Any], users: dict) -> None:
    first = batch_create(action="stop", vm_ids=_ids(world, "a_running"), user=users["operator"])
    second = batch_create(action="snapshot", vm_ids=_ids(world, "a_running", "b_running"),
                          params={"name": "s1", "description": ""}, user=users["operator"])
    item = BatchItem.objects.get(batch=second, vm=world["a_running"])
    assert item.operation is None and item.skipped_reason == "An operation on this VM is still running."
    assert Operation.objects.filter(batch_item__batch=first).count() == 1
    assert Operation.objects.filter(batch_item__batch=second).count() == 1


def test_the_live_partial_costs_the_same_queries_for_any_batch_size(as_role: Any, world: dict[str, Any],
                                                                    users: dict,
                                                                    django_assert_num_queries: Any) -> None:
    node = make_node("mac-many")
    VM.objects.bulk_create([VM(node=node, remote_id=f"r{i}", name=f"many-{i:03d}", state="stopped",
                               last_seen_at=timezone.now(), changed_at=timezone.now()) for i in range(60)])
    small = batch_create(action="start", vm_ids=_ids(world, "a_stopped"), user=users["operator"])
    big = batch_create(action="start", vm_ids=list(VM.objects.filter(node=node).values_list("pk", flat=True)),
                       user=users["operator"])
    client = as_role("viewer")
    client.get("/batches/")  # the session is read once before counting
    for batch in (small, big):
        # session, user, the user's groups (role), the batch, its items with their operations and VMs
        with django_assert_num_queries(5):
            response = client.get(reverse("batch-detail", args=[batch.pk]), headers={"HX-Request": "true"})
        assert response.status_code == 200
