"""Registered Fleet nodes, their encrypted credentials, and what the pollers last saw of them."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone


class Health(models.TextChoices):
    PENDING = "pending", "Not polled yet"
    ONLINE = "online", "Online"
    STALE = "stale", "Stale"
    OFFLINE = "offline", "Offline"


class Node(models.Model):
    class Role(models.TextChoices):
        UNKNOWN = "", "Unknown"
        MANAGER = "manager", "Manager"
        WORKER = "worker", "Worker"

    class Permission(models.TextChoices):
        UNKNOWN = "", "Unknown"
        FULL_ACCESS = "fullAccess", "Full access"
        READ_ONLY = "readOnly", "Read-only"

    name = models.CharField(max_length=100, unique=True)
    host = models.CharField(max_length=253)
    port = models.PositiveIntegerField(default=9473, validators=[MinValueValidator(1), MaxValueValidator(65535)])

    # Credentials, encrypted with fleetui.core.crypto (never shown again, never sent to Celery).
    api_token_enc = models.TextField(blank=True, default="")
    api_token_prefix = models.CharField(max_length=16, blank=True, default="")
    token_permission = models.CharField(max_length=16, choices=Permission.choices, blank=True, default="")
    # Pairing (needed for the token methods): our trusted callerNodeID and our P-256 private key.
    paired_node_id_enc = models.TextField(blank=True, default="")
    pairing_private_key_enc = models.TextField(blank=True, default="")
    paired_at = models.DateTimeField(null=True, blank=True)

    role = models.CharField(max_length=16, choices=Role.choices, blank=True, default="")

    # From GetNodeInfo.
    remote_node_id = models.CharField(max_length=64, blank=True, default="")
    hostname = models.CharField(max_length=253, blank=True, default="")
    ip_address = models.CharField(max_length=64, blank=True, default="")
    machine_model = models.CharField(max_length=64, blank=True, default="")
    os_version = models.CharField(max_length=64, blank=True, default="")
    cpu_cores = models.PositiveIntegerField(null=True, blank=True)
    total_memory_gb = models.FloatField(null=True, blank=True)
    fleet_version = models.CharField(max_length=64, blank=True, default="")
    info_at = models.DateTimeField(null=True, blank=True)

    # Latest GetNodeStats, denormalised for the overview (history in NodeStatsSample).
    cpu_usage_percent = models.FloatField(null=True, blank=True)
    memory_used_gb = models.FloatField(null=True, blank=True)
    memory_total_gb = models.FloatField(null=True, blank=True)
    disk_used_gb = models.FloatField(null=True, blank=True)
    disk_total_gb = models.FloatField(null=True, blank=True)
    running_vm_count = models.PositiveIntegerField(null=True, blank=True)
    total_vm_count = models.PositiveIntegerField(null=True, blank=True)
    stats_at = models.DateTimeField(null=True, blank=True)

    # GetRemoteResources (free capacity) and, for managers, GetFleetOverview.
    resources = models.JSONField(default=dict, blank=True)
    resources_at = models.DateTimeField(null=True, blank=True)
    fleet_overview = models.JSONField(default=dict, blank=True)
    fleet_overview_at = models.DateTimeField(null=True, blank=True)
    # When the node's OCI images and IPSWs were last listed (they are listed every few polls).
    images_at = models.DateTimeField(null=True, blank=True)

    # Polling state. Health is derived from these, never stored.
    last_poll_started_at = models.DateTimeField(null=True, blank=True)
    last_poll_at = models.DateTimeField(null=True, blank=True)
    last_poll_duration_ms = models.PositiveIntegerField(null=True, blank=True)
    last_success_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="")
    last_error_at = models.DateTimeField(null=True, blank=True)
    consecutive_failures = models.PositiveIntegerField(default=0)
    # Circuit breaker: while set and in the future, scheduled polls only probe the node.
    backoff_until = models.DateTimeField(null=True, blank=True)

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def address(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    @property
    def is_read_only(self) -> bool:
        return self.token_permission == self.Permission.READ_ONLY and not self.paired_node_id_enc

    @property
    def is_paired(self) -> bool:
        return bool(self.paired_node_id_enc)

    @property
    def is_manager(self) -> bool:
        return self.role == self.Role.MANAGER

    def health(self, now: datetime | None = None) -> str:
        """online: the last poll succeeded within 3 intervals; stale: seen within 3 intervals
        but the latest poll failed or polls stopped; offline: nothing good for 3 intervals."""
        now = now or timezone.now()
        window = timedelta(seconds=3 * settings.POLL_INTERVAL)
        if self.last_success_at is None:
            return Health.OFFLINE if self.last_error_at else Health.PENDING
        recent = now - self.last_success_at <= window
        failing = self.last_error_at is not None and self.last_error_at > self.last_success_at
        if recent and not failing:
            return Health.ONLINE
        if recent or (not failing and now - self.last_success_at <= 2 * window):
            return Health.STALE
        return Health.OFFLINE

    @property
    def circuit_open(self) -> bool:
        return self.backoff_until is not None and self.backoff_until > timezone.now()


class NodeStatsSample(models.Model):
    """One GetNodeStats reading; older samples are thinned (see nodes.services)."""

    node = models.ForeignKey(Node, on_delete=models.CASCADE, related_name="stats_samples")
    at = models.DateTimeField()
    cpu_usage_percent = models.FloatField()
    memory_used_gb = models.FloatField()
    memory_total_gb = models.FloatField()
    disk_used_gb = models.FloatField()
    disk_total_gb = models.FloatField()
    running_vm_count = models.PositiveIntegerField()
    total_vm_count = models.PositiveIntegerField()

    class Meta:
        ordering = ["-at"]
        indexes = [models.Index(fields=["node", "-at"], name="stats_node_at")]
