"""Node pages: list and detail for everyone, register/edit/remove for admins."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_GET, require_http_methods

from fleetui.core.htmx import render_page_or_partial
from fleetui.core.roles import admin_required, viewer_required
from fleetui.images.forms import ImagePullForm
from fleetui.nodes import selectors, services
from fleetui.nodes.forms import NodeEditForm, NodeForm
from fleetui.vms.selectors import node_blocker


@require_GET
@viewer_required
def node_list(request: HttpRequest) -> HttpResponse:
    return render_page_or_partial(
        request, "nodes/node_list.html", {"nodes": selectors.node_list()}, "nodes/_node_table.html"
    )


@require_GET
@viewer_required
def node_detail(request: HttpRequest, node_id: int) -> HttpResponse:
    context = selectors.node_detail(node_id)
    context["pull_form"] = ImagePullForm()
    context["pull_blocker"] = node_blocker(context["node"])
    return render_page_or_partial(request, "nodes/node_detail.html", context, "nodes/_node_live.html")


@sensitive_post_parameters("api_token")
@require_http_methods(["GET", "POST"])
@admin_required
def node_add(request: HttpRequest) -> HttpResponse:
    form = NodeForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        try:
            node = services.node_register(
                name=form.cleaned_data["name"],
                host=form.cleaned_data["host"],
                port=form.cleaned_data["port"],
                api_token=form.cleaned_data["api_token"],
                user=request.user,
            )
        except services.NodeError as exc:
            form.add_error(None, f"Could not register the node: {exc.message}")
        else:
            note = " Its token is read-only: it can be watched but not changed." if node.is_read_only else ""
            messages.success(request, f"Node {node.name} registered.{note}")
            return redirect("node-detail", node_id=node.pk)
    return render(request, "nodes/node_form.html", {"form": form, "node": None})


@sensitive_post_parameters("api_token")
@require_http_methods(["GET", "POST"])
@admin_required
def node_edit(request: HttpRequest, node_id: int) -> HttpResponse:
    node = selectors.node_get(node_id)
    form = NodeEditForm(request.POST if request.method == "POST" else None, instance=node)
    if request.method == "POST" and form.is_valid():
        try:
            node = services.node_update(
                node=node,
                name=form.cleaned_data["name"],
                host=form.cleaned_data["host"],
                port=form.cleaned_data["port"],
                api_token=form.cleaned_data["api_token"] or None,
                user=request.user,
            )
        except services.NodeError as exc:
            form.add_error(None, f"Could not save the node: {exc.message}")
        else:
            messages.success(request, f"Node {node.name} saved.")
            return redirect("node-detail", node_id=node.pk)
    return render(request, "nodes/node_form.html", {"form": form, "node": node})


@require_http_methods(["GET", "POST"])
@admin_required
def node_remove(request: HttpRequest, node_id: int) -> HttpResponse:
    """GET asks for confirmation (so it works without JavaScript); POST removes."""
    node = selectors.node_get(node_id)
    if request.method == "POST":
        name = node.name
        services.node_remove(node=node, user=request.user)
        messages.success(request, f"Node {name} removed. Its VMs and history are no longer shown.")
        return redirect("node-list")
    return render(request, "nodes/node_confirm_remove.html", {"node": node, "vm_count": node.vms.count()})
