"""Writes for VMs: the poller's upsert of a node's VM list, and per-VM details (snapshots, settings).

Rows are written only when what the node reports changed, so a quiet fleet costs no VM writes.
A VM that is not gone was seen at its node's last_success_at; last_seen_at and changed_at move
only when the row is written.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from ciderstack.errors import FleetError
from ciderstack.types import VM as RemoteVM
from ciderstack.types import Snapshot as RemoteSnapshot
from ciderstack.types import enum_value, parse_datetime
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from fleetui.core.crypto import CredentialUnreadable
from fleetui.vms.models import VM, Snapshot, VMState

logger = logging.getLogger(__name__)

VM_FIELDS = ("name", "state", "cpu_count", "memory_mb", "disk_size_gb", "os_version", "ip_address")
SNAPSHOT_FIELDS = ("name", "description", "created_at", "size_bytes")
_STATES = set(VMState.values)
_MAX_POSITIVE = 2_147_483_647


def _text(value: Any, limit: int) -> str:
    if value is None:
        return ""
    text = str(value).replace("\x00", "")
    return text[:limit]


def _count(value: Any) -> int | None:
    """A non-negative int that fits a PositiveIntegerField, or None."""
    if value is None or isinstance(value, bool):
        return None
    try:
        number = int(value)
    except (TypeError, ValueError):
        return None
    return number if 0 <= number <= _MAX_POSITIVE else None


def vm_values(remote: RemoteVM) -> dict[str, Any]:
    """The VM columns for what ListVMs said, cleaned to fit the model."""
    state = enum_value(remote.state)
    return {
        "name": _text(remote.name, 255) or _text(remote.id, 255),
        "state": state if state in _STATES else VMState.UNKNOWN,
        "cpu_count": _count(remote.cpu_count),
        "memory_mb": _count(remote.memory_mb),
        "disk_size_gb": _count(remote.disk_size_gb),
        "os_version": _text(remote.os_version, 64),
        "ip_address": _text(remote.ip_address, 64),
    }


def vms_record(*, node_id: int, remote_vms: list[RemoteVM], now: datetime) -> dict[str, int]:
    """Upsert a node's VM list: create new VMs, update changed ones, mark missing ones gone.

    Returns the counts of rows written: vms_created, vms_updated, vms_gone.
    """
    seen: dict[str, dict[str, Any]] = {}
    for remote in remote_vms:
        remote_id = _text(remote.id, 64)
        if remote_id:
            seen[remote_id] = vm_values(remote)

    existing = {vm.remote_id: vm for vm in VM.objects.filter(node_id=node_id).only("id", "remote_id", "gone_at",
                                                                                    *VM_FIELDS)}
    to_create: list[VM] = []
    to_update: list[VM] = []
    for remote_id, values in seen.items():
        vm = existing.get(remote_id)
        if vm is None:
            to_create.append(VM(node_id=node_id, remote_id=remote_id, last_seen_at=now, changed_at=now, **values))
            continue
        if vm.gone_at is None and all(getattr(vm, field) == value for field, value in values.items()):
            continue
        for field, value in values.items():
            setattr(vm, field, value)
        vm.gone_at = None
        vm.last_seen_at = now
        vm.changed_at = now
        to_update.append(vm)

    gone = [vm for remote_id, vm in existing.items() if remote_id not in seen and vm.gone_at is None]
    for vm in gone:
        vm.gone_at = now
        vm.changed_at = now

    if to_create:
        VM.objects.bulk_create(to_create, batch_size=500)
    if to_update:
        VM.objects.bulk_update(to_update, [*VM_FIELDS, "gone_at", "last_seen_at", "changed_at"], batch_size=500)
    if gone:
        VM.objects.bulk_update(gone, ["gone_at", "changed_at"], batch_size=500)
    return {"vms_created": len(to_create), "vms_updated": len(to_update), "vms_gone": len(gone)}


def _snapshot_values(remote: RemoteSnapshot) -> dict[str, Any]:
    return {
        "name": _text(remote.name, 255) or _text(remote.id, 255),
        "description": _text(remote.description, 10_000),
        "created_at": remote.created_at,
        "size_bytes": remote.size_bytes if isinstance(remote.size_bytes, int) and remote.size_bytes >= 0 else None,
    }


def snapshots_record(*, vm: VM, remote_snapshots: list[RemoteSnapshot], now: datetime) -> dict[str, int]:
    """Upsert a VM's snapshots (changed rows only) and delete the ones the node no longer lists."""
    seen = {_text(s.id, 64): _snapshot_values(s) for s in remote_snapshots if s.id}
    existing = {s.remote_id: s for s in Snapshot.objects.filter(vm=vm)}
    to_create = [Snapshot(vm=vm, remote_id=rid, seen_at=now, **values)
                 for rid, values in seen.items() if rid not in existing]
    to_update = []
    for rid, values in seen.items():
        snap = existing.get(rid)
        if snap is None or all(getattr(snap, field) == value for field, value in values.items()):
            continue
        for field, value in values.items():
            setattr(snap, field, value)
        snap.seen_at = now
        to_update.append(snap)
    stale = [s.pk for rid, s in existing.items() if rid not in seen]
    if to_create:
        Snapshot.objects.bulk_create(to_create)
    if to_update:
        Snapshot.objects.bulk_update(to_update, [*SNAPSHOT_FIELDS, "seen_at"])
    if stale:
        Snapshot.objects.filter(pk__in=stale).delete()
    return {"snapshots_created": len(to_create), "snapshots_updated": len(to_update), "snapshots_deleted": len(stale)}


