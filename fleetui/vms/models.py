"""VMs as the pollers last saw them, and per-VM details fetched on demand (snapshots)."""

from __future__ import annotations

from django.db import models

from fleetui.nodes.models import Node


class VMState(models.TextChoices):
    STOPPED = "stopped", "Stopped"
    STARTING = "starting", "Starting"
    RUNNING = "running", "Running"
    PAUSED = "paused", "Paused"
    STOPPING = "stopping", "Stopping"
    ERROR = "error", "Error"
    UNKNOWN = "unknown", "Unknown"


class VM(models.Model):
    node = models.ForeignKey(Node, on_delete=models.CASCADE, related_name="vms")
    remote_id = models.CharField(max_length=64)
    name = models.CharField(max_length=255)
    state = models.CharField(max_length=16, choices=VMState.choices, default=VMState.UNKNOWN)
    cpu_count = models.PositiveIntegerField(null=True, blank=True)
    memory_mb = models.PositiveIntegerField(null=True, blank=True)
    disk_size_gb = models.PositiveIntegerField(null=True, blank=True)
    os_version = models.CharField(max_length=64, blank=True, default="")
    ip_address = models.CharField(max_length=64, blank=True, default="")

    # From GetVMSettings (fetched after a settings change and when a VM is viewed).
    intent = models.CharField(max_length=16, blank=True, default="")
    ttl_seconds = models.IntegerField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    display_width = models.PositiveIntegerField(null=True, blank=True)
    display_height = models.PositiveIntegerField(null=True, blank=True)
    settings_at = models.DateTimeField(null=True, blank=True)

    first_seen_at = models.DateTimeField(auto_now_add=True)
    last_seen_at = models.DateTimeField()
    # When the last change of what the node reports was written (rows are only written on change).
    changed_at = models.DateTimeField()
    # Set when the VM no longer appears in its node's ListVMs.
    gone_at = models.DateTimeField(null=True, blank=True)
    snapshots_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["node", "remote_id"], name="vm_unique_per_node")]
        indexes = [
            models.Index(fields=["state"], name="vm_state"),
            models.Index(fields=["name"], name="vm_name"),
            models.Index(fields=["expires_at"], name="vm_expires_at"),
        ]

    def __str__(self) -> str:
        return f"{self.name} on {self.node_id}"

    @property
    def is_gone(self) -> bool:
        return self.gone_at is not None


class Snapshot(models.Model):
    vm = models.ForeignKey(VM, on_delete=models.CASCADE, related_name="snapshots")
    remote_id = models.CharField(max_length=64)
    name = models.CharField(max_length=255)
    description = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(null=True, blank=True)
    size_bytes = models.BigIntegerField(null=True, blank=True)
    seen_at = models.DateTimeField()

    class Meta:
        ordering = ["-created_at", "name"]
        constraints = [models.UniqueConstraint(fields=["vm", "remote_id"], name="snapshot_unique_per_vm")]
