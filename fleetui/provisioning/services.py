"""Writes of the provisioning app: Operations for VM creation, clone, rename, delete, settings and lease,
and storing the settings a node reports on its VM row."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from django.http import HttpRequest
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from fleetui.activity.models import Operation
from fleetui.activity.services import operation_create
from fleetui.nodes.models import Node
from fleetui.vms.models import VM


def parse_node_time(value: Any) -> datetime | None:
    """An ISO-8601 timestamp from a node ("Z" allowed; naive means UTC), or None."""
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        parsed = parse_datetime(value.strip())
    except ValueError:
        return None
    if parsed is None:
        return None
    if timezone.is_naive(parsed):
        parsed = parsed.replace(tzinfo=UTC)
    return parsed


def _int_or_none(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def store_vm_settings(*, vm_pk: int, configuration: dict[str, Any]) -> None:
    """Write a GetVMSettings `configuration` onto the VM row. A missing TTL means no lease."""
    fields: dict[str, Any] = {"settings_at": timezone.now()}
    ttl = _int_or_none(configuration.get("ttlSeconds"))
    fields["ttl_seconds"] = ttl if ttl is not None and ttl > 0 else None
    fields["expires_at"] = parse_node_time(configuration.get("expiresAt"))
    intent = configuration.get("intent")
    if isinstance(intent, str):
        fields["intent"] = intent[:16]
    for key, field in (("displayWidth", "display_width"), ("displayHeight", "display_height"),
                       ("cpuCount", "cpu_count"), ("memorySize", "memory_mb")):
        number = _int_or_none(configuration.get(key))
        if number is not None and number >= 0:
            fields[field] = number
    VM.objects.filter(pk=vm_pk).update(**fields)


def vm_create_request(
    *, node: Node, user: Any, request: HttpRequest | None, name: str, cpu_count: int, memory_mb: int,
    disk_gb: int, oci_image: str = "", ipsw_path: str = "",
) -> Operation:
    params: dict[str, Any] = {"name": name, "cpu_count": cpu_count, "memory_mb": memory_mb, "disk_gb": disk_gb}
    if oci_image:
        params["oci_image"] = oci_image
    if ipsw_path:
        params["ipsw_path"] = ipsw_path
    return operation_create(kind="vm.create", user=user, node=node, params=params, request=request)


def vm_clone_request(*, vm: VM, user: Any, request: HttpRequest | None, new_name: str) -> Operation:
    return operation_create(kind="vm.clone", user=user, node=vm.node, vm=vm, params={"new_name": new_name},
                            request=request)


def vm_rename_request(*, vm: VM, user: Any, request: HttpRequest | None, new_name: str) -> Operation:
    return operation_create(kind="vm.rename", user=user, node=vm.node, vm=vm, params={"new_name": new_name},
                            request=request)


def vm_delete_request(*, vm: VM, user: Any, request: HttpRequest | None) -> Operation:
    return operation_create(kind="vm.delete", user=user, node=vm.node, vm=vm, params={}, request=request)


def vm_settings_request(*, vm: VM, user: Any, request: HttpRequest | None, changes: dict[str, Any]) -> Operation:
    return operation_create(kind="vm.settings", user=user, node=vm.node, vm=vm, params={"changes": changes},
                            request=request)


def vm_lease_request(
    *, vm: VM, user: Any, request: HttpRequest | None, action: str, seconds: int | None = None
) -> Operation:
    if action == "set":
        return operation_create(kind="vm.lease_set", user=user, node=vm.node, vm=vm,
                                params={"ttl_seconds": seconds}, request=request)
    if action == "extend":
        return operation_create(kind="vm.lease_extend", user=user, node=vm.node, vm=vm,
                                params={"extend_seconds": seconds}, request=request)
    if action == "clear":
        return operation_create(kind="vm.lease_clear", user=user, node=vm.node, vm=vm, params={}, request=request)
    raise ValueError(f"unknown lease action {action!r}")


def vm_settings_refresh_request(*, vm: VM, user: Any, request: HttpRequest | None) -> Operation:
    return operation_create(kind="vm.settings_refresh", user=user, node=vm.node, vm=vm, params={}, request=request)
