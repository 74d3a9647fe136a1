"""The alternatives the poller is measured against, in the benchmark process:

- sdk_only_sequential: the same SDK calls as a poll, one node after the other, no database.
- naive_sequential_poll: one node after the other, and writes everything it saw every time
  (update_or_create per VM and task, full node row, every stats sample): "upsert everything".
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from typing import Any

from ciderstack import FleetClient
from ciderstack.types import enum_value
from django.db import transaction
from django.utils import timezone

from fleetui.activity.models import FleetEvent
from fleetui.images.models import NodeTask
from fleetui.nodes.models import Node, NodeStatsSample
from fleetui.vms.models import VM


@dataclass
class NodeCreds:
    pk: int
    host: str
    port: int
    token: str
    manager: bool


def _fetch(client: FleetClient, manager: bool) -> dict[str, Any]:
    seen: dict[str, Any] = {
        "info": client.get_node_info(),
        "stats": client.get_node_stats(),
        "vms": client.list_vms(),
        "tasks": client.get_tasks(include_completed=True),
    }
    if manager:
        seen["overview"] = client.get_fleet_overview()
        seen["events"] = client.get_fleet_events(limit=200)
    return seen


def sdk_only_sequential(nodes: list[NodeCreds], *, deadline: float) -> tuple[float, int]:
    """Seconds for the SDK calls of one poll per node, sequentially; and how many nodes failed."""
    started = time.perf_counter()
    failed = 0
    for creds in nodes:
        if time.monotonic() > deadline:
            raise TimeoutError("naive sequential poll ran past its time budget")
        try:
            with FleetClient(creds.host, api_token=creds.token, port=creds.port, timeout=10) as client:
                _fetch(client, creds.manager)
        except Exception:
            failed += 1
    return time.perf_counter() - started, failed


def _naive_write(creds: NodeCreds, seen: dict[str, Any]) -> None:
    now = timezone.now()
    info, stats = seen["info"], seen["stats"]
    with transaction.atomic():
        node = Node.objects.get(pk=creds.pk)
        node.remote_node_id = info.node_id
        node.hostname = info.hostname
        node.ip_address = info.ip_address
        node.machine_model = info.machine_model
        node.os_version = info.os_version
        node.cpu_cores = info.cpu_cores
        node.total_memory_gb = info.total_memory_gb
        node.fleet_version = info.fleet_version
        node.info_at = now
        node.cpu_usage_percent = stats.cpu_usage_percent
        node.memory_used_gb = stats.memory_used_gb
        node.memory_total_gb = stats.memory_total_gb
        node.disk_used_gb = stats.disk_used_gb
        node.disk_total_gb = stats.disk_total_gb
        node.running_vm_count = stats.running_vm_count
        node.total_vm_count = stats.total_vm_count
        node.stats_at = now
        if "overview" in seen:
            node.fleet_overview = seen["overview"]
            node.fleet_overview_at = now
        node.last_poll_at = now
        node.last_success_at = now
        node.save()
        NodeStatsSample.objects.create(
            node=node, at=now, cpu_usage_percent=stats.cpu_usage_percent, memory_used_gb=stats.memory_used_gb,
            memory_total_gb=stats.memory_total_gb, disk_used_gb=stats.disk_used_gb,
            disk_total_gb=stats.disk_total_gb, running_vm_count=stats.running_vm_count,
            total_vm_count=stats.total_vm_count,
        )
        for vm in seen["vms"]:
            VM.objects.update_or_create(
                node=node, remote_id=vm.id,
                defaults={
                    "name": vm.name, "state": enum_value(vm.state), "cpu_count": vm.cpu_count,
                    "memory_mb": vm.memory_mb, "disk_size_gb": vm.disk_size_gb, "os_version": vm.os_version or "",
                    "ip_address": vm.ip_address or "", "last_seen_at": now, "changed_at": now, "gone_at": None,
                },
            )
        for task in seen["tasks"]:
            NodeTask.objects.update_or_create(
                node=node, remote_id=task.id,
                defaults={
                    "type": task.type, "title": task.title, "status": enum_value(task.status),
                    "progress": task.progress, "progress_text": task.progress_text or "",
                    "started_at": task.started_at, "completed_at": task.completed_at,
                    "vm_remote_id": task.vm_id or "", "vm_name": task.vm_name or "",
                    "error_message": task.error_message or "", "last_seen_at": now,
                },
            )
        for event in seen.get("events", []):
            remote_id = str(event.get("id") or hashlib.sha256(repr(sorted(event.items())).encode()).hexdigest())
            FleetEvent.objects.update_or_create(
                source_node=node, remote_id=remote_id[:128],
                defaults={
                    "event_type": str(event.get("eventType", ""))[:64], "node_name": str(event.get("nodeName", "")),
                    "message": str(event.get("message", "")), "vm_remote_id": str(event.get("vmID") or ""),
                    "vm_name": str(event.get("vmName") or ""), "timestamp": now,
                },
            )


def naive_sequential_poll(nodes: list[NodeCreds], *, deadline: float) -> tuple[float, int]:
    """Seconds for a sequential poll that upserts everything it saw; and how many nodes failed."""
    started = time.perf_counter()
    failed = 0
    for creds in nodes:
        if time.monotonic() > deadline:
            raise TimeoutError("naive sequential poll ran past its time budget")
        try:
            with FleetClient(creds.host, api_token=creds.token, port=creds.port, timeout=10) as client:
                seen = _fetch(client, creds.manager)
        except Exception:
            failed += 1
            continue
        _naive_write(creds, seen)
    return time.perf_counter() - started, failed
