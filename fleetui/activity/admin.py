"""Django admin for the activity log: read-only. Operations are an append-only audit trail, so no
one (superusers included) can add, change or delete them here; fleet events are what nodes said."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from fleetui.activity.models import FleetEvent, Operation


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_actions(self, request: HttpRequest) -> dict:
        return {}


@admin.register(Operation)
class OperationAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "kind", "status", "username", "node_name", "vm_name", "error")
    list_filter = ("status", "kind")
    search_fields = ("username", "node_name", "vm_name", "kind", "request_id", "id")
    date_hierarchy = "created_at"
    list_select_related = False
    fields = ("id", "kind", "status", "username", "user", "node_name", "node", "vm_name", "vm_remote_id", "vm",
              "params", "result", "error", "created_at", "started_at", "finished_at", "source_ip", "request_id")
    readonly_fields = fields


@admin.register(FleetEvent)
class FleetEventAdmin(ReadOnlyAdmin):
    list_display = ("timestamp", "event_type", "node_name", "vm_name", "message")
    list_filter = ("event_type",)
    search_fields = ("message", "node_name", "vm_name", "remote_id")
    date_hierarchy = "timestamp"
    fields = ("timestamp", "event_type", "node_name", "vm_name", "vm_remote_id", "message", "remote_id",
              "source_node", "received_at")
    readonly_fields = fields
