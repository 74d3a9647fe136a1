"""Operation handlers for VMs: lifecycle and snapshots (see fleetui.activity.registry)."""

from __future__ import annotations

from typing import Any

from ciderstack import FleetClient
from django.core.exceptions import ValidationError

from fleetui.activity.models import Operation
from fleetui.activity.registry import operation_handler
from fleetui.vms.models import VM, Snapshot

MAX_SNAPSHOT_NAME = 255
MAX_SNAPSHOT_DESCRIPTION = 1000


def _vm_id(op: Operation) -> str:
    return op.vm_remote_id or (op.vm.remote_id if op.vm else "")


@operation_handler("vm.start", label="Start VM", needs_vm=True)
def vm_start(op: Operation, client: FleetClient, secrets: dict[str, str]) -> dict[str, Any]:
    client.start_vm(_vm_id(op))
    return {}


@operation_handler("vm.stop", label="Stop VM", needs_vm=True)
def vm_stop(op: Operation, client: FleetClient, secrets: dict[str, str]) -> dict[str, Any]:
    client.stop_vm(_vm_id(op))
    return {}


@operation_handler("vm.suspend", label="Suspend VM", needs_vm=True)
def vm_suspend(op: Operation, client: FleetClient, secrets: dict[str, str]) -> dict[str, Any]:
    client.suspend_vm(_vm_id(op))
    return {}


@operation_handler("vm.resume", label="Resume VM", needs_vm=True)
def vm_resume(op: Operation, client: FleetClient, secrets: dict[str, str]) -> dict[str, Any]:
    # The protocol resumes a paused VM with StartVM.
    client.start_vm(_vm_id(op))
    return {}


@operation_handler("vm.start_recovery", label="Start VM in recovery", needs_vm=True)
def vm_start_recovery(op: Operation, client: FleetClient, secrets: dict[str, str]) -> dict[str, Any]:
    client.start_vm_recovery(_vm_id(op))
    return {}


def _plain(value: Any, *, field: str, limit: int, required: bool) -> str:
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise ValidationError(f"The snapshot {field} must be text.")
    value = value.strip()
    if required and not value:
        raise ValidationError(f"Give the snapshot a {field}.")
    if len(value) > limit:
        raise ValidationError(f"A snapshot {field} has at most {limit} characters.")
    if any(ord(ch) < 32 and ch not in "\n\t" or ord(ch) == 127 for ch in value):
        raise ValidationError(f"Remove the control characters from the snapshot {field}.")
    return value


def _validate_create(params: dict[str, Any], vm: VM | None) -> dict[str, Any]:
    name = _plain(params.get("name"), field="name", limit=MAX_SNAPSHOT_NAME, required=True)
    if "\n" in name or "\t" in name:
        raise ValidationError("A snapshot name is one line.")
    description = _plain(params.get("description"), field="description", limit=MAX_SNAPSHOT_DESCRIPTION,
                         required=False)
    return {"name": name, "description": description}


def _validate_snapshot_ref(params: dict[str, Any], vm: VM | None) -> dict[str, Any]:
    """snapshot_id: the node's id of one of this VM's known snapshots (or our row id, converted)."""
    raw = params.get("snapshot_id")
    if raw is None or str(raw).strip() == "":
        raise ValidationError("Choose a snapshot.")
    value = str(raw).strip()
    snapshots = Snapshot.objects.filter(vm=vm)
    snapshot = snapshots.filter(remote_id=value).first()
    if snapshot is None and value.isdigit():
        snapshot = snapshots.filter(pk=int(value)).first()
    if snapshot is None:
        raise ValidationError("That snapshot is not one of this VM's (it may have been deleted).")
    return {"snapshot_id": snapshot.remote_id, "snapshot_name": snapshot.name}


@operation_handler("snapshot.create", label="Create snapshot", needs_vm=True, validate=_validate_create,
                   refresh_vm_details=True)
def snapshot_create(op: Operation, client: FleetClient, secrets: dict[str, str]) -> dict[str, Any]:
    snapshot = client.create_snapshot(_vm_id(op), op.params["name"], op.params.get("description") or None)
    return {"snapshot_id": snapshot.id, "snapshot_name": snapshot.name}


@operation_handler("snapshot.restore", label="Restore snapshot", needs_vm=True, validate=_validate_snapshot_ref,
                   refresh_vm_details=True)
def snapshot_restore(op: Operation, client: FleetClient, secrets: dict[str, str]) -> dict[str, Any]:
    client.restore_snapshot(_vm_id(op), op.params["snapshot_id"])
    return {}


@operation_handler("snapshot.delete", label="Delete snapshot", needs_vm=True, validate=_validate_snapshot_ref,
                   refresh_vm_details=True)
def snapshot_delete(op: Operation, client: FleetClient, secrets: dict[str, str]) -> dict[str, Any]:
    client.delete_snapshot(_vm_id(op), op.params["snapshot_id"])
    return {}
