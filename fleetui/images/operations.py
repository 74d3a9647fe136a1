"""Operation handlers for images (see fleetui.activity.registry)."""

from __future__ import annotations

from typing import Any

from ciderstack import FleetClient
from ciderstack.errors import FleetError
from django.views.decorators.debug import sensitive_variables

from fleetui.activity.models import Operation
from fleetui.activity.registry import operation_handler
from fleetui.images.services import validate_oci_reference
from fleetui.vms.models import VM


def _validate_pull(params: dict[str, Any], vm: VM | None) -> dict[str, Any]:
    return {"reference": validate_oci_reference(params.get("reference"))}


@operation_handler("image.pull", label="Pull image", validate=_validate_pull)
@sensitive_variables("secrets", "username", "password")
def image_pull(op: Operation, client: FleetClient, secrets: dict[str, str]) -> dict[str, Any]:
    """Starts the pull on the node; its progress shows as a node task. Registry credentials come
    from the operation's secrets (used once, never stored)."""
    username = secrets.get("username") or None
    password = secrets.get("password") or None
    if op.params.get("secrets_given") and not (username and password):
        raise FleetError(
            "The registry credentials were no longer available when the pull ran (they are kept only "
            "briefly); start the pull again."
        )
    client.pull_oci_image(op.params["reference"], username=username, password=password)
    return {"reference": op.params["reference"]}
