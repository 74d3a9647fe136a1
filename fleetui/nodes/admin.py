"""Django admin for nodes: what the pollers saw, never the credentials.

Nodes are registered and their tokens entered through the app's own forms (which probe the node
and encrypt the token); here an admin can rename, inspect, queue a poll and remove.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from fleetui.nodes.models import Node

_OBSERVED = (
    "host", "port", "api_token_prefix", "token_permission", "role", "remote_node_id", "hostname", "ip_address",
    "machine_model", "os_version", "cpu_cores", "total_memory_gb", "fleet_version", "info_at",
    "cpu_usage_percent", "memory_used_gb", "memory_total_gb", "disk_used_gb", "disk_total_gb",
    "running_vm_count", "total_vm_count", "stats_at", "resources", "resources_at", "fleet_overview_at",
    "images_at", "last_poll_started_at", "last_poll_at", "last_poll_duration_ms", "last_success_at",
    "last_error", "last_error_at", "consecutive_failures", "backoff_until", "paired_at", "created_at",
    "updated_at", "created_by",
)


@admin.register(Node)
class NodeAdmin(admin.ModelAdmin):
    list_display = ("name", "address", "role", "token_permission", "health_display", "last_success_at",
                    "consecutive_failures", "last_error")
    list_filter = ("role", "token_permission")
    search_fields = ("name", "host", "hostname", "remote_node_id")
    # Credentials (api_token_enc, paired_node_id_enc, pairing_private_key_enc) are left out entirely.
    fields = ("name", *_OBSERVED)
    readonly_fields = _OBSERVED
    actions = ("queue_poll",)

    @admin.display(description="Health")
    def health_display(self, obj: Node) -> str:
        return obj.health()

    def has_add_permission(self, request: HttpRequest) -> bool:
        # Registration probes the node and encrypts the token: the Nodes page does that.
        return False

    @admin.action(description="Poll the selected nodes now")
    def queue_poll(self, request: HttpRequest, queryset: QuerySet[Node]) -> None:
        from fleetui.nodes.tasks import poll_node

        queued = 0
        for node_id in queryset.values_list("pk", flat=True):
            try:
                poll_node.apply_async(args=[node_id], kwargs={"force": True}, retry=False)
                queued += 1
            except Exception:  # noqa: BLE001 - broker down: say so instead of a 500
                self.message_user(request, "The task queue (Redis) is unreachable; nothing was queued.",
                                  messages.ERROR)
                return
        self.message_user(request, f"Queued a poll of {queued} node(s).")
