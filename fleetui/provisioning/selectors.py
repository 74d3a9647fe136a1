"""Reads of the provisioning app: node capacity for placement, VMs whose lease runs out soon."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.db.models import QuerySet
from django.utils import timezone

from fleetui.activity.models import Operation
from fleetui.nodes.models import Health, Node
from fleetui.vms.models import VM


def _number(resources: dict[str, Any], key: str) -> float | None:
    value = resources.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


@dataclass
class NodeCapacity:
    node: Node
    health: str
    cpu: float | None
    memory_gb: float | None
    disk_gb: float | None
    running: int | None
    max_vms: int | None
    usable: bool
    reason: str

    @property
    def score(self) -> tuple:
        """Most room first: usable, then free memory, CPU, disk."""
        return (self.usable, self.memory_gb or 0.0, self.cpu or 0.0, self.disk_gb or 0.0)


def node_capacities() -> list[NodeCapacity]:
    """Every node's free capacity (GetRemoteResources as the poller stored it), best first."""
    now = timezone.now()
    out = []
    for node in Node.objects.order_by("name"):
        res = node.resources if isinstance(node.resources, dict) else {}
        health = node.health(now)
        running = _number(res, "runningVMs")
        max_vms = _number(res, "maxVMs")
        reason = ""
        if node.is_read_only:
            reason = "read-only token"
        elif health != Health.ONLINE:
            reason = f"node is {health}"
        elif not res:
            reason = "capacity not reported yet"
        out.append(NodeCapacity(
            node=node, health=health, cpu=_number(res, "availableCPU"), memory_gb=_number(res, "availableMemoryGB"),
            disk_gb=_number(res, "availableDiskGB"), running=int(running) if running is not None else None,
            max_vms=int(max_vms) if max_vms is not None else None, usable=not reason, reason=reason,
        ))
    out.sort(key=lambda c: c.score, reverse=True)
    return out


def suggested_node(capacities: list[NodeCapacity]) -> Node | None:
    usable = [c for c in capacities if c.usable]
    return max(usable, key=lambda c: c.score).node if usable else None


def expiring_vms(*, within_seconds: int) -> QuerySet[VM]:
    """VMs (still on their node) whose lease ends within the window, soonest first; overdue ones included."""
    horizon = timezone.now() + timedelta(seconds=within_seconds)
    return (VM.objects.select_related("node")
            .filter(gone_at__isnull=True, expires_at__isnull=False, expires_at__lte=horizon)
            .order_by("expires_at", "name"))


def vm_recent_operations(vm: VM, *, kinds: tuple[str, ...], limit: int = 5) -> list[Operation]:
    return list(Operation.objects.filter(vm=vm, kind__in=kinds).order_by("-created_at")[:limit])
