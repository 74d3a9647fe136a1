"""Images (OCI images and IPSWs per node), image pulls, and node tasks across the fleet."""

from __future__ import annotations

from django.contrib import messages
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_GET, require_POST

from fleetui.activity.services import OperationError, operation_create
from fleetui.core.htmx import render_page_or_partial, wants_partial, with_client_event
from fleetui.core.roles import operator_required, viewer_required
from fleetui.images import selectors
from fleetui.images.forms import ImagePullForm
from fleetui.nodes.models import Node
from fleetui.vms.selectors import node_blocker, node_choices

TASKS_CHANGED = "tasks-changed"


@require_GET
@viewer_required
def image_list(request: HttpRequest) -> HttpResponse:
    nodes = selectors.nodes_with_images()
    for node in nodes:
        node.pull_blocker = node_blocker(node)
    return render(request, "images/image_list.html", {"nodes": nodes, "pull_form": ImagePullForm()})


@sensitive_post_parameters("password")
@require_POST
@operator_required
def image_pull(request: HttpRequest, node_id: int) -> HttpResponse:
    """Record an image.pull Operation; the registry password goes to the worker as a one-time secret."""
    node = get_object_or_404(Node, pk=node_id)
    form = ImagePullForm(request.POST)
    blocker = node_blocker(node)
    if blocker:
        form.add_error(None, blocker)
    op = None
    if form.is_valid():
        try:
            with transaction.atomic():
                op = operation_create(
                    kind="image.pull",
                    user=request.user,
                    node=node,
                    params={"reference": form.cleaned_data["reference"]},
                    secrets=form.secrets() or None,
                    request=request,
                )
        except OperationError as exc:
            form.add_error(None, exc.message)
    if op is not None:
        if not wants_partial(request):
            messages.info(request, f"Pull of {form.cleaned_data['reference']} requested on {node.name}.")
            return redirect("node-detail", node_id=node.pk)
        form = ImagePullForm()  # a fresh form: nothing typed (least of all the password) is sent back
    context = {"node": node, "pull_form": form, "op": op, "fresh": True, "pull_blocker": blocker}
    if wants_partial(request):
        response = render(request, "images/_pull_form.html", context)
        return with_client_event(response, TASKS_CHANGED, {"node": node.pk}) if op else response
    return render(request, "images/pull_page.html", context)


@require_GET
@viewer_required
def task_list(request: HttpRequest) -> HttpResponse:
    node_ids = dict(node_choices())
    try:
        node_id = int(request.GET.get("node") or 0) or None
    except ValueError:
        node_id = None
    if node_id not in node_ids:
        node_id = None
    status = request.GET.get("status", "active")
    if status not in selectors.TASK_STATUS_FILTERS:
        status = "active"
    context = selectors.task_list(node_id=node_id, status=status)
    context.update(
        {"node_id": node_id, "status": status, "node_choices": node_ids.items(),
         "status_choices": [(k, v[0]) for k, v in selectors.TASK_STATUS_FILTERS.items()]}
    )
    return render_page_or_partial(request, "images/task_list.html", context, "images/_task_table.html")
