"""Every page and partial, for every role: anonymous -> login, no role -> 403, then by role.
And the wrong method -> 405."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from fleetui.activity.models import Operation

RANK = {"none": 0, "viewer": 1, "operator": 2, "admin": 3}


def _reads(fleet: Any, op: Operation) -> list[tuple[str, str]]:
    """(url, lowest role) of every GET endpoint, full page and HTMX partial alike."""
    vm = fleet.vms["stopped"]
    node = fleet.nodes[0]
    snap = fleet.snapshot
    return [
        (reverse("fleet-overview"), "viewer"),
        (reverse("node-list"), "viewer"),
        (reverse("node-detail", args=[node.pk]), "viewer"),
        (reverse("vm-list"), "viewer"),
        (reverse("vm-list") + "?q=build&state=stopped&sort=-cpu", "viewer"),
        (reverse("vm-detail", args=[vm.pk]), "viewer"),
        (reverse("task-list"), "viewer"),
        (reverse("image-list"), "viewer"),
        (reverse("operation-detail", args=[op.pk]), "viewer"),
        (reverse("snapshot-restore", args=[vm.pk, snap.pk]), "operator"),
        (reverse("snapshot-delete", args=[vm.pk, snap.pk]), "operator"),
        (reverse("node-add"), "admin"),
        (reverse("node-edit", args=[node.pk]), "admin"),
        (reverse("node-remove", args=[node.pk]), "admin"),
    ]


@pytest.fixture()
def op(fleet: Any, users: Any) -> Operation:
    vm = fleet.vms["stopped"]
    return Operation.objects.create(kind="vm.start", user=users["operator"], username="operator1",
                                    node=vm.node, node_name=vm.node.name, vm=vm, vm_name=vm.name)


@pytest.mark.parametrize("htmx", [False, True], ids=["page", "partial"])
@pytest.mark.parametrize("role", ["anonymous", "none", "viewer", "operator", "admin"])
def test_it_checks_the_role_of_every_read(as_role: Callable[[str], Client], fleet: Any, op: Operation,
                                          role: str, htmx: bool) -> None:
    client = as_role(role)
    headers = {"HX-Request": "true"} if htmx else {}
    for url, needed in _reads(fleet, op):
        response = client.get(url, headers=headers)
        if role == "anonymous":
            assert response.status_code == 302, url
            assert response["Location"].startswith(reverse("login")), url
        elif RANK[role] >= RANK[needed]:
            assert response.status_code == 200, (url, role, response.status_code)
        else:
            assert response.status_code == 403, (url, role, response.status_code)


def _writes(fleet: Any) -> list[tuple[str, str, dict[str, str]]]:
    """(url, lowest role, a valid POST body) of every mutating endpoint."""
    stopped = fleet.vms["stopped"]
    node = fleet.nodes[1]
    return [
        # Restore first: once an operation is pending on the VM, the others are refused until it ends.
        (reverse("snapshot-restore", args=[stopped.pk, fleet.snapshot.pk]), "operator", {}),
        (reverse("vm-action", args=[fleet.vms["running"].pk, "stop"]), "operator", {}),
        (reverse("snapshot-create", args=[fleet.vms["paused"].pk]), "operator", {"name": "s1", "description": ""}),
        (reverse("image-pull", args=[node.pk]), "operator", {"reference": "ghcr.io/acme/base:15"}),
        (reverse("node-remove", args=[node.pk]), "admin", {}),
    ]


@pytest.mark.parametrize("role", ["anonymous", "none", "viewer", "operator"])
def test_it_refuses_writes_below_the_role(as_role: Callable[[str], Client], fleet: Any, role: str) -> None:
    client = as_role(role)
    before = Operation.objects.count()
    for url, needed, body in _writes(fleet):
        response = client.post(url, body)
        if role == "anonymous":
            assert response.status_code == 302 and response["Location"].startswith(reverse("login")), url
        elif RANK[role] < RANK[needed]:
            assert response.status_code == 403, (url, role)
        else:
            assert response.status_code in (200, 302), (url, role, response.status_code)
    expected = 4 if role == "operator" else 0
    assert Operation.objects.count() == before + expected
    assert len(fleet.nodes[1].__class__.objects.all()) == 2  # no node removed below admin


def test_it_answers_405_to_the_wrong_method(as_role: Callable[[str], Client], fleet: Any, op: Operation) -> None:
    client = as_role("admin")
    stopped = fleet.vms["stopped"]
    post_only = [
        reverse("vm-action", args=[stopped.pk, "start"]),
        reverse("snapshot-create", args=[stopped.pk]),
        reverse("image-pull", args=[fleet.nodes[0].pk]),
    ]
    for url in post_only:
        assert client.get(url).status_code == 405, url
        assert client.put(url).status_code == 405, url
    get_only = [reverse("fleet-overview"), reverse("node-list"), reverse("vm-list"), reverse("task-list"),
                reverse("image-list"), reverse("operation-detail", args=[op.pk]),
                reverse("vm-detail", args=[stopped.pk]), reverse("node-detail", args=[fleet.nodes[0].pk])]
    for url in get_only:
        assert client.post(url).status_code == 405, url
    for url in [reverse("node-remove", args=[fleet.nodes[0].pk]), reverse("node-add"),
                reverse("snapshot-delete", args=[stopped.pk, fleet.snapshot.pk])]:
        assert client.delete(url).status_code == 405, url
    assert Operation.objects.count() == 1


def test_it_shows_the_login_page_and_logs_in(client: Client, users: Any) -> None:
    page = client.get(reverse("login"))
    assert page.status_code == 200
    assert b'name="username"' in page.content and b"<script" not in page.content
    bad = client.post(reverse("login"), {"username": "viewer1", "password": "wrong"})
    assert bad.status_code == 200 and b"alert-error" in bad.content
    good = client.post(reverse("login"), {"username": "viewer1", "password": "x-pass-123"})
    assert good.status_code == 302 and good["Location"] == reverse("fleet-overview")
    assert client.get(reverse("fleet-overview")).status_code == 200
    assert client.get(reverse("logout")).status_code == 405  # logging out is a POST (CSRF-protected)
    assert client.post(reverse("logout")).status_code == 302
    assert client.get(reverse("fleet-overview")).status_code == 302


def test_it_puts_no_inline_script_or_handler_in_pages(as_role: Callable[[str], Client], fleet: Any,
                                                    op: Operation) -> None:
    """A strict CSP (no 'unsafe-inline') will hold: scripts come from files, no on*= handlers, no style=."""
    import re

    client = as_role("admin")
    for url, _ in _reads(fleet, op):
        html = client.get(url).content.decode()
        for tag in re.findall(r"<script\b[^>]*>", html):
            assert "src=" in tag, (url, tag)
        assert not re.search(r"<script\b[^>]*>(?!\s*</script>)", html), url
        assert not re.search(r"\son[a-z]+\s*=", html), url
        assert not re.search(r"\sstyle\s*=", html), url
        if "<body" in html:
            assert 'hx-headers=\'{"X-CSRFToken": "' in html, url
