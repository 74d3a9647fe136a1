"""Reads for the VM pages, and which lifecycle actions a VM offers right now (and why not)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.core.paginator import Page, Paginator
from django.db.models import Exists, OuterRef, QuerySet
from django.shortcuts import get_object_or_404
from django.utils import timezone

from fleetui.activity.models import FINISHED_STATUSES, Operation
from fleetui.nodes.models import Health, Node
from fleetui.nodes.selectors import HEAVY_NODE_FIELDS
from fleetui.vms.models import VM, VMState

VM_PAGE_SIZE = 50

# Sort keys offered on the VM list -> ORM ordering (a unique tie-breaker keeps paging stable).
VM_SORTS: dict[str, tuple[str, ...]] = {
    "name": ("name", "id"),
    "node": ("node__name", "name", "id"),
    "state": ("state", "name", "id"),
    "cpu": ("cpu_count", "name", "id"),
    "memory": ("memory_mb", "name", "id"),
    "disk": ("disk_size_gb", "name", "id"),
    "changed": ("changed_at", "id"),
}


@dataclass(frozen=True)
class LifecycleAction:
    """A lifecycle button: the URL slug, the Operation kind it records and its label."""

    slug: str
    kind: str
    label: str
    style: str = ""
    confirm: str = ""


LIFECYCLE_ACTIONS: dict[str, LifecycleAction] = {
    a.slug: a
    for a in (
        LifecycleAction("start", "vm.start", "Start", "primary"),
        LifecycleAction("start_recovery", "vm.start_recovery", "Start in recovery"),
        LifecycleAction("resume", "vm.resume", "Resume", "primary"),
        LifecycleAction("suspend", "vm.suspend", "Suspend"),
        LifecycleAction("stop", "vm.stop", "Stop", "danger", "Stop this VM? Unsaved work inside it is lost."),
    )
}

# What each state allows; transitional and unknown states allow nothing.
ACTIONS_BY_STATE: dict[str, tuple[str, ...]] = {
    VMState.STOPPED: ("start", "start_recovery"),
    VMState.RUNNING: ("suspend", "stop"),
    VMState.PAUSED: ("resume", "stop"),
    VMState.ERROR: ("start", "stop"),
}


@dataclass(frozen=True)
class OfferedAction:
    action: LifecycleAction
    enabled: bool
    reason: str = ""


def node_blocker(node: Node, now: datetime | None = None) -> str:
    """Why nothing can be done on this node now, in plain words, or ''."""
    if node.is_read_only:
        return "The node's API token is read-only, so it accepts no changes."
    health = node.health(now)
    if health == Health.OFFLINE:
        return "The node is offline."
    if health == Health.PENDING:
        return "The node has not been polled yet."
    return ""


def vm_blocker(vm: VM, *, can_operate: bool, busy: bool, now: datetime | None = None) -> str:
    """Why no action can run on this VM now, or ''."""
    if not can_operate:
        return "Needs the operator role."
    if vm.is_gone:
        return "The VM is no longer on its node."
    blocker = node_blocker(vm.node, now)
    if blocker:
        return blocker
    if busy:
        return "An operation on this VM is still running."
    return ""


def vm_actions(vm: VM, *, can_operate: bool, busy: bool, now: datetime | None = None) -> list[OfferedAction]:
    """The buttons this VM offers in its current state, each enabled or disabled with a reason."""
    blocker = vm_blocker(vm, can_operate=can_operate, busy=busy, now=now)
    return [
        OfferedAction(LIFECYCLE_ACTIONS[slug], enabled=not blocker, reason=blocker)
        for slug in ACTIONS_BY_STATE.get(vm.state, ())
    ]


def action_refusal(vm: VM, slug: str, *, busy: bool, now: datetime | None = None) -> str:
    """Server-side check of a requested action: '' when allowed, else why not."""
    blocker = vm_blocker(vm, can_operate=True, busy=busy, now=now)
    if blocker:
        return blocker
    if slug not in ACTIONS_BY_STATE.get(vm.state, ()):
        action = LIFECYCLE_ACTIONS[slug].label.lower()
        return f"A VM that is {vm.get_state_display().lower()} cannot {action}."
    return ""


def vm_has_active_operation(vm: VM) -> bool:
    return Operation.objects.filter(vm=vm).exclude(status__in=FINISHED_STATUSES).exists()


def vm_queryset(*, q: str = "", node_id: int | None = None, state: str = "", sort: str = "name",
                descending: bool = False, include_gone: bool = False) -> QuerySet[VM]:
    # Whether an operation on the VM is unfinished, in the same SELECT (the row's buttons wait for it).
    unfinished = Operation.objects.filter(vm=OuterRef("pk")).exclude(status__in=FINISHED_STATUSES)
    # The node's large JSON columns stay in the database: a sort would otherwise carry them per row.
    qs = (
        VM.objects.select_related("node")
        .defer(*(f"node__{name}" for name in HEAVY_NODE_FIELDS))
        .annotate(busy=Exists(unfinished))
    )
    if not include_gone:
        qs = qs.filter(gone_at__isnull=True)
    if q:
        qs = qs.filter(name__icontains=q)
    if node_id:
        qs = qs.filter(node_id=node_id)
    if state:
        qs = qs.filter(state=state)
    ordering = VM_SORTS.get(sort, VM_SORTS["name"])
    if descending:
        ordering = tuple(f"-{f}" for f in ordering)
    return qs.order_by(*ordering)


def row_actions(vms: list[VM], *, can_operate: bool, now: datetime | None = None) -> None:
    """Attach `row_actions` (the state's actions except recovery) to each VM of a list page."""
    now = now or timezone.now()
    for vm in vms:
        vm.row_actions = [
            offered for offered in vm_actions(vm, can_operate=can_operate, busy=getattr(vm, "busy", False), now=now)
            if offered.action.slug != "start_recovery"
        ]


def vm_page(*, page: int = 1, per_page: int = VM_PAGE_SIZE, **filters: Any) -> Page:
    """One page of the fleet's VMs: a COUNT and one joined SELECT, whatever the page size."""
    result = Paginator(vm_queryset(**filters), per_page).get_page(page)
    result.object_list = list(result.object_list)  # evaluated once, however often it is iterated
    return result


def node_choices() -> list[tuple[int, str]]:
    return list(Node.objects.order_by("name").values_list("id", "name"))


def vm_get(vm_id: int) -> VM:
    return get_object_or_404(VM.objects.select_related("node"), pk=vm_id)


def vm_detail(vm_id: int, *, can_operate: bool, now: datetime | None = None) -> dict[str, Any]:
    now = now or timezone.now()
    vm = vm_get(vm_id)
    operations = list(Operation.objects.filter(vm=vm).order_by("-created_at")[:20])
    busy = any(not op.is_finished for op in operations)
    vm.node.health_state = vm.node.health(now)
    return {
        "vm": vm,
        "node": vm.node,
        "actions": vm_actions(vm, can_operate=can_operate, busy=busy, now=now),
        "busy": busy,
        "transitional": vm.state in (VMState.STARTING, VMState.STOPPING),
        "snapshots": list(vm.snapshots.order_by("-created_at", "name")),
        "snapshot_blocker": vm_blocker(vm, can_operate=can_operate, busy=False, now=now),
        "operations": operations,
        "now": now,
    }
