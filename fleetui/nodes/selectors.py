"""Reads for the fleet and node pages. Each function does its own joins so a page's query count
stays fixed however many nodes, VMs or samples there are."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.core.paginator import Paginator
from django.db.models import Count, IntegerField, OuterRef, Q, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce
from django.shortcuts import get_object_or_404
from django.utils import timezone

from fleetui.activity.models import FleetEvent, Operation
from fleetui.images.models import ACTIVE_TASK_STATUSES, NodeTask
from fleetui.nodes.models import Health, Node, NodeStatsSample
from fleetui.vms.models import VMState

# How much history the overview's sparklines and the node page's chart show.
SPARKLINE_WINDOW = timedelta(minutes=30)
CHART_WINDOW = timedelta(hours=6)


def nodes_with_counts() -> QuerySet[Node]:
    """Nodes with their VM counts (from the VM table, gone ones left out) and active task count."""
    active_tasks = (
        NodeTask.objects.filter(node=OuterRef("pk"), status__in=ACTIVE_TASK_STATUSES)
        .order_by()
        .values("node")
        .annotate(n=Count("id"))
        .values("n")
    )
    present = Q(vms__gone_at__isnull=True)
    return Node.objects.annotate(
        vm_total=Count("vms", filter=present),
        vm_running=Count("vms", filter=present & Q(vms__state=VMState.RUNNING)),
        active_task_count=Coalesce(Subquery(active_tasks, output_field=IntegerField()), Value(0)),
    ).order_by("name")


def _percent(used: float | None, total: float | None) -> float | None:
    if used is None or not total:
        return None
    return max(0.0, min(100.0, 100.0 * used / total))


@dataclass
class FleetTotals:
    nodes_total: int = 0
    nodes_online: int = 0
    vms_total: int = 0
    vms_running: int = 0
    cpu_percent: float | None = None
    memory_used_gb: float = 0.0
    memory_total_gb: float = 0.0
    disk_used_gb: float = 0.0
    disk_total_gb: float = 0.0
    health_counts: dict[str, int] = field(default_factory=dict)

    @property
    def memory_percent(self) -> float | None:
        return _percent(self.memory_used_gb, self.memory_total_gb)

    @property
    def disk_percent(self) -> float | None:
        return _percent(self.disk_used_gb, self.disk_total_gb)


def fleet_totals(nodes: list[Node], now: datetime) -> FleetTotals:
    totals = FleetTotals(nodes_total=len(nodes))
    cpu: list[float] = []
    for node in nodes:
        health = node.health(now)
        totals.health_counts[health] = totals.health_counts.get(health, 0) + 1
        totals.vms_total += node.vm_total
        totals.vms_running += node.vm_running
        if health != Health.ONLINE:
            continue
        totals.nodes_online += 1
        if node.cpu_usage_percent is not None:
            cpu.append(node.cpu_usage_percent)
        totals.memory_used_gb += node.memory_used_gb or 0
        totals.memory_total_gb += node.memory_total_gb or 0
        totals.disk_used_gb += node.disk_used_gb or 0
        totals.disk_total_gb += node.disk_total_gb or 0
    totals.cpu_percent = sum(cpu) / len(cpu) if cpu else None
    return totals


def decorate_node(node: Node, now: datetime) -> Node:
    """Attach what templates need and cannot compute: health, percentages, history series."""
    node.health_state = node.health(now)
    node.memory_percent = _percent(node.memory_used_gb, node.memory_total_gb)
    node.disk_percent = _percent(node.disk_used_gb, node.disk_total_gb)
    samples = getattr(node, "recent_samples", None)
    if samples is not None:
        node.cpu_history = [s.cpu_usage_percent for s in samples]
        node.memory_history = [_percent(s.memory_used_gb, s.memory_total_gb) or 0.0 for s in samples]
    return node


# The fleet page shows this many node cards at a time, the nodes that need attention first.
OVERVIEW_PAGE_SIZE = 48
# Card order: what needs attention (offline, stale, not yet polled) before the healthy ones.
_ATTENTION = {Health.OFFLINE: 0, Health.STALE: 1, Health.PENDING: 2, Health.ONLINE: 3}
# Node columns no list or card shows: large JSON (a manager's fleet overview is ~200 kB at 500
# nodes) and credentials. Deferred wherever many nodes are read.
HEAVY_NODE_FIELDS = ("fleet_overview", "resources", "api_token_enc", "pairing_private_key_enc")


def _recent_series(node_ids: list[int], since: datetime) -> dict[int, tuple[list[float], list[float]]]:
    """CPU and memory (percent) since `since`, oldest first, per node: one query of bare tuples."""
    series: dict[int, tuple[list[float], list[float]]] = {pk: ([], []) for pk in node_ids}
    rows = (
        NodeStatsSample.objects.filter(node_id__in=node_ids, at__gte=since)
        .order_by("node_id", "at")
        .values_list("node_id", "cpu_usage_percent", "memory_used_gb", "memory_total_gb")
    )
    for node_id, cpu, used, total in rows:
        cpu_values, memory_values = series[node_id]
        cpu_values.append(cpu)
        memory_values.append(_percent(used, total) or 0.0)
    return series


def fleet_overview(now: datetime | None = None, *, page: Any = 1, per_page: int = OVERVIEW_PAGE_SIZE
                   ) -> dict[str, Any]:
    """The fleet page: totals over every node; one page of node cards (attention first, then by name)
    with 30 minutes of samples; recent operations and events.

    Queries: nodes (with counts, without their large columns), the page's recent samples, recent
    operations, recent fleet events. Node cards are paged so the page's cost stays flat with the fleet.
    """
    now = now or timezone.now()
    nodes = list(nodes_with_counts().defer(*HEAVY_NODE_FIELDS))
    for node in nodes:
        node.health_state = node.health(now)
    totals = fleet_totals(nodes, now)
    nodes.sort(key=lambda n: _ATTENTION.get(n.health_state, len(_ATTENTION)))  # stable: by name within
    page_obj = Paginator(nodes, per_page).get_page(page)
    shown = list(page_obj.object_list)
    series = _recent_series([n.pk for n in shown], now - SPARKLINE_WINDOW)
    for node in shown:
        decorate_node(node, now)
        node.cpu_history, node.memory_history = series[node.pk]
    return {
        "nodes": shown,
        "page": page_obj,
        "totals": totals,
        "recent_operations": list(Operation.objects.order_by("-created_at")[:8]),
        "recent_events": list(FleetEvent.objects.order_by("-timestamp")[:8]),
        "now": now,
    }


def node_list(now: datetime | None = None) -> list[Node]:
    now = now or timezone.now()
    return [decorate_node(node, now) for node in nodes_with_counts().defer(*HEAVY_NODE_FIELDS)]


def node_get(node_id: int) -> Node:
    return get_object_or_404(Node, pk=node_id)


def stats_series(node: Node, *, now: datetime | None = None, window: timedelta = CHART_WINDOW) -> dict[str, Any]:
    now = now or timezone.now()
    rows = list(
        NodeStatsSample.objects.filter(node=node, at__gte=now - window)
        .order_by("at")
        .values_list("at", "cpu_usage_percent", "memory_used_gb", "memory_total_gb", "disk_used_gb", "disk_total_gb")
    )
    return {
        "cpu": [r[1] for r in rows],
        "memory": [_percent(r[2], r[3]) or 0.0 for r in rows],
        "disk": [_percent(r[4], r[5]) or 0.0 for r in rows],
        "start": rows[0][0] if rows else None,
        "end": rows[-1][0] if rows else None,
        "count": len(rows),
    }


def node_detail(node_id: int, *, now: datetime | None = None) -> dict[str, Any]:
    """Everything the node page shows: the node, its chart, VMs, tasks, images and recent operations."""
    now = now or timezone.now()
    node = get_object_or_404(nodes_with_counts(), pk=node_id)
    decorate_node(node, now)
    return {
        "node": node,
        "series": stats_series(node, now=now),
        "vms": list(node.vms.filter(gone_at__isnull=True).order_by("name")),
        "tasks": node_tasks(node),
        "oci_images": list(node.oci_images.order_by("reference")),
        "ipsws": list(node.ipsws.order_by("name")),
        "operations": list(node.operations.order_by("-created_at")[:15]),
        "now": now,
    }


def node_tasks(node: Node, *, finished_limit: int = 10) -> list[NodeTask]:
    """Active tasks first, then the most recent finished ones."""
    active = list(node.tasks.filter(status__in=ACTIVE_TASK_STATUSES).order_by("-started_at"))
    done = list(node.tasks.exclude(status__in=ACTIVE_TASK_STATUSES).order_by("-completed_at", "-started_at")[
        :finished_limit
    ])
    return active + done
