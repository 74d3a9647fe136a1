"""Operation handlers for creating, cloning, renaming, deleting VMs and changing their settings and lease.

Run by fleetui.activity.tasks.run_operation in a worker; each returns the result stored on the
Operation and raises a FleetError subclass when the node refuses or cannot be reached.
"""

from __future__ import annotations

import math
from typing import Any

from ciderstack import FleetClient
from ciderstack.errors import FleetError, FleetNodeError, FleetProtocolError
from django.utils import timezone

from fleetui.activity.models import Operation
from fleetui.activity.registry import operation_handler
from fleetui.provisioning.follow import new_task_id, task_ids
from fleetui.provisioning.services import parse_node_time, store_vm_settings


@operation_handler("vm.create", label="Create VM", needs_vm=False, mutating=True)
def vm_create(op: Operation, client: FleetClient, secrets: dict[str, str]) -> dict[str, Any]:
    params = op.params
    try:
        before: set[str] | None = task_ids(client)
    except FleetError:
        before = None  # following the task is a convenience; creating the VM is what was asked
    vm_id = client.create_vm(
        name=params["name"],
        cpu_count=int(params["cpu_count"]),
        memory_mb=int(params["memory_mb"]),
        disk_gb=int(params["disk_gb"]),
        ipsw_path=params.get("ipsw_path") or None,
        oci_image=params.get("oci_image") or None,
    )
    if not vm_id:
        raise FleetProtocolError("CreateVMOnNode: the node accepted the request but named no vmID")
    task_id = ""
    if before is not None:
        try:
            task_id = new_task_id(client, before, title_hint=params["name"], vm_id=vm_id)
        except FleetError:
            task_id = ""
    return {"vm_id": vm_id, "task_id": task_id, "name": params["name"]}


@operation_handler("vm.clone", label="Clone VM", needs_vm=True, mutating=True)
def vm_clone(op: Operation, client: FleetClient, secrets: dict[str, str]) -> dict[str, Any]:
    clone = client.clone_vm(op.vm_remote_id, op.params["new_name"])
    return {"vm_id": clone.id, "name": clone.name}


@operation_handler("vm.rename", label="Rename VM", needs_vm=True, mutating=True)
def vm_rename(op: Operation, client: FleetClient, secrets: dict[str, str]) -> dict[str, Any]:
    client.rename_vm(op.vm_remote_id, op.params["new_name"])
    return {"name": op.params["new_name"], "old_name": op.vm_name}


@operation_handler("vm.delete", label="Delete VM", needs_vm=True, mutating=True)
def vm_delete(op: Operation, client: FleetClient, secrets: dict[str, str]) -> dict[str, Any]:
    client.delete_vm(op.vm_remote_id)
    return {"deleted": op.vm_name}


def _refresh_settings(op: Operation, client: FleetClient) -> dict[str, Any]:
    """Read back what the node now holds, store it on the VM row, and return it for the result."""
    configuration = client.get_vm_settings(op.vm_remote_id)
    if op.vm_id is not None:
        store_vm_settings(vm_pk=op.vm_id, configuration=configuration)
    return configuration


def _settings_result(configuration: dict[str, Any], **extra: Any) -> dict[str, Any]:
    keep = ("cpuCount", "memorySize", "displayWidth", "displayHeight", "intent", "ttlSeconds", "expiresAt")
    return {**extra, "settings": {key: configuration[key] for key in keep if key in configuration}}


@operation_handler("vm.settings", label="Change VM settings", needs_vm=True, mutating=True)
def vm_settings(op: Operation, client: FleetClient, secrets: dict[str, str]) -> dict[str, Any]:
    changes = op.params.get("changes") or {}
    if not changes:
        raise FleetNodeError("nothing to change")
    client.update_vm_settings(
        op.vm_remote_id,
        cpu_count=changes.get("cpu_count"),
        memory_size=changes.get("memory_mb"),
        display_width=changes.get("display_width"),
        display_height=changes.get("display_height"),
        intent=changes.get("intent"),
    )
    return _settings_result(_refresh_settings(op, client), changed=sorted(changes))


@operation_handler("vm.lease_set", label="Set VM lease (TTL)", needs_vm=True, mutating=True)
def vm_lease_set(op: Operation, client: FleetClient, secrets: dict[str, str]) -> dict[str, Any]:
    ttl = int(op.params["ttl_seconds"])
    client.update_vm_settings(op.vm_remote_id, ttl_seconds=ttl)
    return _settings_result(_refresh_settings(op, client), ttl_seconds=ttl)


@operation_handler("vm.lease_extend", label="Extend VM lease (TTL)", needs_vm=True, mutating=True)
def vm_lease_extend(op: Operation, client: FleetClient, secrets: dict[str, str]) -> dict[str, Any]:
    """Push the expiry `extend_seconds` past the node's current expiresAt (read now, not from the page)."""
    extend = int(op.params["extend_seconds"])
    current = client.get_vm_settings(op.vm_remote_id)
    expires_at = parse_node_time(current.get("expiresAt"))
    if expires_at is None:
        raise FleetNodeError("the VM has no lease to extend; set one first")
    remaining = (expires_at - timezone.now()).total_seconds()
    ttl = math.ceil(remaining + extend)
    if ttl < 60:
        raise FleetNodeError(
            f"the lease ran out {_ago(-remaining)} ago; extending it by {extend} s would still leave it expired. "
            "Set a new lease instead"
        )
    client.update_vm_settings(op.vm_remote_id, ttl_seconds=ttl)
    return _settings_result(
        _refresh_settings(op, client), ttl_seconds=ttl, extend_seconds=extend,
        previous_expires_at=expires_at.isoformat(),
    )


@operation_handler("vm.lease_clear", label="Clear VM lease (TTL)", needs_vm=True, mutating=True)
def vm_lease_clear(op: Operation, client: FleetClient, secrets: dict[str, str]) -> dict[str, Any]:
    client.update_vm_settings(op.vm_remote_id, ttl_seconds=-1)
    return _settings_result(_refresh_settings(op, client), ttl_seconds=-1)


@operation_handler("vm.settings_refresh", label="Read VM settings", needs_vm=True, mutating=False)
def vm_settings_refresh(op: Operation, client: FleetClient, secrets: dict[str, str]) -> dict[str, Any]:
    return _settings_result(_refresh_settings(op, client))


def _ago(seconds: float) -> str:
    seconds = int(max(0, seconds))
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    return f"{seconds // 3600} h"
