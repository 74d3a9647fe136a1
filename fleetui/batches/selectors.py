"""Reads for batches: which VMs a selection means, and a batch with its items and counts."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Count, Exists, OuterRef, Q, QuerySet
from django.http import QueryDict

from fleetui.activity.models import FINISHED_STATUSES, Operation, OperationStatus
from fleetui.batches.models import Batch, BatchItem
from fleetui.vms import selectors as vm_selectors
from fleetui.vms.forms import VMFilterForm
from fleetui.vms.models import VM

# The most VMs one batch acts on: beyond it, narrow the filter (or run two batches).
MAX_BATCH_VMS = 500
BATCH_LIST_SIZE = 50


class SelectionError(ValueError):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def too_many(count: int) -> str:
    return (f"{count} VMs are selected, but a batch acts on at most {MAX_BATCH_VMS}. Narrow the filter (by node, "
            "state or name) and run it in parts.")


def vms_for_batch(vm_ids: list[int]) -> QuerySet[VM]:
    """The VMs with these ids, with their node, and whether an operation on each is unfinished."""
    unfinished = Operation.objects.filter(vm=OuterRef("pk")).exclude(status__in=FINISHED_STATUSES)
    return (VM.objects.filter(pk__in=vm_ids).select_related("node").annotate(busy=Exists(unfinished))
            .order_by("node__name", "name", "pk"))


def matching_vm_ids(match: str) -> list[int]:
    """Every VM the VM list's filter (its querystring) matches, across all its pages.

    Raises SelectionError when more than MAX_BATCH_VMS match.
    """
    form = VMFilterForm(QueryDict((match or "").lstrip("?")), node_choices=vm_selectors.node_choices())
    filters = form.filters()
    filters.pop("page", None)
    qs = vm_selectors.vm_queryset(**filters).order_by()
    ids = list(qs.values_list("pk", flat=True)[:MAX_BATCH_VMS + 1])
    if len(ids) > MAX_BATCH_VMS:
        raise SelectionError(too_many(qs.count()))
    return ids


def known_vm_ids(vm_ids: list[int]) -> list[int]:
    found = set(VM.objects.filter(pk__in=vm_ids).values_list("pk", flat=True))
    return [pk for pk in vm_ids if pk in found]


# ---------------------------------------------------------------- one batch

def item_failed(item: BatchItem) -> bool:
    """A VM where it did not work: the operation failed, or the command exited non-zero."""
    op = item.operation
    if op is None:
        return False
    if op.status == OperationStatus.FAILED:
        return True
    exit_code = (op.result or {}).get("exit_code") if op.status == OperationStatus.SUCCEEDED else None
    return isinstance(exit_code, int) and exit_code != 0


@dataclass
class BatchView:
    batch: Batch
    items: list[BatchItem]
    counts: dict[str, int] = field(default_factory=dict)
    failures: int = 0

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def unsettled(self) -> int:
        return self.counts.get(OperationStatus.PENDING, 0) + self.counts.get(OperationStatus.RUNNING, 0)

    @property
    def settled(self) -> bool:
        return self.unsettled == 0

    @property
    def finished(self) -> int:
        return self.total - self.unsettled - self.counts.get("skipped", 0)

    @property
    def to_run(self) -> int:
        return self.total - self.counts.get("skipped", 0)

    @property
    def cancellable(self) -> bool:
        # Only operations no worker has claimed can be called off; running ones finish.
        return self.batch.cancelled_at is None and self.counts.get(OperationStatus.PENDING, 0) > 0


def batch_items(batch: Batch) -> list[BatchItem]:
    return list(BatchItem.objects.filter(batch=batch).select_related("operation", "vm").order_by("position"))


def batch_view(batch: Batch, *, only_failures: bool = False) -> BatchView:
    """The batch, its items (all, or only the failures) and its counts by status ("skipped" included)."""
    items = batch_items(batch)
    counts = Counter(item.status for item in items)
    failures = sum(1 for item in items if item_failed(item))
    shown = [item for item in items if item_failed(item)] if only_failures else items
    return BatchView(batch=batch, items=shown, counts=dict(counts), failures=failures)


def batch_list(limit: int = BATCH_LIST_SIZE) -> list[Batch]:
    """The latest batches with their counts (one query)."""
    status = "items__operation__status"
    batches = list(
        Batch.objects.annotate(
            n_items=Count("items"),
            n_skipped=Count("items", filter=Q(items__operation__isnull=True)),
            n_pending=Count("items", filter=Q(**{status: OperationStatus.PENDING})),
            n_running=Count("items", filter=Q(**{status: OperationStatus.RUNNING})),
            n_succeeded=Count("items", filter=Q(**{status: OperationStatus.SUCCEEDED})),
            n_failed=Count("items", filter=Q(**{status: OperationStatus.FAILED})),
            n_cancelled=Count("items", filter=Q(**{status: OperationStatus.CANCELLED})),
        ).order_by("-created_at")[:limit]
    )
    return batches


def export_rows(batch: Batch, *, only_failures: bool = False) -> Any:
    """One dict per VM of the batch, for CSV and JSON (read in chunks, so a big batch streams)."""
    qs = BatchItem.objects.filter(batch=batch).select_related("operation").order_by("position")
    for item in qs.iterator(chunk_size=100):
        if only_failures and not item_failed(item):
            continue
        op = item.operation
        result = (op.result or {}) if op else {}
        yield {
            "vm": item.vm_name,
            "node": item.node_name,
            "status": item.status,
            "exit_code": result.get("exit_code") if op else None,
            "duration_seconds": result.get("duration") if batch.is_exec else (op.duration_seconds if op else None),
            "stdout": result.get("stdout", "") if batch.is_exec else "",
            "stderr": result.get("stderr", "") if batch.is_exec else "",
            "error": (op.error if op else item.skipped_reason),
            "started_at": op.started_at.isoformat() if op and op.started_at else None,
            "finished_at": op.finished_at.isoformat() if op and op.finished_at else None,
            "operation_id": str(op.pk) if op else None,
        }
