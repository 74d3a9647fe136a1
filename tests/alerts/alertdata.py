"""Helpers for the alerts tests."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.db.models import F

from fleetui.alerts.models import Webhook
from fleetui.alerts.services import webhook_create
from fleetui.nodes.models import Node


def make_webhook(url: str, *, name: str = "ops", fmt: str = "generic", **flags: Any) -> Webhook:
    data = {"name": name, "url": url, "format": fmt, "on_node_offline": True, "on_task_failed": True,
            "on_operation_failed": True, "on_lease_expiring": False, "lease_window_minutes": 60, "enabled": True}
    data.update(flags)
    return webhook_create(data=data, user=None)


def age_last_success(node: Node, minutes: int = 10) -> None:
    """As if the node's last good poll were `minutes` ago (offline needs 3 poll intervals without one)."""
    Node.objects.filter(pk=node.pk, last_success_at__isnull=False).update(
        last_success_at=F("last_success_at") - timedelta(minutes=minutes)
    )
