"""Webhooks admins define, the incidents FleetUI detects, and every delivery of an alert to a webhook.

Incidents keep the names of what they are about (nodes, VMs, operations may be gone later) and hold no
foreign key to them, so a worker recording an incident never races a node's removal.
"""

from __future__ import annotations

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models


class IncidentKind(models.TextChoices):
    NODE_OFFLINE = "node_offline", "Node offline"
    TASK_FAILED = "task_failed", "Node task failed"
    OPERATION_FAILED = "operation_failed", "Operation failed"
    LEASE_EXPIRING = "lease_expiring", "VM lease ending"


# Which Webhook flag subscribes to which kind of incident.
SUBSCRIPTION_FIELD = {
    IncidentKind.NODE_OFFLINE: "on_node_offline",
    IncidentKind.TASK_FAILED: "on_task_failed",
    IncidentKind.OPERATION_FAILED: "on_operation_failed",
    IncidentKind.LEASE_EXPIRING: "on_lease_expiring",
}


class WebhookFormat(models.TextChoices):
    GENERIC = "generic", "Generic JSON"
    SLACK = "slack", 'Slack-compatible ({"text": ...})'


MAX_LEASE_WINDOW_MINUTES = 7 * 24 * 60


class Webhook(models.Model):
    name = models.CharField(max_length=100, unique=True)
    # The whole URL, encrypted (fleetui.core.crypto): a Slack URL's path is its secret.
    url_enc = models.TextField()
    # Scheme, host and port only, with the path masked: what pages and logs show.
    url_display = models.CharField(max_length=300)
    format = models.CharField(max_length=16, choices=WebhookFormat.choices, default=WebhookFormat.GENERIC)
    on_node_offline = models.BooleanField("Node offline and back online", default=True)
    on_task_failed = models.BooleanField("Node task failed", default=True)
    on_operation_failed = models.BooleanField("Operation failed", default=True)
    on_lease_expiring = models.BooleanField("VM lease ending", default=False)
    lease_window_minutes = models.PositiveIntegerField(
        default=60, validators=[MinValueValidator(1), MaxValueValidator(MAX_LEASE_WINDOW_MINUTES)]
    )
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def __repr__(self) -> str:
        return f"<Webhook {self.pk} {self.name!r} {self.url_display}>"

    def subscribes_to(self, kind: str) -> bool:
        return bool(getattr(self, SUBSCRIPTION_FIELD[IncidentKind(kind)]))

    @property
    def event_labels(self) -> list[str]:
        return [self._meta.get_field(field).verbose_name for field in SUBSCRIPTION_FIELD.values()
                if getattr(self, field)]


class Incident(models.Model):
    kind = models.CharField(max_length=32, choices=IncidentKind.choices)
    # What the incident is about, e.g. "node_offline:12", "operation_failed:<uuid>".
    key = models.CharField(max_length=200)
    # The deduplication key: unique, so an incident is recorded (and alerted) once however many
    # polls or workers see it. Kept forever for one-time events (a task or an operation fails once;
    # a lease with a given end); cleared when a node comes back, so its next outage is a new incident.
    dedup_key = models.CharField(max_length=200, null=True, blank=True, unique=True)
    node_id = models.IntegerField(null=True, blank=True)
    node_name = models.CharField(max_length=100, blank=True, default="")
    vm_id = models.IntegerField(null=True, blank=True)
    vm_name = models.CharField(max_length=255, blank=True, default="")
    summary = models.TextField()
    details = models.JSONField(default=dict, blank=True)
    # The page to look at, as a path ("/nodes/3/").
    path = models.CharField(max_length=200, blank=True, default="")
    opened_at = models.DateTimeField()
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-opened_at"]
        indexes = [
            models.Index(fields=["kind", "resolved_at"], name="incident_kind_open"),
            models.Index(fields=["-opened_at"], name="incident_opened"),
        ]

    def __str__(self) -> str:
        return self.summary

    @property
    def is_open(self) -> bool:
        return self.resolved_at is None


class DeliveryEvent(models.TextChoices):
    ALERT = "alert", "Alert"
    RECOVERY = "recovery", "Recovery"
    TEST = "test", "Test"


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SENDING = "sending", "Sending"
    RETRYING = "retrying", "Retrying"
    DELIVERED = "delivered", "Delivered"
    FAILED = "failed", "Failed"


UNSETTLED_DELIVERY_STATUSES = (DeliveryStatus.PENDING, DeliveryStatus.SENDING, DeliveryStatus.RETRYING)


class Delivery(models.Model):
    """One message to one webhook (an incident's alert or recovery, or a test), with every attempt's
    outcome. `body` is exactly what was posted; it never holds the webhook's URL or any secret."""

    webhook = models.ForeignKey(Webhook, on_delete=models.CASCADE, related_name="deliveries")
    incident = models.ForeignKey(Incident, null=True, blank=True, on_delete=models.CASCADE,
                                 related_name="deliveries")
    event = models.CharField(max_length=16, choices=DeliveryEvent.choices)
    status = models.CharField(max_length=16, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    body = models.TextField()
    attempts = models.PositiveIntegerField(default=0)
    status_code = models.PositiveIntegerField(null=True, blank=True)
    error = models.TextField(blank=True, default="")
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            # One alert and one recovery per incident and webhook, however often it is detected.
            models.UniqueConstraint(fields=["webhook", "incident", "event"], name="delivery_once_per_incident"),
        ]
        indexes = [models.Index(fields=["webhook", "-created_at"], name="delivery_webhook_created")]

    def __str__(self) -> str:
        return f"{self.event} to {self.webhook_id} ({self.status})"

    @property
    def is_settled(self) -> bool:
        return self.status not in UNSETTLED_DELIVERY_STATUSES


# What the edit form starts from (the URL is never put back into a form).
WEBHOOK_INITIAL_FIELDS = ("name", "format", "on_node_offline", "on_task_failed", "on_operation_failed",
                          "on_lease_expiring", "lease_window_minutes", "enabled")
