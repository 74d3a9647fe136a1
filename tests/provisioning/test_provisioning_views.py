"""Pages of the provisioning app: roles, methods, validation (nothing recorded on a bad form), and what
they show. Pages only read the database, so rows are built with the ORM here."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from django.urls import reverse
from django.utils import timezone

from fleetui.activity.models import Operation, OperationStatus
from fleetui.images.models import IPSW, NodeTask, OCIImage
from fleetui.provisioning.selectors import node_capacities, suggested_node

pytestmark = pytest.mark.django_db


@pytest.fixture()
def world(node_factory: Any, vm_factory: Any) -> dict[str, Any]:
    now = timezone.now()
    node = node_factory("mac-01", resources={"availableCPU": 4, "availableMemoryGB": 20.0, "availableDiskGB": 300,
                                             "maxVMs": 2, "runningVMs": 1}, resources_at=now)
    roomy = node_factory("mac-02", resources={"availableCPU": 8, "availableMemoryGB": 48.0, "availableDiskGB": 900,
                                              "maxVMs": 2, "runningVMs": 0}, resources_at=now)
    ro = node_factory("mac-ro", read_only=True, resources={"availableMemoryGB": 99.0}, resources_at=now)
    OCIImage.objects.create(node=node, reference="ghcr.io/acme/base:15", seen_at=now)
    IPSW.objects.create(node=node, path="/ipsw/UniversalMac_15.2.ipsw", name="macOS 15.2", version="15.2", seen_at=now)
    return {
        "node": node, "roomy": roomy, "ro": ro,
        "stopped": vm_factory(node, "build-01", "stopped"),
        "running": vm_factory(node, "build-02", "running"),
        "ro_vm": vm_factory(ro, "ro-01", "stopped"),
    }


def _create_data(world: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    data = {"node": world["node"].pk, "name": "ci-new-01", "cpu_count": 4, "memory_gb": 8, "disk_gb": 64,
            "source": "image", "oci_image": "ghcr.io/acme/base:15", "pull_reference": "", "ipsw_path": ""}
    data.update(overrides)
    return data


# ------------------------------------------------------------------ roles and methods

GET_PAGES = [
    ("vm-create", None, "operator"),
    ("vm-clone", "stopped", "operator"),
    ("vm-rename", "stopped", "operator"),
    ("vm-delete", "stopped", "operator"),
    ("vm-settings", "stopped", "viewer"),
    ("vm-expiring", None, "viewer"),
]


@pytest.mark.parametrize(("name", "vm_key", "needed"), GET_PAGES)
def test_it_checks_roles_on_pages(as_role: Any, world: dict[str, Any], name: str, vm_key: str | None,
                                  needed: str) -> None:
    url = reverse(name, args=[world[vm_key].pk]) if vm_key else reverse(name)
    assert as_role("anonymous").get(url).status_code == 302
    assert as_role("none").get(url).status_code == 403
    assert as_role("viewer").get(url).status_code == (200 if needed == "viewer" else 403)
    assert as_role("operator").get(url).status_code == 200


MUTATIONS = [
    ("vm-create", None, lambda w: _create_data(w)),
    ("vm-clone", "stopped", lambda w: {"new_name": "build-01-copy"}),
    ("vm-rename", "stopped", lambda w: {"new_name": "build-renamed"}),
    ("vm-delete", "stopped", lambda w: {"confirm_name": "build-01"}),
    ("vm-settings-update", "stopped", lambda w: {"cpu_count": 6, "memory_gb": 8, "display_width": "",
                                                 "display_height": "", "intent": ""}),
    ("vm-lease", "stopped", lambda w: {"action": "set", "amount": 2, "unit": "hours"}),
]


@pytest.mark.parametrize(("name", "vm_key", "data"), MUTATIONS)
def test_it_lets_only_operators_mutate(as_role: Any, world: dict[str, Any], name: str, vm_key: str | None,
                                       data: Any) -> None:
    url = reverse(name, args=[world[vm_key].pk]) if vm_key else reverse(name)
    payload = data(world)
    for role, status in (("anonymous", 302), ("none", 403), ("viewer", 403)):
        response = as_role(role).post(url, payload)
        assert response.status_code == status
        if role == "anonymous":
            assert reverse("login") in response["Location"]
    assert Operation.objects.count() == 0
    response = as_role("operator").post(url, payload)
    assert response.status_code == 302, response.content.decode()[:2000]
    op = Operation.objects.get()
    assert response["Location"] == reverse("vm-operation-follow", args=[op.pk])
    assert op.status == OperationStatus.PENDING
    assert op.username == "operator1"


@pytest.mark.parametrize(("name", "vm_key", "method"), [
    ("vm-create", None, "put"), ("vm-settings-update", "stopped", "get"), ("vm-lease", "stopped", "get"),
    ("vm-expiring", None, "post"), ("vm-settings", "stopped", "post"), ("vm-delete", "stopped", "delete"),
])
def test_it_answers_405_on_the_wrong_method(as_role: Any, world: dict[str, Any], name: str, vm_key: str | None,
                                            method: str) -> None:
    url = reverse(name, args=[world[vm_key].pk]) if vm_key else reverse(name)
    assert getattr(as_role("operator"), method)(url).status_code == 405


# ------------------------------------------------------------------ create

@pytest.mark.parametrize(("overrides", "message"), [
    ({"name": ""}, "This field is required"),
    ({"name": "bad\x07name"}, "control or invisible"),
    ({"name": "x" * 65}, "at most 64"),
    ({"name": "evil\u202ename"}, "control or invisible"),
    ({"cpu_count": 0}, "greater than or equal to 1"),
    ({"cpu_count": 13}, "has 12 CPU cores"),
    ({"memory_gb": 1}, "greater than or equal to 2"),
    ({"disk_gb": 10**9}, "less than or equal to"),
    ({"source": "image", "oci_image": ""}, "Choose one of the node"),
    ({"source": "pull", "pull_reference": "not a reference"}, "not a valid OCI reference"),
    ({"source": "pull", "pull_reference": "UPPER/Case:tag"}, "not a valid OCI reference"),
    ({"source": "ipsw", "ipsw_path": ""}, "Choose one of the node"),
    ({"source": "tape"}, "Select a valid choice"),
])
def test_it_refuses_a_bad_create_form(as_role: Any, world: dict[str, Any], overrides: dict, message: str) -> None:
    response = as_role("operator").post(reverse("vm-create"), _create_data(world, **overrides))
    assert response.status_code == 400
    assert message in response.content.decode()
    assert Operation.objects.count() == 0


def test_it_refuses_an_image_or_ipsw_another_node_has(as_role: Any, world: dict[str, Any]) -> None:
    client = as_role("operator")
    response = client.post(reverse("vm-create"), _create_data(world, node=world["roomy"].pk))
    assert response.status_code == 400 and "does not have ghcr.io/acme/base:15" in response.content.decode()
    response = client.post(reverse("vm-create"), _create_data(
        world, node=world["roomy"].pk, source="ipsw", ipsw_path="/ipsw/UniversalMac_15.2.ipsw"))
    assert response.status_code == 400 and "does not have this IPSW" in response.content.decode()
    assert Operation.objects.count() == 0


def test_it_refuses_a_read_only_node(as_role: Any, world: dict[str, Any]) -> None:
    response = as_role("operator").post(reverse("vm-create"), _create_data(world, node=world["ro"].pk))
    assert response.status_code == 400 and "read-only token" in response.content.decode()
    response = as_role("operator").post(reverse("vm-rename", args=[world["ro_vm"].pk]), {"new_name": "x1"})
    assert response.status_code == 400 and "read-only token" in response.content.decode()
    assert Operation.objects.count() == 0


def test_it_records_the_create_parameters(as_role: Any, world: dict[str, Any]) -> None:
    response = as_role("operator").post(reverse("vm-create"), _create_data(
        world, source="pull", pull_reference="ghcr.io/acme/new-image:1.0", memory_gb=16))
    assert response.status_code == 302
    op = Operation.objects.get()
    assert op.kind == "vm.create" and op.node == world["node"] and op.vm is None
    assert op.params == {"name": "ci-new-01", "cpu_count": 4, "memory_mb": 16384, "disk_gb": 64,
                         "oci_image": "ghcr.io/acme/new-image:1.0"}


def test_it_shows_capacity_and_suggests_the_roomiest_node(as_role: Any, world: dict[str, Any]) -> None:
    capacities = node_capacities()
    assert suggested_node(capacities) == world["roomy"]  # the read-only node has more memory but cannot create
    assert [c.node.name for c in capacities][:2] == ["mac-02", "mac-01"]
    page = as_role("operator").get(reverse("vm-create")).content.decode()
    assert "most room" in page and "48.0 GB" in page and "read-only token" in page
    assert f'<option value="{world["roomy"].pk}" selected>' in page


# ------------------------------------------------------------------ clone, rename, delete

def test_it_refuses_bad_names_and_states(as_role: Any, world: dict[str, Any]) -> None:
    client = as_role("operator")
    cases = [
        ("vm-clone", "running", {"new_name": "copy"}, "Stop build-02 before cloning"),
        ("vm-clone", "stopped", {"new_name": "build-02"}, "already has a VM named build-02"),
        ("vm-rename", "stopped", {"new_name": "build-01"}, "already its name"),
        ("vm-rename", "stopped", {"new_name": "  "}, "required"),
        ("vm-rename", "stopped", {"new_name": "a\x00b"}, "Null characters are not allowed"),
        ("vm-delete", "stopped", {"confirm_name": "build-0"}, "Type build-01 exactly"),
        ("vm-delete", "running", {"confirm_name": "build-02"}, "Stop build-02 before deleting"),
    ]
    for name, vm_key, data, message in cases:
        response = client.post(reverse(name, args=[world[vm_key].pk]), data)
        assert response.status_code == 400, (name, data)
        assert message in response.content.decode(), (name, data, message)
    assert Operation.objects.count() == 0


def test_it_asks_to_type_the_name_before_deleting(as_role: Any, world: dict[str, Any]) -> None:
    page = as_role("operator").get(reverse("vm-delete", args=[world["stopped"].pk])).content.decode()
    assert "Type the VM&#x27;s name to confirm" in page and "cannot be undone" in page
    response = as_role("operator").post(reverse("vm-delete", args=[world["stopped"].pk]),
                                        {"confirm_name": "build-01"})
    assert response.status_code == 302
    assert Operation.objects.get().kind == "vm.delete"


# ------------------------------------------------------------------ settings and lease

def test_it_sends_only_changed_settings(as_role: Any, world: dict[str, Any]) -> None:
    vm = world["stopped"]
    vm.display_width, vm.display_height, vm.intent = 1920, 1080, "interactive"
    vm.save()
    url = reverse("vm-settings-update", args=[vm.pk])
    same = {"cpu_count": 4, "memory_gb": 8, "display_width": 1920, "display_height": 1080, "intent": "interactive"}
    response = as_role("operator").post(url, same)
    assert response.status_code == 400 and "Nothing to change" in response.content.decode()
    for bad, message in (({"cpu_count": 0}, "greater than or equal to 1"), ({"display_width": 99999}, "less than"),
                         ({"intent": "forever"}, "Select a valid choice"), ({"memory_gb": 65}, "64 GB of memory")):
        response = as_role("operator").post(url, {**same, **bad})
        assert response.status_code == 400 and message in response.content.decode(), bad
    assert Operation.objects.count() == 0
    response = as_role("operator").post(url, {**same, "cpu_count": 6, "intent": "disposable"})
    assert response.status_code == 302
    assert Operation.objects.get().params == {"changes": {"cpu_count": 6, "intent": "disposable"}}


def test_it_validates_lease_changes(as_role: Any, world: dict[str, Any]) -> None:
    vm = world["stopped"]
    url = reverse("vm-lease", args=[vm.pk])
    client = as_role("operator")
    for data, message in (
        ({"action": "set", "amount": 0, "unit": "hours"}, "greater than or equal to 1"),
        ({"action": "set", "amount": 91, "unit": "days"}, "between 1 minute and 90 days"),
        ({"action": "set", "amount": "", "unit": "hours"}, "How long"),
        ({"action": "set", "amount": 1, "unit": "weeks"}, "Select a valid choice"),
        ({"action": "extend", "amount": 1, "unit": "hours"}, "no lease to extend"),
        ({"action": "clear"}, "no lease to clear"),
        ({"action": "renew"}, "Select a valid choice"),
    ):
        response = client.post(url, data)
        assert response.status_code == 400 and message in response.content.decode(), data
    assert Operation.objects.count() == 0
    assert client.post(url, {"action": "set", "amount": 90, "unit": "minutes"}).status_code == 302
    assert Operation.objects.get().params == {"ttl_seconds": 5400}
    vm.expires_at = timezone.now() + timedelta(hours=1)
    vm.ttl_seconds = 3600
    vm.save()
    assert client.post(url, {"action": "extend", "amount": 2, "unit": "days"}).status_code == 302
    assert Operation.objects.filter(kind="vm.lease_extend").get().params == {"extend_seconds": 172800}
    assert client.post(url, {"action": "clear"}).status_code == 302
    assert Operation.objects.filter(kind="vm.lease_clear").count() == 1


def test_it_shows_the_lease_countdown_with_a_server_rendered_fallback(as_role: Any, world: dict[str, Any]) -> None:
    vm = world["stopped"]
    vm.expires_at = timezone.now() + timedelta(hours=2, minutes=5, seconds=30)
    vm.ttl_seconds = 7530
    vm.save()
    page = as_role("viewer").get(reverse("vm-settings", args=[vm.pk])).content.decode()
    assert f'data-expires-at="{vm.expires_at.isoformat()}"' in page
    assert re.search(r"2 h 05 min [23]\d s left", page)
    assert "js/lease-countdown.js" in page
    assert "<script>" not in page  # no inline script
    assert 'id="lease-set-form"' not in page  # a viewer sees the lease, not the forms
    page = as_role("operator").get(reverse("vm-settings", args=[vm.pk])).content.decode()
    assert 'id="lease-set-form"' in page and 'id="lease-extend-form"' in page and 'id="lease-clear-form"' in page


def test_it_lists_vms_expiring_within_the_window(as_role: Any, world: dict[str, Any], vm_factory: Any) -> None:
    now = timezone.now()
    node = world["node"]
    vm_factory(node, "soon", expires_at=now + timedelta(minutes=10))
    vm_factory(node, "later", expires_at=now + timedelta(hours=5))
    vm_factory(node, "overdue", expires_at=now - timedelta(minutes=3))
    vm_factory(node, "gone", expires_at=now + timedelta(minutes=5), gone_at=now)
    client = as_role("viewer")
    page = client.get(reverse("vm-expiring"), {"within": 3600}).content.decode()
    assert "soon" in page and "overdue" in page and "expired 3 min" in page
    assert "later" not in page and ">gone<" not in page
    assert page.index("overdue") < page.index(">soon<")
    page = client.get(reverse("vm-expiring"), {"within": 6 * 3600}).content.decode()
    assert "later" in page
    response = client.get(reverse("vm-expiring"), {"within": 42})
    assert response.status_code == 200 and "Choose one of the listed windows" in response.content.decode()
    partial = client.get(reverse("vm-expiring"), {"within": 3600}, HTTP_HX_REQUEST="true")
    assert partial.status_code == 200 and "<html" not in partial.content.decode()
    assert "HX-Request" in partial["Vary"]


# ------------------------------------------------------------------ following an operation

def _op(world: dict[str, Any], users: dict, **fields: Any) -> Operation:
    values = {"kind": "vm.create", "user": users["operator"], "username": "operator1", "node": world["node"],
              "node_name": world["node"].name, "params": {"name": "made-01"}}
    values.update(fields)
    return Operation.objects.create(**values)


def test_it_follows_a_creation_to_the_new_vm(as_role: Any, world: dict[str, Any], users: dict,
                                             vm_factory: Any) -> None:
    now = timezone.now()
    op = _op(world, users, status=OperationStatus.SUCCEEDED, result={"vm_id": "NEW-VM", "task_id": "T-1"},
             started_at=now, finished_at=now)
    url = reverse("vm-operation-follow", args=[op.pk])
    client = as_role("viewer")
    page = client.get(url).content.decode()
    assert 'hx-trigger="every 1s"' in page and "waiting for the pollers" in page
    task = NodeTask.objects.create(node=world["node"], remote_id="T-1", type="vm_creation", title="Create VM",
                                   status="running", progress=40, vm_remote_id="NEW-VM", last_seen_at=now)
    partial = client.get(url, HTTP_HX_REQUEST="true")
    assert partial.status_code == 200 and 'value="40"' in partial.content.decode()
    task.status, task.progress = "completed", 100
    task.save()
    made = vm_factory(world["node"], "made-01", remote_id="NEW-VM")
    partial = client.get(url, HTTP_HX_REQUEST="true")
    assert partial["HX-Redirect"] == reverse("vm-detail", args=[made.pk])


def test_it_stops_polling_when_the_node_task_fails(as_role: Any, world: dict[str, Any], users: dict) -> None:
    now = timezone.now()
    op = _op(world, users, status=OperationStatus.SUCCEEDED, result={"vm_id": "NEW-VM", "task_id": "T-2"})
    NodeTask.objects.create(node=world["node"], remote_id="T-2", type="vm_creation", title="Create VM",
                            status="failed", progress=50, error_message="<b>registry</b> said no", last_seen_at=now)
    partial = as_role("viewer").get(reverse("vm-operation-follow", args=[op.pk]), HTTP_HX_REQUEST="true")
    assert partial.status_code == 286
    body = partial.content.decode()
    assert "&lt;b&gt;registry&lt;/b&gt; said no" in body and "<b>registry" not in body
    assert "HX-Redirect" not in partial


def test_it_shows_a_failed_operation_and_stops_polling(as_role: Any, world: dict[str, Any], users: dict) -> None:
    op = _op(world, users, kind="vm.delete", vm=world["running"], vm_name="build-02", status=OperationStatus.FAILED,
             error="DeleteVM failed: VM 'build-02' must be stopped")
    partial = as_role("viewer").get(reverse("vm-operation-follow", args=[op.pk]), HTTP_HX_REQUEST="true")
    assert partial.status_code == 286 and "must be stopped" in partial.content.decode()
    assert as_role("none").get(reverse("vm-operation-follow", args=[op.pk])).status_code == 403
