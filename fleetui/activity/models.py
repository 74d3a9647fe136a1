"""Operations (every click that changes something) and the fleet events managers report.

Operations are an append-only audit trail: the admin cannot edit or delete them, and they keep
the username, node name and VM name after those are gone.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models

from fleetui.nodes.models import Node
from fleetui.vms.models import VM


class OperationStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


FINISHED_STATUSES = (OperationStatus.SUCCEEDED, OperationStatus.FAILED, OperationStatus.CANCELLED)


class AppendOnlyError(Exception):
    """Operations are the audit trail: rows are added, never deleted."""


class OperationQuerySet(models.QuerySet):
    def delete(self) -> tuple[int, dict[str, int]]:
        raise AppendOnlyError("Operations are an append-only audit trail: they cannot be deleted.")

    delete.queryset_only = True  # type: ignore[attr-defined]


class Operation(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # What was asked, as "<thing>.<action>", e.g. "vm.start", "snapshot.create", "image.pull".
    kind = models.CharField(max_length=48)
    status = models.CharField(max_length=16, choices=OperationStatus.choices, default=OperationStatus.PENDING)

    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    username = models.CharField(max_length=150, blank=True, default="")
    node = models.ForeignKey(Node, null=True, blank=True, on_delete=models.SET_NULL, related_name="operations")
    node_name = models.CharField(max_length=100, blank=True, default="")
    vm = models.ForeignKey(VM, null=True, blank=True, on_delete=models.SET_NULL, related_name="operations")
    vm_name = models.CharField(max_length=255, blank=True, default="")
    vm_remote_id = models.CharField(max_length=64, blank=True, default="")

    # Parameters without secrets; the outcome the node reported.
    params = models.JSONField(default=dict, blank=True)
    result = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True, default="")

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    source_ip = models.GenericIPAddressField(null=True, blank=True)
    request_id = models.CharField(max_length=64, blank=True, default="")

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["status"], name="operation_status"),
            models.Index(fields=["kind"], name="operation_kind"),
            models.Index(fields=["node", "-created_at"], name="operation_node_created"),
        ]

    objects = OperationQuerySet.as_manager()

    def __str__(self) -> str:
        return f"{self.kind} {self.vm_name or self.node_name} ({self.status})"

    def delete(self, *args: object, **kwargs: object) -> tuple[int, dict[str, int]]:
        raise AppendOnlyError("Operations are an append-only audit trail: they cannot be deleted.")

    @property
    def is_finished(self) -> bool:
        return self.status in FINISHED_STATUSES

    @property
    def duration_seconds(self) -> float | None:
        if self.started_at and self.finished_at:
            return (self.finished_at - self.started_at).total_seconds()
        return None


class FleetEvent(models.Model):
    """An event from a manager's GetFleetEvents, deduplicated per manager."""

    source_node = models.ForeignKey(Node, null=True, on_delete=models.SET_NULL, related_name="fleet_events")
    # The event's id as the node gives it, or a digest of its content when it has none.
    remote_id = models.CharField(max_length=128)
    event_type = models.CharField(max_length=64)
    node_name = models.CharField(max_length=255, blank=True, default="")
    message = models.TextField(blank=True, default="")
    vm_remote_id = models.CharField(max_length=64, blank=True, default="")
    vm_name = models.CharField(max_length=255, blank=True, default="")
    timestamp = models.DateTimeField()
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-timestamp"]
        constraints = [
            models.UniqueConstraint(fields=["source_node", "remote_id"], name="event_unique_per_source")
        ]
        indexes = [
            models.Index(fields=["-timestamp"], name="event_timestamp"),
            models.Index(fields=["event_type", "-timestamp"], name="event_type_timestamp"),
        ]
