"""Admin pages for pairing the dashboard with nodes and managing their API tokens.

Pages read what the workers cached; every change is an Operation a worker runs.
"""

from __future__ import annotations

import uuid

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.cache import add_never_cache_headers, patch_cache_control
from django.views.decorators.debug import sensitive_post_parameters, sensitive_variables
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from fleetui.access import selectors, services
from fleetui.access.forms import GenerateTokenForm, PairForm, RevokeTokenForm
from fleetui.access.models import NodeAPIToken
from fleetui.activity.models import Operation, OperationStatus
from fleetui.activity.services import OperationError, operation_create
from fleetui.core.htmx import render_page_or_partial
from fleetui.core.roles import admin_required
from fleetui.nodes.models import Node

NOT_PAIRED = "Pair the dashboard with this node first: the node only lets a paired dashboard manage its tokens."


@require_GET
@admin_required
def access_index(request: HttpRequest) -> HttpResponse:
    return render(request, "access/index.html", {"nodes": selectors.nodes_with_access()})


def _node_context(node: Node, **extra: object) -> dict:
    operations = selectors.recent_access_operations(node)
    tokens = selectors.node_tokens(node)
    return {
        "node": node,
        "tokens": tokens,
        "dashboard_token_pk": selectors.dashboard_token_pk(node, tokens),
        "token_list": selectors.token_list_state(node),
        "operations": operations,
        "busy": any(not op.is_finished for op in operations),
        "pair_form": extra.pop("pair_form", None) or PairForm(),
        "generate_form": extra.pop("generate_form", None) or GenerateTokenForm(),
        **extra,
    }


@require_GET
@admin_required
def access_node(request: HttpRequest, node_id: int) -> HttpResponse:
    node = get_object_or_404(Node, pk=node_id)
    context = _node_context(node)
    return render_page_or_partial(request, "access/node.html", context, "access/_node_access.html",
                                  settled=not context["busy"])


def _node_page_with_errors(request: HttpRequest, node: Node, **forms: object) -> HttpResponse:
    return render(request, "access/node.html", _node_context(node, **forms), status=400)


@sensitive_variables("code")
@sensitive_post_parameters("code")
@require_POST
@admin_required
def pair(request: HttpRequest, node_id: int) -> HttpResponse:
    node = get_object_or_404(Node, pk=node_id)
    form = PairForm(request.POST)
    if form.is_valid() and node.is_paired:
        form.add_error(None, "The dashboard is already paired with this node. Unpair it first to pair again.")
    if not form.is_valid():
        return _node_page_with_errors(request, node, pair_form=form)
    code = form.cleaned_data["code"]
    # The code travels as an ephemeral secret (encrypted in Redis, short TTL), never in params or logs.
    try:
        operation_create(kind="node.pair", user=request.user, node=node, params={}, secrets={"code": code},
                         request=request)
    except OperationError as exc:
        form.add_error(None, exc.message)
        return _node_page_with_errors(request, node, pair_form=form)
    messages.info(request, f"Pairing with {node.name}… the result shows below in a moment.")
    return redirect("access-node", node_id=node.pk)


@require_POST
@admin_required
def tokens_refresh(request: HttpRequest, node_id: int) -> HttpResponse:
    node = get_object_or_404(Node, pk=node_id)
    if not node.is_paired:
        messages.error(request, NOT_PAIRED)
        return redirect("access-node", node_id=node.pk)
    try:
        operation_create(kind="token.list", user=request.user, node=node, params={}, request=request)
    except OperationError as exc:
        messages.error(request, exc.message)
    return redirect("access-node", node_id=node.pk)


@require_POST
@admin_required
def token_generate(request: HttpRequest, node_id: int) -> HttpResponse:
    node = get_object_or_404(Node, pk=node_id)
    form = GenerateTokenForm(request.POST)
    if form.is_valid() and not node.is_paired:
        form.add_error(None, NOT_PAIRED)
    if not form.is_valid():
        return _node_page_with_errors(request, node, generate_form=form)
    params = {
        "name": form.cleaned_data["name"],
        "permission": form.cleaned_data["permission"],
        "adopt": form.cleaned_data["adopt"],
    }
    try:
        op = operation_create(kind="token.generate", user=request.user, node=node, params=params, request=request)
    except OperationError as exc:
        form.add_error(None, exc.message)
        return _node_page_with_errors(request, node, generate_form=form)
    return redirect("access-token-generated", operation_id=op.id)


@require_GET
@admin_required
def token_generated(request: HttpRequest, operation_id: uuid.UUID) -> HttpResponse:
    """Follows a token.generate operation, then shows the new token exactly once.

    Only the admin who asked may see it. The token row is deleted by the request that shows it,
    and the answer is never cached, so a reload, the back button or another tab shows only that
    it was already shown.
    """
    op = get_object_or_404(Operation, pk=operation_id, kind="token.generate")
    if op.user_id != request.user.pk:
        raise Http404("No such token.")
    token = None
    if op.status == OperationStatus.SUCCEEDED:
        token = services.token_reveal_pop(operation_id=op.id, user_id=request.user.pk)
    context = {"op": op, "node": op.node, "token": token}
    response = render_page_or_partial(request, "access/token_generated.html", context,
                                      "access/_token_generated.html", settled=op.is_finished)
    add_never_cache_headers(response)
    patch_cache_control(response, no_store=True, private=True)
    return response


@require_http_methods(["GET", "POST"])
@admin_required
def token_revoke(request: HttpRequest, node_id: int, token_pk: int) -> HttpResponse:
    node = get_object_or_404(Node, pk=node_id)
    token = get_object_or_404(NodeAPIToken, pk=token_pk, node=node)
    context = {"node": node, "token": token, "is_dashboards_own": selectors.is_dashboard_token(node, token)}
    if request.method == "GET":
        return render(request, "access/token_revoke.html", {**context, "form": RevokeTokenForm()})
    form = RevokeTokenForm(request.POST)
    if form.is_valid() and not node.is_paired:
        form.add_error(None, NOT_PAIRED)
    if not form.is_valid():
        return render(request, "access/token_revoke.html", {**context, "form": form}, status=400)
    try:
        operation_create(
            kind="token.revoke", user=request.user, node=node, request=request,
            # "id", not "token_id": operation_create refuses parameter names that look like secrets.
            params={"id": token.remote_id, "name": token.name, "prefix": token.token_prefix},
        )
    except OperationError as exc:
        form.add_error(None, exc.message)
        return render(request, "access/token_revoke.html", {**context, "form": form}, status=400)
    messages.info(request, f"Revoking “{token.name}” on {node.name}…")
    return redirect("access-node", node_id=node.pk)
