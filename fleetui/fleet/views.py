"""Fleet activity log (every role), managers' view of their workers, and fleet utilities (admins)."""

from __future__ import annotations

import csv
import logging
from collections.abc import Iterator
from datetime import UTC

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from fleetui.activity.models import Operation
from fleetui.activity.services import OperationError, operation_create
from fleetui.core.htmx import render_page_or_partial, wants_partial
from fleetui.core.roles import admin_required, viewer_required
from fleetui.fleet import selectors
from fleetui.fleet.forms import ActivityFilterForm, CleanupForm, UnpairForm
from fleetui.nodes.models import Node
from fleetui.vms.models import VM

log = logging.getLogger(__name__)

PAGE_SIZE = 50
CLEANUP_KIND = "node.cleanup"
UNPAIR_KIND = "node.unpair"
# At most this many VMs of a preview are kept in the Operation's params (the count is always kept).
PREVIEW_LIMIT = 200


# ----------------------------------------------------------------------------- activity log

def _activity_filter(request: HttpRequest) -> tuple[ActivityFilterForm, selectors.ActivityFilter | None]:
    form = ActivityFilterForm(request.GET)
    return form, (form.to_filter() if form.is_valid() else None)


def _query_without(request: HttpRequest, *drop: str) -> str:
    query = request.GET.copy()
    for key in drop:
        query.pop(key, None)
    return query.urlencode()


@require_GET
@viewer_required
def activity(request: HttpRequest) -> HttpResponse:
    form, flt = _activity_filter(request)
    page = None
    total = None
    if flt is not None:
        before = selectors.Cursor.decode(request.GET.get("before", ""))
        after = selectors.Cursor.decode(request.GET.get("after", "")) if before is None else None
        page = selectors.activity_page(flt, before=before, after=after, size=PAGE_SIZE)
        total = selectors.activity_count(flt)
    context = {
        "form": form,
        "page": page,
        "total": total,
        # The filter form's options: only the full page has the form (a live refresh skips 4 queries).
        "choices": {} if wants_partial(request) else selectors.activity_choices(),
        "filter_query": _query_without(request, "before", "after"),
        # Only the first page follows the log live; older pages stay put while being read.
        "live": page is not None and "before" not in request.GET and "after" not in request.GET,
    }
    return render_page_or_partial(request, "fleet/activity.html", context, "fleet/_activity_table.html")


