"""What FleetUI knows of each node's API tokens, and generated tokens waiting to be shown once.

The token list is read by a worker (node-ID auth, after pairing) and cached here, stamped with
when it was read: pages never call a node.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from fleetui.nodes.models import Node


class TokenPermission(models.TextChoices):
    READ_ONLY = "readOnly", "Read-only"
    FULL_ACCESS = "fullAccess", "Full access"


class NodeTokenList(models.Model):
    """When a node's token list was last read (or last failed to be read)."""

    node = models.OneToOneField(Node, on_delete=models.CASCADE, primary_key=True, related_name="token_list")
    fetched_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="")
    last_error_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"tokens of {self.node_id} as of {self.fetched_at}"

    @property
    def error_is_current(self) -> bool:
        """The latest attempt to read the list failed (the list shown is older than that)."""
        if not self.last_error or self.last_error_at is None:
            return False
        return self.fetched_at is None or self.last_error_at > self.fetched_at


class NodeAPIToken(models.Model):
    """One APITokenSummary as the node reported it (prefix only: the node never lists full tokens)."""

    node = models.ForeignKey(Node, on_delete=models.CASCADE, related_name="api_tokens")
    remote_id = models.CharField(max_length=64)
    name = models.CharField(max_length=255, blank=True, default="")
    token_prefix = models.CharField(max_length=32, blank=True, default="")
    permission = models.CharField(max_length=16, blank=True, default="")
    created_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    seen_at = models.DateTimeField()

    class Meta:
        ordering = ["name", "created_at"]
        constraints = [models.UniqueConstraint(fields=["node", "remote_id"], name="apitoken_unique_per_node")]

    def __str__(self) -> str:
        return f"{self.name} ({self.token_prefix}…)"

    @property
    def permission_label(self) -> str:
        try:
            return TokenPermission(self.permission).label
        except ValueError:
            return self.permission or "unknown"


class TokenReveal(models.Model):
    """A generated token, encrypted, waiting for the one page view that shows it.

    The worker writes it (the full token never goes into the Operation, a Celery message or a
    result); the page deletes it in the same request that shows it, so a second view, a reload or
    another user finds nothing. Unclaimed rows are useless after `expires_at` and are purged.
    """

    operation_id = models.UUIDField(primary_key=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.CASCADE, related_name="+")
    token_enc = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()

    def __repr__(self) -> str:
        return f"<TokenReveal {self.operation_id}>"

    __str__ = __repr__
