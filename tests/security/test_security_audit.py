"""Audit: Operations are append-only (not even a superuser in the admin can change or delete one, and
the model refuses delete()), keep who did it after the user, node and VM are gone, and record the
source address and request id of the click."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from secdata import RichFleet

from fleetui.activity.models import AppendOnlyError, FleetEvent, Operation


@pytest.fixture()
def superuser(db: Any) -> Client:
    user = User.objects.create_superuser("root", "root@example.com", "x-root-pass-123")
    client = Client()
    client.force_login(user)
    return client


def test_it_lets_no_superuser_change_or_delete_an_operation_in_the_admin(superuser: Client,
                                                                         rich_fleet: RichFleet) -> None:
    op = rich_fleet.operations["vm.exec"]
    before = Operation.objects.values().get(pk=op.pk)
    base = f"/admin/activity/operation/{op.pk}"

    listing = superuser.get("/admin/activity/operation/")
    assert listing.status_code == 200
    assert b"action-select" not in listing.content, "no bulk actions (delete selected)"
    assert b"/admin/activity/operation/add/" not in listing.content

    view = superuser.get(f"{base}/change/")
    assert view.status_code == 200, "a read-only view of the row"
    assert b'name="_save"' not in view.content and b"<textarea" not in view.content
    assert superuser.post(f"{base}/change/", {"kind": "vm.start", "username": "someone-else",
                                              "error": "rewritten"}).status_code == 403
    assert superuser.get(f"{base}/delete/").status_code == 403
    assert superuser.post(f"{base}/delete/", {"post": "yes"}).status_code == 403
    assert superuser.get("/admin/activity/operation/add/").status_code == 403
    assert superuser.post("/admin/activity/operation/", {"action": "delete_selected", "_selected_action": [op.pk],
                                                          "post": "yes"}).status_code in (200, 302)
    assert Operation.objects.values().get(pk=op.pk) == before

    event = FleetEvent.objects.first()
    assert superuser.post(f"/admin/activity/fleetevent/{event.pk}/delete/", {"post": "yes"}).status_code == 403
    assert FleetEvent.objects.filter(pk=event.pk).exists()


def test_it_refuses_to_delete_operations_in_code(rich_fleet: RichFleet) -> None:
    op = rich_fleet.operations["vm.start"]
    with pytest.raises(AppendOnlyError):
        op.delete()
    with pytest.raises(AppendOnlyError):
        Operation.objects.filter(pk=op.pk).delete()
    with pytest.raises(AppendOnlyError):
        Operation.objects.all().delete()
    assert Operation.objects.filter(pk=op.pk).exists()


def test_it_keeps_who_and_what_after_user_node_and_vm_are_deleted(as_role: Callable[..., Client],
                                                                  users: dict[str, User],
                                                                  rich_fleet: RichFleet) -> None:
    running = rich_fleet.vms[1]
    client = as_role("operator")
    response = client.post(f"/vms/{running.pk}/action/stop/", {}, headers={"X-Request-ID": "audit-req-0001"},
                           REMOTE_ADDR="192.0.2.44")
    assert response.status_code in (200, 302)
    op = Operation.objects.get(kind="vm.stop", vm=running)
    node_name, vm_name = running.node.name, running.name

    users["operator"].delete()
    running.node.delete()  # removes the node's VMs too
    op.refresh_from_db()
    assert op.user_id is None and op.node_id is None and op.vm_id is None
    assert (op.username, op.node_name, op.vm_name, op.kind) == ("operator1", node_name, vm_name, "vm.stop")
    assert (op.source_ip, op.request_id) == ("192.0.2.44", "audit-req-0001")

    page = as_role("viewer").get(f"/operations/{op.pk}/")
    assert page.status_code == 200
    text = page.content.decode()
    assert "operator1" in text and vm_name in text
    activity = as_role("viewer").get("/activity/")
    assert "operator1" in activity.content.decode()