class _Echo:
    def write(self, value: str) -> str:
        return value


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: object) -> str:
    """Text for a CSV cell; a leading formula character is quoted so spreadsheets show it inert."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def _csv_lines(flt: selectors.ActivityFilter) -> Iterator[str]:
    writer = csv.writer(_Echo())
    yield writer.writerow(["time_utc", "source", "type", "node", "vm", "user", "status", "message"])
    for row in selectors.activity_iter(flt):
        yield writer.writerow([
            row.at.astimezone(UTC).isoformat(),
            "operation" if row.is_operation else "event",
            _cell(row.type), _cell(row.node_name), _cell(row.vm_name), _cell(row.username), _cell(row.status),
            _cell(row.message),
        ])


@require_GET
@viewer_required
def activity_export(request: HttpRequest) -> HttpResponse:
    form, flt = _activity_filter(request)
    if flt is None:
        return render(request, "fleet/activity.html", {
            "form": form, "page": None, "total": None, "choices": selectors.activity_choices(),
            "filter_query": _query_without(request, "before", "after"), "live": False,
        }, status=400)
    response = StreamingHttpResponse(_csv_lines(flt), content_type="text/csv; charset=utf-8")
    stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
    response["Content-Disposition"] = f'attachment; filename="fleet-activity-{stamp}.csv"'
    return response


# ----------------------------------------------------------------------------- managers' overview

@require_GET
@viewer_required
def managers(request: HttpRequest) -> HttpResponse:
    context = {"managers": selectors.manager_views()}
    return render_page_or_partial(request, "fleet/managers.html", context, "fleet/_managers.html")


@require_GET
@admin_required
def register_worker(request: HttpRequest) -> HttpResponse:
    """The node registration form, prefilled from a manager's view of a worker (?name=&host=&port=).

    It posts to the nodes app's own registration view, which checks and saves it; only the API
    token is left to enter.
    """
    from fleetui.nodes.forms import NodeForm

    def text(key: str, limit: int) -> str:
        value = request.GET.get(key, "")
        return "" if any(ord(c) < 32 or ord(c) == 127 for c in value) else value.strip()[:limit]

    try:
        port = int(request.GET.get("port", ""))
    except ValueError:
        port = 9473
    if not 1 <= port <= 65535:
        port = 9473
    form = NodeForm(initial={"name": text("name", 100), "host": text("host", 253), "port": port})
    return render(request, "fleet/register_worker.html", {"form": form})


# ----------------------------------------------------------------------------- utilities

@require_GET
@admin_required
def utilities(request: HttpRequest) -> HttpResponse:
    nodes = list(Node.objects.order_by("name"))
    counts = selectors.expired_vm_counts()
    rows = [{"node": n, "expired": counts.get(n.pk, {"normal": 0, "forced": 0})} for n in nodes]
    recent = (Operation.objects.filter(kind__in=[CLEANUP_KIND, UNPAIR_KIND])
              .only("id", "kind", "status", "node_name", "username", "created_at", "error", "result")[:10])
    return render(request, "fleet/utilities.html", {"rows": rows, "recent": recent})


def _cleanup_context(node: Node, form: CleanupForm, force: bool) -> dict:
    return {"node": node, "form": form, "preview": selectors.cleanup_preview(node, force=force)}


@require_http_methods(["GET", "POST"])
@admin_required
def cleanup(request: HttpRequest, node_id: int) -> HttpResponse:
    """GET: the dry-run preview (?force=1 for the forced one). POST: the run, as an Operation."""
    node = get_object_or_404(Node, pk=node_id)
    if request.method == "GET":
        force = request.GET.get("force") in ("1", "on", "true")
        form = CleanupForm(initial={"force": force}, node_name=node.name)
        return render(request, "fleet/cleanup.html", _cleanup_context(node, form, force))

    form = CleanupForm(request.POST, node_name=node.name)
    if not form.is_valid():
        force = request.POST.get("force") in ("1", "on", "true")
        return render(request, "fleet/cleanup.html", _cleanup_context(node, form, force), status=400)
    force = form.cleaned_data["force"]
    if node.is_read_only:
        form.add_error(None, "This node's token is read-only and the dashboard is not paired with it: "
                             "a cleanup needs full access.")
        return render(request, "fleet/cleanup.html", _cleanup_context(node, form, force), status=400)
    # The preview is computed again here, at the moment of the click, and kept with the Operation
    # so its outcome (the node's cleanedCount) can be compared with what we expected.
    preview = selectors.cleanup_preview(node, force=force)
    params = {
        "force": force,
        "expected_count": len(preview.doomed),
        "expected": [{"id": vm.remote_id, "name": vm.name} for vm in preview.doomed[:PREVIEW_LIMIT]],
        "unknown_settings_count": len(preview.unknown),
    }
    try:
        op = operation_create(kind=CLEANUP_KIND, user=request.user, node=node, params=params, request=request)
    except OperationError as exc:
        form.add_error(None, exc.message)
        return render(request, "fleet/cleanup.html", _cleanup_context(node, form, force), status=400)
    return redirect("cleanup-result", operation_id=op.id)


# At most this many VMs have their settings re-read per click (each is one task, two calls).
REFRESH_LIMIT = 500


@require_POST
@admin_required
def cleanup_refresh(request: HttpRequest, node_id: int) -> HttpResponse:
    """Ask the workers to read the settings (intent, TTL) of the node's VMs, so the dry run is
    computed from fresh figures. Reads only: queued tasks, no Operation."""
    from fleetui.nodes.tasks import refresh_vm_details

    node = get_object_or_404(Node, pk=node_id)
    vm_ids = list(VM.objects.filter(node=node, gone_at__isnull=True).order_by("settings_at")
                  .values_list("pk", flat=True)[:REFRESH_LIMIT])
    queued = 0
    for vm_id in vm_ids:
        try:
            refresh_vm_details.apply_async(args=[vm_id], retry=False)
        except Exception:  # noqa: BLE001 - kombu raises many kinds of connection errors
            log.warning("could not queue a settings refresh of VM %s", vm_id)
            break
        queued += 1
    if queued:
        messages.info(request, f"Reading the settings of {queued} VM{'s' if queued != 1 else ''} on {node.name}; "
                               "reload this page in a few seconds.")
    elif vm_ids:
        messages.error(request, "Could not reach the task queue (Redis): nothing was refreshed. Try again shortly.")
    else:
        messages.info(request, f"{node.name} has no VMs.")
    force = request.POST.get("force") in ("1", "on", "true")
    return redirect(reverse("utilities-cleanup", args=[node.pk]) + ("?force=1" if force else ""))


@require_GET
@admin_required
def cleanup_result(request: HttpRequest, operation_id: str) -> HttpResponse:
    op = get_object_or_404(Operation, pk=operation_id, kind=CLEANUP_KIND)
    expected = op.params.get("expected") or []
    ids = [e.get("id") for e in expected if isinstance(e, dict)]
    # After the run the worker re-polls the node, so gone VMs show here as gone.
    gone = set()
    if op.node_id and ids and op.is_finished:
        gone = set(VM.objects.filter(node_id=op.node_id, remote_id__in=ids, gone_at__isnull=False)
                   .values_list("remote_id", flat=True))
    cleaned = op.result.get("cleaned_count") if isinstance(op.result, dict) else None
    context = {
        "op": op,
        "expected": [{**e, "gone": e.get("id") in gone} for e in expected if isinstance(e, dict)],
        "expected_count": op.params.get("expected_count", len(expected)),
        "cleaned_count": cleaned,
    }
    return render_page_or_partial(request, "fleet/cleanup_result.html", context, "fleet/_cleanup_result.html",
                                  settled=op.is_finished)


@require_http_methods(["GET", "POST"])
@admin_required
def unpair(request: HttpRequest, node_id: int) -> HttpResponse:
    node = get_object_or_404(Node, pk=node_id)
    if request.method == "GET":
        return render(request, "fleet/unpair.html", {"node": node, "form": UnpairForm()})
    form = UnpairForm(request.POST)
    if form.is_valid() and not node.is_paired:
        form.add_error(None, "The dashboard is not paired with this node: there is nothing to unpair.")
    if not form.is_valid():
        return render(request, "fleet/unpair.html", {"node": node, "form": form}, status=400)
    try:
        op = operation_create(kind=UNPAIR_KIND, user=request.user, node=node,
                              params={"forget": form.cleaned_data["forget"]}, request=request)
    except OperationError as exc:
        form.add_error(None, exc.message)
        return render(request, "fleet/unpair.html", {"node": node, "form": form}, status=400)
    messages.info(request, f"Unpairing {node.name}: the outcome shows below when the worker has run it.")
    return redirect("operation-detail", op.id)
