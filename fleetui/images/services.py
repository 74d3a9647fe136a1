"""Writes for node tasks and the images a node holds, as the poller sees them (changed rows only)."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from ciderstack.types import Task as RemoteTask
from ciderstack.types import enum_value, parse_datetime
from django.core.exceptions import ValidationError

from fleetui.images.models import ACTIVE_TASK_STATUSES, IPSW, NodeTask, OCIImage, TaskStatus

TASK_FIELDS = ("type", "title", "status", "progress", "progress_text", "started_at", "completed_at",
               "vm_remote_id", "vm_name", "error_message")
FINISHED_TASK_STATUSES = (TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.CANCELLED)
_TASK_STATUSES = set(TaskStatus.values)

# registry[:port]/path[:tag][@algo:digest]; path components lowercase, as the OCI distribution spec has it.
OCI_REFERENCE = re.compile(
    r"^(?:[a-zA-Z0-9](?:[a-zA-Z0-9.-]*[a-zA-Z0-9])?(?::[0-9]{1,5})?/)?"
    r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*"
    r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?"
    r"(?:@[a-z0-9]+(?:[+._-][a-z0-9]+)*:[0-9a-fA-F]{32,})?$"
)
MAX_REFERENCE_LENGTH = 512


def validate_oci_reference(reference: Any) -> str:
    """The reference, trimmed; ValidationError in plain words when it is not an OCI image reference."""
    if not isinstance(reference, str) or not reference.strip():
        raise ValidationError("Enter an image reference, e.g. ghcr.io/org/image:latest.")
    value = reference.strip()
    if len(value) > MAX_REFERENCE_LENGTH:
        raise ValidationError(f"An image reference has at most {MAX_REFERENCE_LENGTH} characters.")
    if not OCI_REFERENCE.match(value):
        raise ValidationError("Not an OCI image reference. Use registry/name:tag, e.g. ghcr.io/org/image:latest.")
    return value


def _text(value: Any, limit: int) -> str:
    if value is None:
        return ""
    return str(value).replace("\x00", "")[:limit]


def _size(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = int(value)
    return number if 0 <= number < 2**63 else None


def task_values(remote: RemoteTask) -> dict[str, Any]:
    status = enum_value(remote.status)
    progress = remote.progress if isinstance(remote.progress, int | float) else 0.0
    return {
        "type": _text(remote.type, 64),
        "title": _text(remote.title, 255),
        "status": status if status in _TASK_STATUSES else TaskStatus.UNKNOWN,
        "progress": float(min(100.0, max(0.0, progress))),
        "progress_text": _text(remote.progress_text, 255),
        "started_at": remote.started_at,
        "completed_at": remote.completed_at,
        "vm_remote_id": _text(remote.vm_id, 64),
        "vm_name": _text(remote.vm_name, 255),
        "error_message": _text(remote.error_message, 10_000),
    }


def node_tasks_record(*, node_id: int, remote_tasks: list[RemoteTask], now: datetime) -> dict[str, int]:
    """Upsert a node's tasks (GetTasks with completed ones): new and changed rows only.

    A task still active here that the node stopped listing is set to "unknown", so its progress bar
    does not spin forever.
    """
    seen: dict[str, dict[str, Any]] = {}
    for remote in remote_tasks:
        remote_id = _text(remote.id, 64)
        if remote_id:
            seen[remote_id] = task_values(remote)
    existing = {t.remote_id: t for t in NodeTask.objects.filter(node_id=node_id)}
    to_create: list[NodeTask] = []
    to_update: list[NodeTask] = []
    for remote_id, values in seen.items():
        task = existing.get(remote_id)
        if task is None:
            to_create.append(NodeTask(node_id=node_id, remote_id=remote_id, last_seen_at=now, **values))
            continue
        if all(getattr(task, field) == value for field, value in values.items()):
            continue
        for field, value in values.items():
            setattr(task, field, value)
        task.last_seen_at = now
        to_update.append(task)
    vanished = [t for rid, t in existing.items() if rid not in seen and t.status in ACTIVE_TASK_STATUSES]
    for task in vanished:
        task.status = TaskStatus.UNKNOWN
        task.progress_text = "no longer reported by the node"
        task.last_seen_at = now
    if to_create:
        NodeTask.objects.bulk_create(to_create, batch_size=500)
    if to_update or vanished:
        NodeTask.objects.bulk_update([*to_update, *vanished], [*TASK_FIELDS, "last_seen_at"], batch_size=500)
    return {"tasks_created": len(to_create), "tasks_updated": len(to_update) + len(vanished)}


def tasks_finished_since(remote_tasks: list[RemoteTask], since: datetime | None) -> bool:
    """Whether a task finished after `since` (then the node's images are worth listing again)."""
    for remote in remote_tasks:
        if enum_value(remote.status) in FINISHED_TASK_STATUSES and (
            since is None or remote.completed_at is None or remote.completed_at > since
        ):
            return True
    return False


def node_images_record(
    *, node_id: int, images: list[dict[str, Any]], ipsws: list[dict[str, Any]], now: datetime
) -> dict[str, int]:
    """Replace a node's OCI images and IPSWs with what it listed: changed rows only."""
    written = 0
    image_rows: dict[str, dict[str, Any]] = {}
    for item in images:
        reference = _text(item.get("reference"), 512)
        if reference:
            image_rows[reference] = {
                "digest": _text(item.get("digest"), 128),
                "size_bytes": _size(item.get("sizeBytes")),
                "pulled_at": parse_datetime(item.get("pulledAt")),
            }
    written += _replace(OCIImage, "reference", node_id, image_rows, now)

    ipsw_rows: dict[str, dict[str, Any]] = {}
    for item in ipsws:
        path = _text(item.get("path"), 1024)
        if path:
            ipsw_rows[path] = {
                "name": _text(item.get("name"), 255),
                "version": _text(item.get("version"), 64),
                "size_bytes": _size(item.get("sizeBytes")),
            }
    written += _replace(IPSW, "path", node_id, ipsw_rows, now)
    return {"images_written": written}


def _replace(model: Any, key: str, node_id: int, rows: dict[str, dict[str, Any]], now: datetime) -> int:
    existing = {getattr(obj, key): obj for obj in model.objects.filter(node_id=node_id)}
    to_create = [model(node_id=node_id, seen_at=now, **{key: k}, **values)
                 for k, values in rows.items() if k not in existing]
    to_update = []
    for k, values in rows.items():
        obj = existing.get(k)
        if obj is None or all(getattr(obj, field) == value for field, value in values.items()):
            continue
        for field, value in values.items():
            setattr(obj, field, value)
        obj.seen_at = now
        to_update.append(obj)
    stale = [obj.pk for k, obj in existing.items() if k not in rows]
    if to_create:
        model.objects.bulk_create(to_create)
    if to_update:
        fields = [f for f in next(iter(rows.values())) if f != key] + ["seen_at"]
        model.objects.bulk_update(to_update, fields)
    if stale:
        model.objects.filter(pk__in=stale).delete()
    return len(to_create) + len(to_update) + len(stale)
