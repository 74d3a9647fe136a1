"""Batches: one action (or one command) asked of many VMs at once.

A Batch is the group; each selected VM is a BatchItem, which either points at the Operation that
does the work for that VM (one Operation per VM, run by the ordinary Operation machinery) or says
why that VM was skipped. The link lives here, in a through table, so the Operation audit trail
keeps its own schema; counts are derived from the items' Operations, never stored.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models

from fleetui.activity.models import Operation
from fleetui.vms.models import VM


class BatchAction(models.TextChoices):
    START = "start", "Start"
    STOP = "stop", "Stop"
    SUSPEND = "suspend", "Suspend"
    SNAPSHOT = "snapshot", "Snapshot"
    TTL_SET = "ttl_set", "Set lease (TTL)"
    TTL_EXTEND = "ttl_extend", "Extend lease (TTL)"
    DELETE = "delete", "Delete"
    EXEC = "exec", "Run command"


class Batch(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    action = models.CharField(max_length=16, choices=BatchAction.choices)
    # What was asked, without secrets (a fan-out's SSH password goes to each Operation's secret store).
    params = models.JSONField(default=dict, blank=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                             related_name="+")
    username = models.CharField(max_length=150, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    cancelled_by = models.CharField(max_length=150, blank=True, default="")

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.get_action_display()} batch {self.pk}"

    @property
    def is_exec(self) -> bool:
        return self.action == BatchAction.EXEC


class BatchItem(models.Model):
    batch = models.ForeignKey(Batch, on_delete=models.CASCADE, related_name="items")
    position = models.PositiveIntegerField(default=0)
    vm = models.ForeignKey(VM, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    # Names as they were when the batch was made (the VM or node may be renamed or removed later).
    vm_name = models.CharField(max_length=255, blank=True, default="")
    node_name = models.CharField(max_length=100, blank=True, default="")
    operation = models.OneToOneField(Operation, null=True, blank=True, on_delete=models.SET_NULL,
                                     related_name="batch_item")
    # Why no Operation was made for this VM ("" when one was).
    skipped_reason = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["batch", "position"]
        indexes = [models.Index(fields=["batch", "position"], name="batchitem_batch_position")]

    def __str__(self) -> str:
        return f"{self.vm_name} in {self.batch_id}"

    @property
    def status(self) -> str:
        """The Operation's status, or "skipped"."""
        return self.operation.status if self.operation_id and self.operation else "skipped"
