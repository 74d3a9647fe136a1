"""Run a command on a running VM and watch its outcome without blocking the page."""

from __future__ import annotations

from uuid import UUID

from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.debug import sensitive_post_parameters, sensitive_variables
from django.views.decorators.http import require_GET, require_http_methods

from fleetui.activity.models import Operation
from fleetui.activity.services import OperationError
from fleetui.console.forms import ExecForm
from fleetui.console.operations import OUTPUT_CAP_CHARS
from fleetui.console.services import vm_exec_request
from fleetui.core.htmx import render_page_or_partial
from fleetui.core.roles import operator_required, viewer_required
from fleetui.vms.models import VM

RECENT_COMMANDS = 10


def _recent(vm: VM) -> list[Operation]:
    return list(Operation.objects.filter(vm=vm, kind="vm.exec").order_by("-created_at")[:RECENT_COMMANDS])


@sensitive_post_parameters("ssh_password")
@require_http_methods(["GET", "POST"])
@operator_required
@sensitive_variables("data")
def vm_exec(request: HttpRequest, vm_id: int) -> HttpResponse:
    vm = get_object_or_404(VM.objects.select_related("node"), pk=vm_id)
    if request.method == "POST":
        form = ExecForm(request.POST, vm=vm)
        if form.is_valid():
            data = form.cleaned_data
            try:
                op = vm_exec_request(vm=vm, user=request.user, request=request, command=data["command"],
                                     ssh_user=data["ssh_user"], timeout=data["timeout"],
                                     ssh_password=data.get("ssh_password") or "")
            except OperationError as exc:
                form.add_error(None, exc.message)
            else:
                return redirect("vm-exec-result", operation_id=op.pk)
        status = 400
    else:
        form = ExecForm(vm=vm)
        status = 200
    return render(request, "console/vm_exec.html", {"vm": vm, "form": form, "recent": _recent(vm)}, status=status)


@require_GET
@viewer_required
def exec_result(request: HttpRequest, operation_id: UUID) -> HttpResponse:
    """One command's outcome; the partial is polled until the operation has finished (then 286)."""
    op = get_object_or_404(Operation.objects.select_related("vm", "node"), pk=operation_id, kind="vm.exec")
    context = {"op": op, "vm": op.vm, "cap": OUTPUT_CAP_CHARS}
    return render_page_or_partial(request, "console/exec_result.html", context, "console/_exec_result.html",
                                  settled=op.is_finished)
