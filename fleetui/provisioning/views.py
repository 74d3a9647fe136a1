"""Pages to create a VM, clone, rename, delete it, change its settings and lease, follow the work live,
and see the VMs whose lease runs out soon."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from fleetui.activity.models import Operation, OperationStatus
from fleetui.activity.services import OperationError
from fleetui.core.htmx import render_page_or_partial, wants_partial
from fleetui.core.roles import operator_required, viewer_required
from fleetui.images.models import TaskStatus
from fleetui.provisioning import selectors, services
from fleetui.provisioning.follow import task_for, vm_for
from fleetui.provisioning.forms import (
    CleanupWindowForm,
    LeaseForm,
    VMCloneForm,
    VMCreateForm,
    VMDeleteForm,
    VMRenameForm,
    VMSettingsForm,
)
from fleetui.vms.models import VM

LEASE_KINDS = ("vm.lease_set", "vm.lease_extend", "vm.lease_clear", "vm.settings")
# Operations whose work goes on as a node task after the call returns.
TASK_KINDS = ("vm.create", "ipsw.download", "image.push")


def _vm(vm_id: int) -> VM:
    return get_object_or_404(VM.objects.select_related("node"), pk=vm_id)


def _follow(op: Operation) -> HttpResponse:
    return redirect("vm-operation-follow", operation_id=op.pk)


@require_http_methods(["GET", "POST"])
@operator_required
def vm_create(request: HttpRequest) -> HttpResponse:
    capacities = selectors.node_capacities()
    suggested = selectors.suggested_node(capacities)
    if request.method == "POST":
        form = VMCreateForm(request.POST)
        if form.is_valid():
            data = form.cleaned_data
            try:
                op = services.vm_create_request(
                    node=data["node"], user=request.user, request=request, name=data["name"],
                    cpu_count=data["cpu_count"], memory_mb=data["memory_gb"] * 1024, disk_gb=data["disk_gb"],
                    oci_image=data["oci"], ipsw_path=data["ipsw"],
                )
            except OperationError as exc:
                form.add_error(None, exc.message)
            else:
                return _follow(op)
    else:
        chosen = request.GET.get("node", "")
        initial: dict[str, Any] = {}
        if chosen.isdigit():
            initial["node"] = int(chosen)
        elif suggested is not None:
            initial["node"] = suggested.pk
        form = VMCreateForm(initial=initial)
    return render(request, "provisioning/vm_create.html",
                  {"form": form, "capacities": capacities, "suggested": suggested},
                  status=400 if form.is_bound else 200)


def _name_change(request: HttpRequest, vm_id: int, form_class: type, template: str, request_fn: Any) -> HttpResponse:
    vm = _vm(vm_id)
    if request.method == "POST":
        form = form_class(request.POST, vm=vm)
        if form.is_valid():
            try:
                op = request_fn(vm=vm, user=request.user, request=request, new_name=form.cleaned_data["new_name"])
            except OperationError as exc:
                form.add_error(None, exc.message)
            else:
                return _follow(op)
        status = 400
    else:
        form = form_class(vm=vm)
        status = 200
    return render(request, template, {"vm": vm, "form": form}, status=status)


@require_http_methods(["GET", "POST"])
@operator_required
def vm_clone(request: HttpRequest, vm_id: int) -> HttpResponse:
    return _name_change(request, vm_id, VMCloneForm, "provisioning/vm_clone.html", services.vm_clone_request)


@require_http_methods(["GET", "POST"])
@operator_required
def vm_rename(request: HttpRequest, vm_id: int) -> HttpResponse:
    return _name_change(request, vm_id, VMRenameForm, "provisioning/vm_rename.html", services.vm_rename_request)


@require_http_methods(["GET", "POST"])
@operator_required
def vm_delete(request: HttpRequest, vm_id: int) -> HttpResponse:
    vm = _vm(vm_id)
    if request.method == "POST":
        form = VMDeleteForm(request.POST, vm=vm)
        if form.is_valid():
            try:
                return _follow(services.vm_delete_request(vm=vm, user=request.user, request=request))
            except OperationError as exc:
                form.add_error(None, exc.message)
        status = 400
    else:
        form = VMDeleteForm(vm=vm)
        status = 200
    return render(request, "provisioning/vm_delete.html", {"vm": vm, "form": form}, status=status)


def _ask_for_fresh_settings(vm: VM) -> None:
    """Have a worker re-read the VM's settings when ours are older than a poll interval (at most once per
    interval per VM; the page shows what we have meanwhile)."""
    fresh_for = settings.POLL_INTERVAL
    if vm.settings_at and (timezone.now() - vm.settings_at).total_seconds() < fresh_for:
        return
    try:
        if not cache.add(f"provisioning:settings-asked:{vm.pk}", 1, timeout=fresh_for):
            return
        from fleetui.nodes.tasks import refresh_vm_details

        refresh_vm_details.delay(vm.pk)
    except Exception:  # noqa: BLE001 - Redis down: the page still answers with what it has
        return


def _settings_context(vm: VM, **forms: Any) -> dict[str, Any]:
    return {
        "vm": vm,
        "settings_form": forms.get("settings_form") or VMSettingsForm(vm=vm),
        "lease_form": forms.get("lease_form") or LeaseForm(vm=vm),
        "recent": selectors.vm_recent_operations(vm, kinds=LEASE_KINDS),
    }


@require_GET
@viewer_required
def vm_settings(request: HttpRequest, vm_id: int) -> HttpResponse:
    vm = _vm(vm_id)
    if not vm.is_gone:
        _ask_for_fresh_settings(vm)
    return render_page_or_partial(request, "provisioning/vm_settings.html", _settings_context(vm),
                                  "provisioning/_vm_lease.html")


@require_POST
@operator_required
def vm_settings_update(request: HttpRequest, vm_id: int) -> HttpResponse:
    vm = _vm(vm_id)
    form = VMSettingsForm(request.POST, vm=vm)
    if form.is_valid():
        try:
            return _follow(services.vm_settings_request(vm=vm, user=request.user, request=request,
                                                        changes=form.cleaned_data["changes"]))
        except OperationError as exc:
            form.add_error(None, exc.message)
    return render(request, "provisioning/vm_settings.html", _settings_context(vm, settings_form=form), status=400)


@require_POST
@operator_required
def vm_lease(request: HttpRequest, vm_id: int) -> HttpResponse:
    vm = _vm(vm_id)
    form = LeaseForm(request.POST, vm=vm)
    if form.is_valid():
        try:
            return _follow(services.vm_lease_request(vm=vm, user=request.user, request=request,
                                                     action=form.cleaned_data["action"],
                                                     seconds=form.cleaned_data.get("seconds")))
        except OperationError as exc:
            form.add_error(None, exc.message)
    return render(request, "provisioning/vm_settings.html", _settings_context(vm, lease_form=form), status=400)


@require_GET
@viewer_required
def vm_expiring(request: HttpRequest) -> HttpResponse:
    form = CleanupWindowForm(request.GET or None)
    within = 86400
    if form.is_bound and form.is_valid() and form.cleaned_data.get("within"):
        within = form.cleaned_data["within"]
    vms = list(selectors.expiring_vms(within_seconds=within))
    context = {"form": form, "vms": vms, "within": within, "now": timezone.now(),
               "window_label": dict(CleanupWindowForm.WINDOWS).get(within, "")}
    return render_page_or_partial(request, "provisioning/vm_expiring.html", context, "provisioning/_vm_expiring.html")


def _done_url(op: Operation) -> str:
    """Where the person goes once the operation has done its work ("" = stay and read the outcome here)."""
    vm_pk = op.vm_id
    if op.kind in ("vm.create", "vm.clone"):
        made = vm_for(op)
        return reverse("vm-detail", args=[made.pk]) if made else ""
    if op.kind == "vm.delete":
        return reverse("vm-list")
    if op.kind in LEASE_KINDS and vm_pk:
        return reverse("vm-settings", args=[vm_pk])
    if op.kind in ("template.create", "template.delete"):
        return reverse("template-list")
    if op.kind.startswith("folder.") and vm_pk:
        return reverse("vm-folders", args=[vm_pk])
    if op.kind == "template.read":
        return ""
    if op.kind in TASK_KINDS or op.kind == "ipsw.info":
        return ""
    if vm_pk:
        return reverse("vm-detail", args=[vm_pk])
    return ""


@require_GET
@viewer_required
def operation_follow(request: HttpRequest, operation_id: UUID) -> HttpResponse:
    """An operation of these apps, followed live: its status, its node task's progress, then the result."""
    op = get_object_or_404(Operation.objects.select_related("node", "vm"), pk=operation_id)
    task = task_for(op)
    waits_for_vm = op.kind in ("vm.create", "vm.clone")
    task_failed = task is not None and task.status in (TaskStatus.FAILED, TaskStatus.CANCELLED)
    task_done = task is not None and task.status in (TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.CANCELLED)
    done_url = _done_url(op) if op.status == OperationStatus.SUCCEEDED and not task_failed else ""
    if op.status != OperationStatus.SUCCEEDED:
        settled = op.is_finished
    elif task_failed:
        settled = True
    elif waits_for_vm:
        settled = bool(done_url)
    elif op.kind in TASK_KINDS:
        # Without a task id there is nothing to follow here (the Tasks page lists it).
        settled = task_done or not (op.result or {}).get("task_id")
    else:
        settled = True
    context = {"op": op, "task": task, "task_failed": task_failed, "done_url": done_url, "settled": settled,
               "waits_for_vm": waits_for_vm}
    if wants_partial(request) and settled and done_url:
        # Take the person to what was made or changed; polling ends with the page.
        response = render(request, "provisioning/_follow.html", context)
        response["HX-Redirect"] = done_url
        patch_vary_headers(response, ("HX-Request",))
        return response
    return render_page_or_partial(request, "provisioning/follow.html", context, "provisioning/_follow.html",
                                  settled=settled)
