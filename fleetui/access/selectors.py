"""Reads of the access app."""

from __future__ import annotations

from django.db.models import Count, QuerySet

from fleetui.access.models import NodeAPIToken, NodeTokenList
from fleetui.activity.models import Operation
from fleetui.nodes.models import Node

ACCESS_KINDS = ("node.pair", "node.unpair", "token.list", "token.generate", "token.revoke")


def nodes_with_access() -> QuerySet[Node]:
    """Every node with its cached token count and list time (one query)."""
    return Node.objects.select_related("token_list").annotate(token_count=Count("api_tokens")).order_by("name")


def node_tokens(node: Node) -> list[NodeAPIToken]:
    return list(NodeAPIToken.objects.filter(node=node).order_by("name", "created_at"))


def token_list_state(node: Node) -> NodeTokenList | None:
    return NodeTokenList.objects.filter(node=node).first()


def recent_access_operations(node: Node, limit: int = 8) -> list[Operation]:
    return list(
        Operation.objects.filter(node=node, kind__in=ACCESS_KINDS)
        .only("id", "kind", "status", "username", "created_at", "finished_at", "error", "result", "params")
        .order_by("-created_at")[:limit]
    )


def is_dashboard_token(node: Node, token: NodeAPIToken) -> bool:
    """Whether `token` looks like the dashboard's own credential for `node` (their prefixes agree)."""
    mine, theirs = node.api_token_prefix, token.token_prefix
    if not mine or not theirs:
        return False
    return mine.startswith(theirs) or theirs.startswith(mine)


def dashboard_token_pk(node: Node, tokens: list[NodeAPIToken]) -> int | None:
    return next((t.pk for t in tokens if is_dashboard_token(node, t)), None)
