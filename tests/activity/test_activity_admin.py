"""Operations are append-only, even for a superuser in the Django admin; fleet events are read-only."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from fleetui.activity.models import FleetEvent, Operation

pytestmark = pytest.mark.django_db


@pytest.fixture()
def superuser_client(db: Any) -> Client:
    client = Client()
    client.force_login(User.objects.create(username="root", is_staff=True, is_superuser=True))
    return client


def test_operations_can_be_viewed_but_never_added_changed_or_deleted(superuser_client: Client) -> None:
    op = Operation.objects.create(kind="vm.start", username="olga", node_name="n1", vm_name="ci-01")
    assert superuser_client.get(reverse("admin:activity_operation_changelist")).status_code == 200
    page = superuser_client.get(reverse("admin:activity_operation_change", args=[op.pk]))
    assert page.status_code == 200 and "ci-01" in page.content.decode()
    assert superuser_client.get(reverse("admin:activity_operation_add")).status_code == 403
    superuser_client.post(reverse("admin:activity_operation_change", args=[op.pk]), {"kind": "vm.stop"})
    assert superuser_client.post(reverse("admin:activity_operation_delete", args=[op.pk]),
                                 {"post": "yes"}).status_code == 403
    superuser_client.post(reverse("admin:activity_operation_changelist"),
                          {"action": "delete_selected", "_selected_action": [str(op.pk)], "post": "yes"})
    op.refresh_from_db()
    assert op.kind == "vm.start"


def test_fleet_events_are_read_only(superuser_client: Client) -> None:
    event = FleetEvent.objects.create(remote_id="e1", event_type="vm_started", message="VM 'x' is running",
                                      timestamp=timezone.now())
    assert superuser_client.get(reverse("admin:activity_fleetevent_changelist")).status_code == 200
    assert superuser_client.get(reverse("admin:activity_fleetevent_add")).status_code == 403
    assert superuser_client.post(reverse("admin:activity_fleetevent_delete", args=[event.pk]),
                                 {"post": "yes"}).status_code == 403
    assert FleetEvent.objects.filter(pk=event.pk).exists()
