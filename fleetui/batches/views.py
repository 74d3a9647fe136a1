"""Bulk actions and fan-out commands: review what a selection of VMs would get, start the batch,
watch each VM's result arrive, cancel what has not started, download a fan-out's results."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from typing import Any
from uuid import UUID

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.debug import sensitive_post_parameters, sensitive_variables
from django.views.decorators.http import require_GET, require_POST

from fleetui.batches import selectors
from fleetui.batches.forms import BatchParamsForm, BulkSelectionForm
from fleetui.batches.models import Batch, BatchAction
from fleetui.batches.services import BatchError, batch_cancel, batch_create, batch_plan
from fleetui.core.htmx import render_page_or_partial
from fleetui.core.roles import OPERATOR, has_role, operator_required, viewer_required

EXPORT_FORMATS = ("csv", "json")


@require_GET
@viewer_required
def batch_list(request: HttpRequest) -> HttpResponse:
    return render(request, "batches/batch_list.html", {"batches": selectors.batch_list()})


def _verb(action: str, count: int) -> str:
    label = {
        BatchAction.START: "Start", BatchAction.STOP: "Stop", BatchAction.SUSPEND: "Suspend",
        BatchAction.SNAPSHOT: "Snapshot", BatchAction.TTL_SET: "Set the lease of",
        BatchAction.TTL_EXTEND: "Extend the lease of", BatchAction.DELETE: "Delete",
        BatchAction.EXEC: "Run on",
    }.get(action, "Act on")
    return f"{label} {count} VM{'s' if count != 1 else ''}"


@sensitive_post_parameters("ssh_password")
@require_POST
@operator_required
@sensitive_variables("data", "secrets")
def batch_new(request: HttpRequest) -> HttpResponse:
    """The VM list posts its selection here: a review page (what each VM gets, or why it is skipped,
    and the action's parameters). Posted again with `confirmed`, it records the batch."""
    selection = BulkSelectionForm(request.POST)
    if not selection.is_valid():
        return render(request, "batches/batch_new.html", {"selection": selection, "plan": None}, status=400)
    action = selection.cleaned_data["action"]
    vm_ids = selection.cleaned_data["vm_ids"]
    plan = batch_plan(action=action, vms=list(selectors.vms_for_batch(vm_ids)))
    if not plan.entries:
        selection.add_error(None, "None of the selected VMs exists any more.")
        return render(request, "batches/batch_new.html", {"selection": selection, "plan": None}, status=400)
    run_count = len(plan.to_run)
    status = 200
    if "confirmed" in request.POST:
        form = BatchParamsForm(request.POST, action=action, run_count=run_count)
        if form.is_valid():
            data = form.cleaned_data
            secrets = data["secrets"]
            try:
                batch = batch_create(action=action, vm_ids=[e.vm.pk for e in plan.entries], params=data["params"],
                                     secrets=secrets, user=request.user, request=request)
            except BatchError as exc:
                form.add_error(None, exc.message)
            else:
                secrets.clear()
                return redirect("batch-detail", batch_id=batch.pk)
        status = 400
    else:
        form = BatchParamsForm(action=action, run_count=run_count)
    context = {
        "selection": selection, "plan": plan, "form": form, "action": action,
        "action_label": BatchAction(action).label, "run_count": run_count,
        "submit_label": _verb(action, run_count), "danger": action in (BatchAction.DELETE, BatchAction.STOP),
    }
    return render(request, "batches/batch_new.html", context, status=status)


def _batch(batch_id: UUID) -> Batch:
    return get_object_or_404(Batch, pk=batch_id)


@require_GET
@viewer_required
def batch_detail(request: HttpRequest, batch_id: UUID) -> HttpResponse:
    """The batch and each VM's outcome; the partial is polled until every operation has settled (286)."""
    batch = _batch(batch_id)
    only_failures = request.GET.get("only") == "failures"
    view = selectors.batch_view(batch, only_failures=only_failures)
    context = {"view": view, "batch": batch, "only_failures": only_failures,
               "can_cancel": view.cancellable and has_role(request.user, OPERATOR)}
    return render_page_or_partial(request, "batches/batch_detail.html", context, "batches/_batch_live.html",
                                  settled=view.settled)


@require_POST
@operator_required
def batch_cancel_view(request: HttpRequest, batch_id: UUID) -> HttpResponse:
    batch = _batch(batch_id)
    cancelled = batch_cancel(batch=batch, user=request.user)
    if cancelled:
        messages.info(request, f"Cancelled {cancelled} operation{'s' if cancelled != 1 else ''} no worker had "
                               "started; the ones already running finish.")
    else:
        messages.info(request, "Nothing left to cancel: every operation of this batch had started or finished.")
    return redirect("batch-detail", batch_id=batch.pk)


class _Echo:
    def write(self, value: str) -> str:
        return value


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
CSV_COLUMNS = ("vm", "node", "status", "exit_code", "duration_seconds", "stdout", "stderr", "error", "started_at",
               "finished_at", "operation_id")


def _cell(value: Any) -> str:
    """Text for a CSV cell; a leading formula character is quoted so spreadsheets show it inert."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def _csv_lines(rows: Iterator[dict[str, Any]]) -> Iterator[str]:
    writer = csv.writer(_Echo())
    yield writer.writerow(CSV_COLUMNS)
    for row in rows:
        yield writer.writerow([_cell(row[column]) for column in CSV_COLUMNS])


def _json_chunks(batch: Batch, rows: Iterator[dict[str, Any]]) -> Iterator[str]:
    head = {"batch": str(batch.pk), "action": batch.action, "params": batch.params, "by": batch.username,
            "created_at": batch.created_at.isoformat(),
            "cancelled_at": batch.cancelled_at.isoformat() if batch.cancelled_at else None}
    yield json.dumps(head)[:-1] + ', "results": ['
    for index, row in enumerate(rows):
        yield ("," if index else "") + "\n" + json.dumps(row)
    yield "\n]}\n"


@require_GET
@viewer_required
def batch_export(request: HttpRequest, batch_id: UUID) -> HttpResponse:
    """Each VM's result as CSV or JSON (?format=csv|json, ?only=failures), streamed."""
    batch = _batch(batch_id)
    fmt = request.GET.get("format", "csv")
    if fmt not in EXPORT_FORMATS:
        return render(request, "core/_alert.html", {"level": "error", "text": "Download as csv or json."},
                      status=400)
    rows = selectors.export_rows(batch, only_failures=request.GET.get("only") == "failures")
    stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
    if fmt == "csv":
        response = StreamingHttpResponse(_csv_lines(rows), content_type="text/csv; charset=utf-8")
    else:
        response = StreamingHttpResponse(_json_chunks(batch, rows), content_type="application/json")
    response["Content-Disposition"] = f'attachment; filename="batch-{batch.action}-{stamp}.{fmt}"'
    response["X-Content-Type-Options"] = "nosniff"
    return response
