"""VM pages: the fleet-wide list, a VM's page, lifecycle actions and snapshots.

Every action records an Operation that a worker runs; nothing here calls a node. Without
JavaScript an action redirects back to the VM's page; with HTMX it answers the Operation's
live partial (and the VM's state partial refreshes itself when the client hears `vm-changed`).
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import reswap, retarget

from fleetui.activity.models import Operation
from fleetui.activity.services import OperationError, operation_create
from fleetui.core.htmx import render_page_or_partial, wants_partial, with_client_event
from fleetui.core.roles import OPERATOR, has_role, operator_required, viewer_required
from fleetui.vms import selectors
from fleetui.vms.forms import SnapshotChoiceForm, SnapshotCreateForm, VMFilterForm
from fleetui.vms.models import VM, Snapshot, VMState

VM_CHANGED = "vm-changed"


@require_GET
@viewer_required
def vm_list(request: HttpRequest) -> HttpResponse:
    form = VMFilterForm(request.GET, node_choices=selectors.node_choices())
    filters = form.filters()
    page_number = filters.pop("page")
    page = selectors.vm_page(page=page_number, **filters)
    can_operate = has_role(request.user, OPERATOR)
    if can_operate:
        selectors.row_actions(page.object_list, can_operate=True)
    sort = ("-" if filters["descending"] else "") + filters["sort"]
    context = {"form": form, "page": page, "vms": page.object_list, "sort": sort, "filters": filters}
    return render_page_or_partial(request, "vms/vm_list.html", context, "vms/_vm_table.html")


def _detail_context(request: HttpRequest, vm_id: int, **extra: Any) -> dict[str, Any]:
    context = selectors.vm_detail(vm_id, can_operate=has_role(request.user, OPERATOR))
    context.setdefault("snapshot_form", SnapshotCreateForm())
    context.update(extra)
    return context


@require_GET
@viewer_required
def vm_detail(request: HttpRequest, vm_id: int) -> HttpResponse:
    context = _detail_context(request, vm_id)
    if not wants_partial(request):
        _refresh_details_soon(context["vm"])
    return render_page_or_partial(request, "vms/vm_detail.html", context, "vms/_vm_status.html")


def _refresh_details_soon(vm: VM) -> None:
    """Ask a worker to fetch the VM's snapshots and settings when they are older than a poll interval.

    The page never calls the node itself; if the broker is down the page still renders.
    """
    from django.conf import settings
    from django.utils import timezone

    if vm.is_gone or (vm.snapshots_at and (timezone.now() - vm.snapshots_at).total_seconds() < settings.POLL_INTERVAL):
        return
    try:
        from fleetui.nodes.tasks import refresh_vm_details
    except ImportError:  # the poller is not installed in this deployment
        return

    def enqueue() -> None:
        try:
            refresh_vm_details.apply_async(args=[vm.pk], retry=False)
        except Exception:  # noqa: BLE001 - a broker outage must not break a read-only page
            import logging

            logging.getLogger(__name__).warning("could not enqueue refresh_vm_details for VM %s", vm.pk)

    transaction.on_commit(enqueue)


def _operation_response(request: HttpRequest, op: Operation, vm: VM, message: str) -> HttpResponse:
    if wants_partial(request):
        response = render(request, "activity/_operation.html", {"op": op, "fresh": True})
        return with_client_event(response, VM_CHANGED, {"vm": vm.pk})
    messages.info(request, message)
    return redirect("vm-detail", vm_id=vm.pk)


def _refused(request: HttpRequest, vm: VM, reason: str) -> HttpResponse:
    if wants_partial(request):
        return render(request, "core/_alert.html", {"level": "error", "text": reason})
    messages.error(request, reason)
    return redirect("vm-detail", vm_id=vm.pk)


@require_POST
@operator_required
def vm_action(request: HttpRequest, vm_id: int, action: str) -> HttpResponse:
    spec = selectors.LIFECYCLE_ACTIONS.get(action)
    if spec is None:
        raise Http404("No such action.")
    with transaction.atomic():
        # Lock the VM row so two quick clicks cannot both pass the "no operation running" check.
        vm = get_object_or_404(VM.objects.select_for_update().select_related("node"), pk=vm_id)
        reason = selectors.action_refusal(vm, action, busy=selectors.vm_has_active_operation(vm))
        if reason:
            return _refused(request, vm, reason)
        try:
            op = operation_create(kind=spec.kind, user=request.user, node=vm.node, vm=vm, request=request)
        except OperationError as exc:
            return _refused(request, vm, exc.message)
    return _operation_response(request, op, vm, f"{spec.label} requested for {vm.name}.")


def _snapshot_form_invalid(request: HttpRequest, vm: VM, form: SnapshotCreateForm) -> HttpResponse:
    if wants_partial(request):
        response = render(request, "vms/_snapshot_form.html", {"vm": vm, "snapshot_form": form})
        return reswap(retarget(response, "#snapshot-form"), "outerHTML")
    return render(request, "vms/vm_detail.html", _detail_context(request, vm.pk, snapshot_form=form))


@require_POST
@operator_required
def snapshot_create(request: HttpRequest, vm_id: int) -> HttpResponse:
    form = SnapshotCreateForm(request.POST)
    with transaction.atomic():
        vm = get_object_or_404(VM.objects.select_for_update().select_related("node"), pk=vm_id)
        blocker = selectors.vm_blocker(vm, can_operate=True, busy=False)
        if blocker:
            form.add_error(None, blocker)
        if not form.is_valid():
            return _snapshot_form_invalid(request, vm, form)
        try:
            op = operation_create(
                kind="snapshot.create",
                user=request.user,
                node=vm.node,
                vm=vm,
                params={"name": form.cleaned_data["name"], "description": form.cleaned_data["description"]},
                request=request,
            )
        except OperationError as exc:
            form.add_error(None, exc.message)
            return _snapshot_form_invalid(request, vm, form)
    if wants_partial(request):
        context = {"op": op, "fresh": True, "vm": vm, "snapshot_form": SnapshotCreateForm()}
        response = render(request, "vms/_snapshot_created.html", context)
        return with_client_event(response, VM_CHANGED, {"vm": vm.pk})
    messages.info(request, f"Snapshot {form.cleaned_data['name']} requested for {vm.name}.")
    return redirect("vm-detail", vm_id=vm.pk)


def _snapshot_action(request: HttpRequest, vm_id: int, snapshot_id: int, *, kind: str) -> HttpResponse:
    """GET: a confirmation page (works without JavaScript). POST: record the operation."""
    snapshot = get_object_or_404(Snapshot.objects.select_related("vm__node"), pk=snapshot_id, vm_id=vm_id)
    restore = kind == "snapshot.restore"
    verb = "Restore" if restore else "Delete"
    if request.method == "GET":
        return render(
            request,
            "vms/snapshot_confirm.html",
            {"snapshot": snapshot, "vm": snapshot.vm, "restore": restore, "verb": verb,
             "action_url": reverse("snapshot-restore" if restore else "snapshot-delete", args=[vm_id, snapshot_id])},
        )
    SnapshotChoiceForm(request.POST).is_valid()
    with transaction.atomic():
        vm = get_object_or_404(VM.objects.select_for_update().select_related("node"), pk=vm_id)
        reason = selectors.vm_blocker(vm, can_operate=True, busy=selectors.vm_has_active_operation(vm))
        if not reason and restore and vm.state != VMState.STOPPED:
            reason = "Stop the VM before restoring a snapshot."
        if reason:
            return _refused(request, vm, reason)
        try:
            op = operation_create(
                kind=kind,
                user=request.user,
                node=vm.node,
                vm=vm,
                params={"snapshot_id": snapshot.remote_id, "snapshot_name": snapshot.name},
                request=request,
            )
        except OperationError as exc:
            return _refused(request, vm, exc.message)
    return _operation_response(request, op, vm, f"{verb} of snapshot {snapshot.name} requested.")


@require_http_methods(["GET", "POST"])
@operator_required
def snapshot_restore(request: HttpRequest, vm_id: int, snapshot_id: int) -> HttpResponse:
    return _snapshot_action(request, vm_id, snapshot_id, kind="snapshot.restore")


@require_http_methods(["GET", "POST"])
@operator_required
def snapshot_delete(request: HttpRequest, vm_id: int, snapshot_id: int) -> HttpResponse:
    return _snapshot_action(request, vm_id, snapshot_id, kind="snapshot.delete")
