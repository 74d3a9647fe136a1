"""Node-side tasks (pulls, downloads, pushes, VM creation) and the images a node holds."""

from __future__ import annotations

from django.db import models

from fleetui.nodes.models import Node


class TaskStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    RUNNING = "running", "Running"
    COMPLETED = "completed", "Completed"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"
    UNKNOWN = "unknown", "Unknown"


ACTIVE_TASK_STATUSES = (TaskStatus.PENDING, TaskStatus.RUNNING)


class NodeTask(models.Model):
    node = models.ForeignKey(Node, on_delete=models.CASCADE, related_name="tasks")
    remote_id = models.CharField(max_length=64)
    type = models.CharField(max_length=64, blank=True, default="")
    title = models.CharField(max_length=255, blank=True, default="")
    status = models.CharField(max_length=16, choices=TaskStatus.choices, default=TaskStatus.UNKNOWN)
    progress = models.FloatField(default=0)
    progress_text = models.CharField(max_length=255, blank=True, default="")
    started_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    vm_remote_id = models.CharField(max_length=64, blank=True, default="")
    vm_name = models.CharField(max_length=255, blank=True, default="")
    error_message = models.TextField(blank=True, default="")
    last_seen_at = models.DateTimeField()

    class Meta:
        ordering = ["-started_at"]
        constraints = [models.UniqueConstraint(fields=["node", "remote_id"], name="task_unique_per_node")]
        indexes = [models.Index(fields=["status"], name="task_status")]

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_TASK_STATUSES


class OCIImage(models.Model):
    node = models.ForeignKey(Node, on_delete=models.CASCADE, related_name="oci_images")
    reference = models.CharField(max_length=512)
    digest = models.CharField(max_length=128, blank=True, default="")
    size_bytes = models.BigIntegerField(null=True, blank=True)
    pulled_at = models.DateTimeField(null=True, blank=True)
    seen_at = models.DateTimeField()

    class Meta:
        ordering = ["reference"]
        constraints = [models.UniqueConstraint(fields=["node", "reference"], name="oci_unique_per_node")]


class IPSW(models.Model):
    node = models.ForeignKey(Node, on_delete=models.CASCADE, related_name="ipsws")
    path = models.CharField(max_length=1024)
    name = models.CharField(max_length=255, blank=True, default="")
    version = models.CharField(max_length=64, blank=True, default="")
    size_bytes = models.BigIntegerField(null=True, blank=True)
    seen_at = models.DateTimeField()

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["node", "path"], name="ipsw_unique_per_node")]