def _settings_values(configuration: dict[str, Any]) -> dict[str, Any]:
    """VM columns from GetVMSettings' configuration (keys per the protocol, read tolerantly)."""
    ttl = configuration.get("ttlSeconds")
    ttl_seconds = int(ttl) if isinstance(ttl, int | float) and not isinstance(ttl, bool) and ttl > 0 else None
    intent = configuration.get("intent")
    values: dict[str, Any] = {
        "intent": _text(intent, 16) if isinstance(intent, str) else "",
        "ttl_seconds": ttl_seconds,
        "expires_at": parse_datetime(configuration.get("expiresAt")) if ttl_seconds else None,
        "display_width": _count(configuration.get("displayWidth")),
        "display_height": _count(configuration.get("displayHeight")),
    }
    return values


def vm_refresh_details(*, vm_id: int, wait: float = 5.0) -> str:
    """Fetch one VM's snapshots and settings from its node and store them (one fetch per VM at a
    time: a second caller waits up to `wait` s, then gives up).

    Returns "" on success, else what went wrong in plain words (nothing is raised: the page shows
    the details it has, with their age).
    """
    from fleetui.nodes.client import client_for, describe_error
    from fleetui.nodes.locks import redis_lock

    vm = VM.objects.select_related("node").filter(pk=vm_id).first()
    if vm is None:
        return "the VM is no longer known"
    if vm.is_gone:
        return "the VM is no longer on its node"
    node = vm.node
    if node.circuit_open:
        return "the node is not answering (polls are backed off)"
    ttl = 2 * (settings.NODE_CONNECT_TIMEOUT + settings.NODE_READ_TIMEOUT) + 10
    with redis_lock(f"vm-details:{vm.pk}", ttl=ttl, wait=wait) as acquired:
        if not acquired:
            return "the VM's details are being fetched already"
        try:
            with client_for(node) as client:
                # The VM itself first (its state may have moved since the last poll; gone, it has no details).
                remote_vm = client.get_vm(vm.remote_id)
                if remote_vm is not None:
                    remote_snapshots = client.list_snapshots(vm.remote_id)
                    configuration = client.get_vm_settings(vm.remote_id)
        except (FleetError, CredentialUnreadable) as exc:
            message = describe_error(exc, timeout=float(settings.NODE_READ_TIMEOUT))
            logger.info("details of VM %s on node %s not refreshed: %s", vm.pk, node.pk, message)
            return message
        now = timezone.now()
        if remote_vm is None:
            VM.objects.filter(pk=vm.pk, gone_at__isnull=True).update(gone_at=now, changed_at=now)
            return "the VM is no longer on its node"
        values = vm_values(remote_vm)
        if any(getattr(vm, field) != value for field, value in values.items()):
            VM.objects.filter(pk=vm.pk).update(**values, last_seen_at=now, changed_at=now)
        with transaction.atomic():
            snapshots_record(vm=vm, remote_snapshots=remote_snapshots, now=now)
            VM.objects.filter(pk=vm.pk).update(**_settings_values(configuration), settings_at=now,
                                               snapshots_at=now)
    return ""

