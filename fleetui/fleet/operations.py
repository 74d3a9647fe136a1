"""Operation handlers of the fleet utilities: unpairing and cleaning up expired VMs."""

from __future__ import annotations

from typing import Any

from ciderstack import FleetClient
from ciderstack.errors import FleetError

from fleetui.access import services as access_services
from fleetui.activity.models import Operation
from fleetui.activity.registry import operation_handler
from fleetui.core.crypto import CredentialUnreadable, decrypt
from fleetui.nodes.client import client_for, describe_error
from fleetui.nodes.models import Node


def _node(op: Operation) -> Node:
    if op.node is None:
        raise FleetError("the node of this operation has been removed")
    return op.node


@operation_handler("node.unpair", label="Unpair node", mutating=True)
def unpair(op: Operation, client: FleetClient, secrets: dict[str, str]) -> dict[str, Any]:
    """Unpair with our own paired node id (authenticated by the pairing itself), then forget it here."""
    node = _node(op)
    forget = bool(op.params.get("forget"))
    if not node.is_paired:
        raise FleetError("the dashboard is not paired with this node")
    try:
        caller_node_id = decrypt(node.paired_node_id_enc)
        with client_for(node, use_pairing=True) as paired:
            paired.unpair(caller_node_id)
    except (FleetError, CredentialUnreadable) as exc:
        if not forget:
            raise
        access_services.pairing_clear(node=node)
        return {
            "message": f"Forgotten here only; the node did not confirm: {describe_error(exc)}",
            "unpaired_on_node": False,
            "forgotten": True,
        }
    access_services.pairing_clear(node=node)
    return {"message": "Unpaired; the pairing keys are deleted here", "unpaired_on_node": True, "forgotten": True}


@operation_handler("node.cleanup", label="Clean up expired VMs", mutating=True)
def cleanup(op: Operation, client: FleetClient, secrets: dict[str, str]) -> dict[str, Any]:
    force = bool(op.params.get("force"))
    node = _node(op)
    if node.token_permission == Node.Permission.READ_ONLY and node.is_paired:
        # The registry's client uses the read-only API token; the pairing has full access.
        with client_for(node, use_pairing=True) as paired:
            cleaned = paired.cleanup_vms(force=force)
    else:
        cleaned = client.cleanup_vms(force=force)
    expected = op.params.get("expected_count")
    message = f"Removed {cleaned} VM{'s' if cleaned != 1 else ''}"
    if isinstance(expected, int):
        message += f" (the preview expected {expected})"
    return {"message": message, "cleaned_count": cleaned, "expected_count": expected, "force": force}
