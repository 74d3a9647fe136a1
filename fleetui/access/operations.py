"""Operation handlers of the access app: pairing and the token methods (node-ID auth).

The token methods refuse API tokens, so these handlers talk to the node through the pairing
(client_for(node, use_pairing=True)), whatever client the registry hands them. Secrets (the
pairing code, the private key, a generated token) never go into a result, a log line or an
exception message.
"""

from __future__ import annotations

import logging
from typing import Any

from ciderstack import FleetClient
from ciderstack.errors import FleetAuthError, FleetError, FleetNodeError
from ciderstack.types import enum_value
from django.views.decorators.debug import sensitive_variables

from fleetui.access import services
from fleetui.activity.models import Operation
from fleetui.activity.registry import operation_handler
from fleetui.nodes.client import client_for, describe_error
from fleetui.nodes.models import Node

log = logging.getLogger(__name__)

# The name the node shows for the dashboard in its list of paired nodes.
PAIRING_NAME = "FleetUI dashboard"


def _node(op: Operation) -> Node:
    if op.node is None:
        raise FleetError("the node of this operation has been removed")
    return op.node


def _paired_client(node: Node) -> FleetClient:
    if not node.is_paired:
        raise FleetError("the dashboard is not paired with this node: pair it first (Access page)")
    return client_for(node, use_pairing=True)


def refresh_token_list(node: Node, client: FleetClient) -> int:
    """Read the node's tokens and cache them; on failure record the error and re-raise."""
    try:
        summaries = client.list_api_tokens()
    except FleetError as exc:
        services.token_list_error(node=node, message=describe_error(exc))
        raise
    return services.token_list_store(node=node, summaries=summaries)


# Not "mutating" in the registry's sense: pairing uses no stored credential, so a node registered
# with a read-only token can (and should) still be paired.
@operation_handler("node.pair", label="Pair with node", mutating=False)
@sensitive_variables("secrets", "code", "credentials")
def pair(op: Operation, client: FleetClient, secrets: dict[str, str]) -> dict[str, Any]:
    node = _node(op)
    if node.is_paired:
        raise FleetError("the dashboard is already paired with this node: unpair it first to pair again")
    code = (secrets or {}).get("code", "")
    if not code:
        # The code lives in Redis for a few minutes only; a worker that picks this up later finds nothing.
        raise FleetError("the pairing code has expired before a worker could use it: enter the code again")
    try:
        credentials = FleetClient.pair(node.host, code, name=PAIRING_NAME, port=node.port)
    except FleetAuthError as exc:
        reason = ""
        if isinstance(exc.response, dict):
            reason = str(exc.response.get("errorMessage") or exc.response.get("error") or "")[:200]
            reason = reason.replace(code, "••••••")  # in case a node echoes what it was sent
        raise FleetError(
            f"the node refused the pairing{': ' + reason if reason else ''} "
            "(each code works once: enter the code the node shows now)"
        ) from None
    services.pairing_store(
        node=node, caller_node_id=credentials["node_id"], private_key_hex=credentials["private_key_hex"]
    )
    log.info("paired with node %s (responder %s)", node.name, credentials.get("responder_name", ""))
    result: dict[str, Any] = {
        "message": f"Paired with {credentials.get('responder_name') or node.name}",
        "responder_name": credentials.get("responder_name", ""),
        "responder_node_id": credentials.get("responder_node_id", ""),
    }
    # The point of pairing is the token list: read it now so the page has it at once.
    try:
        with _paired_client(node) as paired:
            result["token_count"] = refresh_token_list(node, paired)
    except FleetError as exc:
        result["token_list_error"] = describe_error(exc)
    return result


@operation_handler("token.list", label="Read API tokens", mutating=False)
def list_tokens(op: Operation, client: FleetClient, secrets: dict[str, str]) -> dict[str, Any]:
    node = _node(op)
    with _paired_client(node) as paired:
        count = refresh_token_list(node, paired)
    return {"message": f"{count} API token{'s' if count != 1 else ''}", "count": count}


@operation_handler("token.generate", label="Generate API token", mutating=True)
@sensitive_variables("token", "generated")
def generate_token(op: Operation, client: FleetClient, secrets: dict[str, str]) -> dict[str, Any]:
    node = _node(op)
    name = str(op.params.get("name", ""))
    permission = str(op.params.get("permission", "readOnly"))
    adopt = bool(op.params.get("adopt"))
    with _paired_client(node) as paired:
        generated = paired.generate_api_token(name, permission)
        token = generated.token
        # Hand the token to the page that shows it once: encrypted, in its own row, deleted when shown.
        services.token_reveal_put(operation_id=op.id, user_id=op.user_id, token=token)
        granted = enum_value(generated.permissions) or permission
        if adopt:
            services.token_adopt(node=node, token=token, permission=granted)
        del token
        prefix = ""
        try:
            refresh_token_list(node, paired)
            listed = node.api_tokens.filter(remote_id=generated.id).first()
            prefix = listed.token_prefix if listed else ""
        except FleetError:
            pass  # the token exists; the list is refreshed next time
    return {
        "message": f"Generated {granted} token “{generated.name or name}”"
                   + (" and made it the dashboard's token" if adopt else ""),
        "token_id": generated.id,
        "name": generated.name or name,
        "permission": granted,
        "prefix": prefix,
        "adopted": adopt,
    }


@operation_handler("token.revoke", label="Revoke API token", mutating=True)
def revoke_token(op: Operation, client: FleetClient, secrets: dict[str, str]) -> dict[str, Any]:
    node = _node(op)
    token_id = str(op.params.get("id", ""))
    if not token_id:
        raise FleetError("no token id given")
    with _paired_client(node) as paired:
        revoked = paired.revoke_api_token(token_id)
        try:
            refresh_token_list(node, paired)
        except FleetError:
            pass
    if not revoked:
        raise FleetNodeError("the node did not revoke the token: it no longer knows it (already revoked?)")
    label = op.params.get("name") or token_id
    return {"message": f"Revoked token “{label}”", "token_id": token_id, "revoked": True}
