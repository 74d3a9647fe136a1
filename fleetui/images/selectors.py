"""Reads for the images and tasks pages."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.db.models import Prefetch, QuerySet
from django.utils import timezone

from fleetui.images.models import ACTIVE_TASK_STATUSES, IPSW, NodeTask, OCIImage, TaskStatus
from fleetui.nodes.models import Node

TASK_STATUS_FILTERS = {
    "active": ("Active", ACTIVE_TASK_STATUSES),
    "completed": ("Completed", (TaskStatus.COMPLETED,)),
    "failed": ("Failed", (TaskStatus.FAILED, TaskStatus.CANCELLED)),
    "all": ("All", None),
}
TASK_LIST_LIMIT = 200


def nodes_with_images() -> list[Node]:
    """Every node with its OCI images and IPSWs: three queries whatever the numbers."""
    return list(
        Node.objects.order_by("name").prefetch_related(
            Prefetch("oci_images", OCIImage.objects.order_by("reference")),
            Prefetch("ipsws", IPSW.objects.order_by("name")),
        )
    )


def task_queryset(*, node_id: int | None = None, status: str = "active") -> QuerySet[NodeTask]:
    qs = NodeTask.objects.select_related("node")
    if node_id:
        qs = qs.filter(node_id=node_id)
    statuses = TASK_STATUS_FILTERS.get(status, TASK_STATUS_FILTERS["active"])[1]
    if statuses is not None:
        qs = qs.filter(status__in=statuses)
    return qs.order_by("-started_at", "-id")


def task_list(*, node_id: int | None = None, status: str = "active") -> dict[str, Any]:
    tasks = list(task_queryset(node_id=node_id, status=status)[:TASK_LIST_LIMIT])
    since = timezone.now() - timedelta(days=1)
    return {
        "tasks": tasks,
        "active_count": NodeTask.objects.filter(status__in=ACTIVE_TASK_STATUSES).count(),
        "failed_recent_count": NodeTask.objects.filter(status=TaskStatus.FAILED, completed_at__gte=since).count(),
        "limit": TASK_LIST_LIMIT,
    }
