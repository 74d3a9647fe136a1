"""The VM list, a VM's page, lifecycle actions and snapshots."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from fleetui.activity.models import Operation, OperationStatus

HX = {"HX-Request": "true"}


def _names(response: Any) -> list[str]:
    return [vm.name for vm in response.context["vms"]]


def test_it_lists_searches_filters_and_sorts_vms(as_role: Callable[[str], Client], fleet: Any,
                                                 vm_factory: Any) -> None:
    client = as_role("viewer")
    gone = vm_factory(fleet.nodes[0], "old-one", gone_at=timezone.now())
    url = reverse("vm-list")
    assert _names(client.get(url)) == ["build-running", "build-stopped", "ci-paused", "ci-starting"]
    assert _names(client.get(url, {"q": "CI-"})) == ["ci-paused", "ci-starting"]
    assert _names(client.get(url, {"node": fleet.nodes[0].pk})) == ["build-running", "build-stopped"]
    assert _names(client.get(url, {"state": "paused"})) == ["ci-paused"]
    assert _names(client.get(url, {"sort": "-name"}))[0] == "ci-starting"
    assert _names(client.get(url, {"sort": "state"}))[0] == "ci-paused"
    assert gone.name in _names(client.get(url, {"gone": "on"}))
    partial = client.get(url, {"q": "build"}, headers=HX)
    assert partial.status_code == 200 and b"<html" not in partial.content
    assert b'hx-trigger="every' in partial.content and "HX-Request" in partial["Vary"]


def test_it_ignores_bad_list_parameters(as_role: Callable[[str], Client], fleet: Any) -> None:
    client = as_role("viewer")
    for params in [{"page": "abc"}, {"page": "-3"}, {"sort": "bogus"}, {"node": "999999"}, {"node": "x"},
                   {"state": "<script>"}, {"q": "a\x00b"}, {"page": "99999"}]:
        response = client.get(reverse("vm-list"), params)
        assert response.status_code == 200, params
        assert b"<script>" not in response.content


def test_it_pages_vms(as_role: Callable[[str], Client], fleet: Any, vm_factory: Any) -> None:
    for i in range(60):
        vm_factory(fleet.nodes[1], f"bulk-{i:02d}")
    client = as_role("viewer")
    first = client.get(reverse("vm-list"))
    assert len(first.context["vms"]) == 50 and first.context["page"].paginator.count == 64
    second = client.get(reverse("vm-list"), {"page": 2})
    assert len(second.context["vms"]) == 14
    assert not set(_names(first)) & set(_names(second))


@pytest.mark.parametrize(
    ("state", "offered"),
    [("stopped", ["start", "start_recovery"]), ("running", ["suspend", "stop"]), ("paused", ["resume", "stop"]),
     ("starting", [])],
)
def test_it_offers_only_what_the_state_allows(as_role: Callable[[str], Client], fleet: Any, state: str,
                                              offered: list[str]) -> None:
    response = as_role("operator").get(reverse("vm-detail", args=[fleet.vms[state].pk]))
    html = response.content.decode()
    for slug in ["start", "start_recovery", "suspend", "stop", "resume"]:
        assert (f'data-action="{slug}"' in html) == (slug in offered), (state, slug)
        if slug in offered:
            assert reverse("vm-action", args=[fleet.vms[state].pk, slug]) in html
    if not offered:
        assert "actions come back once it settles" in html
    assert "disabled" not in html.split('id="vm-actions"')[-1].split("</div>")[0] or not offered


def test_it_disables_actions_with_a_reason(as_role: Callable[[str], Client], fleet: Any, node_factory: Any,
                                           vm_factory: Any) -> None:
    viewer_page = as_role("viewer").get(reverse("vm-detail", args=[fleet.vms["stopped"].pk])).content.decode()
    assert "disabled" in viewer_page and "Needs the operator role." in viewer_page
    ro = vm_factory(node_factory("ro-node", read_only=True), "ro-vm")
    down = vm_factory(node_factory("down-node", online=False), "down-vm")
    client = as_role("operator")
    ro_page = client.get(reverse("vm-detail", args=[ro.pk])).content.decode()
    assert "read-only" in ro_page and 'data-action="start"\n              disabled' in ro_page
    down_page = client.get(reverse("vm-detail", args=[down.pk])).content.decode()
    assert "The node is offline." in down_page


def test_it_records_an_operation_for_an_action(as_role: Callable[[str], Client], fleet: Any,
                                               users: Any) -> None:
    vm = fleet.vms["stopped"]
    client = as_role("operator")
    response = client.post(reverse("vm-action", args=[vm.pk, "start"]), REMOTE_ADDR="10.1.2.3")
    assert response.status_code == 302 and response["Location"] == reverse("vm-detail", args=[vm.pk])
    op = Operation.objects.get()
    assert (op.kind, op.status, op.vm, op.node, op.user) == ("vm.start", "pending", vm, vm.node, users["operator"])
    assert op.source_ip == "10.1.2.3" and op.vm_name == vm.name
    page = client.get(reverse("vm-detail", args=[vm.pk])).content.decode()
    assert "Start requested for build-stopped." in page and f'id="op-{op.pk}"' in page
    assert "An operation on this VM is still running." in page  # the buttons wait for the outcome


def test_it_answers_htmx_actions_with_the_operation_partial(as_role: Callable[[str], Client], fleet: Any) -> None:
    vm = fleet.vms["paused"]
    response = as_role("operator").post(reverse("vm-action", args=[vm.pk, "resume"]), headers=HX)
    assert response.status_code == 200 and b"<html" not in response.content
    op = Operation.objects.get()
    assert op.kind == "vm.resume"
    html = response.content.decode()
    assert f'hx-get="{reverse("operation-detail", args=[op.pk])}"' in html and 'hx-trigger="every 1s"' in html
    assert "vm-changed" in json.loads(response["HX-Trigger"])


@pytest.mark.parametrize("case", ["wrong-state", "busy", "read-only", "offline", "gone"])
def test_it_refuses_actions_that_cannot_run(as_role: Callable[[str], Client], fleet: Any, node_factory: Any,
                                            vm_factory: Any, case: str) -> None:
    vm = fleet.vms["running"]
    action = "stop"
    if case == "wrong-state":
        action = "start"
    elif case == "busy":
        Operation.objects.create(kind="vm.stop", node=vm.node, vm=vm, status=OperationStatus.RUNNING)
    elif case == "read-only":
        vm = vm_factory(node_factory("ro", read_only=True), "ro-vm", "running")
    elif case == "offline":
        vm = vm_factory(node_factory("down", online=False), "down-vm", "running")
    elif case == "gone":
        vm = vm_factory(fleet.nodes[0], "gone-vm", "running", gone_at=timezone.now())
    before = Operation.objects.count()
    client = as_role("operator")
    response = client.post(reverse("vm-action", args=[vm.pk, action]), follow=True)
    assert response.status_code == 200
    assert b"alert-error" in response.content
    htmx = client.post(reverse("vm-action", args=[vm.pk, action]), headers=HX)
    assert htmx.status_code == 200 and b"alert-error" in htmx.content
    assert Operation.objects.count() == before


def test_it_404s_unknown_actions_and_vms(as_role: Callable[[str], Client], fleet: Any) -> None:
    client = as_role("operator")
    assert client.post(reverse("vm-action", args=[fleet.vms["stopped"].pk, "explode"])).status_code == 404
    assert client.post(reverse("vm-action", args=[999999, "start"])).status_code == 404
    assert client.get(reverse("vm-detail", args=[999999])).status_code == 404
    assert Operation.objects.count() == 0


def test_it_speeds_up_polling_while_an_operation_runs(as_role: Callable[[str], Client], fleet: Any) -> None:
    vm = fleet.vms["stopped"]
    client = as_role("viewer")
    idle = client.get(reverse("vm-detail", args=[vm.pk]), headers=HX).content.decode()
    assert 'hx-trigger="every 10s, vm-changed from:body"' in idle
    Operation.objects.create(kind="vm.start", node=vm.node, vm=vm)
    busy = client.get(reverse("vm-detail", args=[vm.pk]), headers=HX).content.decode()
    assert 'hx-trigger="every 2s, vm-changed from:body"' in busy and "operation in progress" in busy


# ------------------------------------------------------------------ snapshots


def test_it_creates_a_snapshot(as_role: Callable[[str], Client], fleet: Any) -> None:
    vm = fleet.vms["running"]
    client = as_role("operator")
    response = client.post(reverse("snapshot-create", args=[vm.pk]), {"name": " pre-xcode ", "description": "x\ny"})
    assert response.status_code == 302
    op = Operation.objects.get()
    assert op.kind == "snapshot.create" and op.params == {"name": "pre-xcode", "description": "x\ny"}
    htmx = client.post(reverse("snapshot-create", args=[fleet.vms["paused"].pk]), {"name": "two"}, headers=HX)
    html = htmx.content.decode()
    assert htmx.status_code == 200 and 'hx-swap-oob="true"' in html and 'id="snapshot-form"' in html


@pytest.mark.parametrize("name", ["", "   ", "a\x00b", "x" * 101, "bad\x1bname"])
def test_it_rerenders_a_bad_snapshot_form(as_role: Callable[[str], Client], fleet: Any, name: str) -> None:
    vm = fleet.vms["running"]
    client = as_role("operator")
    response = client.post(reverse("snapshot-create", args=[vm.pk]), {"name": name})
    assert response.status_code == 200 and b'class="errors"' in response.content
    htmx = client.post(reverse("snapshot-create", args=[vm.pk]), {"name": name}, headers=HX)
    assert htmx.status_code == 200 and htmx["HX-Retarget"] == "#snapshot-form" and htmx["HX-Reswap"] == "outerHTML"
    assert Operation.objects.count() == 0


def test_it_restores_a_snapshot_only_when_stopped(as_role: Callable[[str], Client], fleet: Any) -> None:
    vm, snap = fleet.vms["stopped"], fleet.snapshot
    client = as_role("operator")
    url = reverse("snapshot-restore", args=[vm.pk, snap.pk])
    confirm = client.get(url)
    assert confirm.status_code == 200 and b"Restore snapshot" in confirm.content and Operation.objects.count() == 0
    vm.state = "running"
    vm.save()
    refused = client.post(url, follow=True)
    assert b"Stop the VM before restoring a snapshot." in refused.content and Operation.objects.count() == 0
    vm.state = "stopped"
    vm.save()
    assert client.post(url).status_code == 302
    op = Operation.objects.get()
    assert op.kind == "snapshot.restore" and op.params["snapshot_id"] == "snap-1"


def test_it_deletes_a_snapshot_after_confirmation(as_role: Callable[[str], Client], fleet: Any) -> None:
    vm, snap = fleet.vms["stopped"], fleet.snapshot
    client = as_role("operator")
    url = reverse("snapshot-delete", args=[vm.pk, snap.pk])
    assert b"cannot be undone" in client.get(url).content
    response = client.post(url, headers=HX)
    assert response.status_code == 200
    assert Operation.objects.get().kind == "snapshot.delete"
    other_vm = fleet.vms["running"]
    assert client.get(reverse("snapshot-delete", args=[other_vm.pk, snap.pk])).status_code == 404


def test_it_shows_snapshots_and_when_they_were_read(as_role: Callable[[str], Client], fleet: Any) -> None:
    vm = fleet.vms["stopped"]
    vm.snapshots_at = timezone.now() - timedelta(seconds=5)
    vm.save()
    html = as_role("operator").get(reverse("vm-detail", args=[vm.pk])).content.decode()
    assert "before-update" in html and "clean install" in html and ">5 s ago</time>" in html
    assert reverse("snapshot-restore", args=[vm.pk, fleet.snapshot.pk]) in html


def test_it_shows_hostile_names_inert(as_role: Callable[[str], Client], fleet: Any, vm_factory: Any) -> None:
    evil = '<script>alert(1)</script>"><img src=x onerror=alert(2)>'
    vm = vm_factory(fleet.nodes[0], evil, "stopped", os_version=evil)
    Operation.objects.create(kind="vm.start", node=vm.node, node_name=vm.node.name, vm=vm, vm_name=evil,
                             username=evil, error=evil, status=OperationStatus.FAILED)
    client = as_role("operator")
    for url in [reverse("vm-list"), reverse("vm-detail", args=[vm.pk]), reverse("fleet-overview"),
                reverse("node-detail", args=[vm.node_id])]:
        html = client.get(url).content.decode()
        assert "<script>alert(1)" not in html and "<img src=x" not in html, url
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html, url


def test_it_offers_row_actions_to_operators_only(as_role: Callable[[str], Client], fleet: Any) -> None:
    url = reverse("vm-list")
    assert b"data-action=" not in as_role("viewer").get(url).content
    client = as_role("operator")
    html = client.get(url).content.decode()
    assert reverse("vm-action", args=[fleet.vms["stopped"].pk, "start"]) in html
    assert reverse("vm-action", args=[fleet.vms["running"].pk, "stop"]) in html
    assert "start_recovery" not in html and reverse("vm-action", args=[fleet.vms["starting"].pk, "stop"]) not in html
    Operation.objects.create(kind="vm.start", node=fleet.vms["stopped"].node, vm=fleet.vms["stopped"])
    busy = client.get(url).content.decode()
    assert reverse("vm-action", args=[fleet.vms["stopped"].pk, "start"]) not in busy and "in progress" in busy
