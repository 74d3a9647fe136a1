"""The one way FleetUI reaches a node: FleetClients built from stored, encrypted credentials.

Also turns the SDK's errors into the plain words pages and Operations show.
"""

from __future__ import annotations

import re
import uuid

from ciderstack import FleetClient
from ciderstack.errors import (
    FleetAuthError,
    FleetError,
    FleetNodeError,
    FleetProtocolError,
    FleetTimeoutError,
    FleetUnavailableError,
)
from ciderstack.types import NodeInfo
from django.conf import settings
from django.views.decorators.debug import sensitive_variables

from fleetui.core.crypto import CredentialUnreadable, decrypt
from fleetui.nodes.models import Node

__all__ = [
    "CredentialUnreadable",
    "client_for",
    "describe_error",
    "detect_permission",
    "probe_node",
]

# A VM name used only by the permission check (see detect_permission); never a real VM's.
PERMISSION_PROBE_NAME = "fleetui-permission-check"
MAX_ERROR_LENGTH = 500
_CALL_PREFIX = re.compile(r"^\w+ to \S+: ")
_FAILED_PREFIX = re.compile(r"^\w+ failed: ")
_TRAILING_REASON = re.compile(r"\(([^()]*)\)\s*$")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
# The SDK's words for a connect timeout (nothing was sent), as opposed to a read timeout.
_CONNECT_TIMEOUT = re.compile(r"could not connect within ([0-9.]+) s")


@sensitive_variables("token")
def client_for(node: Node, *, timeout: float | None = None, use_pairing: bool = False) -> FleetClient:
    """A FleetClient for `node` (close it, or use it as a context manager).

    Authenticates with the stored API token, or with the paired node id when `use_pairing` is set
    (or when the node has only a pairing). Raises CredentialUnreadable when the credential cannot
    be decrypted with the configured keys, or when none is stored.
    """
    read_timeout = float(timeout if timeout is not None else settings.NODE_READ_TIMEOUT)
    common = {
        "port": node.port,
        "timeout": read_timeout,
        "connect_timeout": float(min(settings.NODE_CONNECT_TIMEOUT, read_timeout)),
    }
    if (use_pairing or not node.api_token_enc) and node.paired_node_id_enc:
        return FleetClient(node.host, node_id=decrypt(node.paired_node_id_enc), **common)
    if use_pairing:
        raise CredentialUnreadable("this node is not paired")
    token = decrypt(node.api_token_enc)
    if not token:
        raise CredentialUnreadable("no API token is stored for this node")
    return FleetClient(node.host, api_token=token, **common)


def detect_permission(client: FleetClient) -> str:
    """"readOnly" or "fullAccess": what the client's token may do.

    The protocol has no call that reports a token's permission, so this makes a mutating call that
    cannot change anything: RenameVM of a random, nonexistent VM id. A read-only token is refused
    with 403 before the node looks for the VM; a full-access token gets the node's "VM not found"
    (success: false). Nothing is renamed either way. Transport errors propagate.
    """
    try:
        client.rename_vm(str(uuid.uuid4()), PERMISSION_PROBE_NAME)
    except FleetAuthError:
        return Node.Permission.READ_ONLY
    except FleetNodeError:
        return Node.Permission.FULL_ACCESS
    return Node.Permission.FULL_ACCESS


@sensitive_variables("api_token")
def probe_node(*, host: str, port: int, api_token: str) -> tuple[NodeInfo, str]:
    """Ask a node for its info with `api_token`, then find the token's permission.

    Raises the SDK's FleetError subclasses (see describe_probe_error for their meaning here), and
    FleetProtocolError when the answer has no node id (not a Fleet node).
    """
    with FleetClient(
        host,
        api_token=api_token,
        port=port,
        timeout=float(settings.NODE_READ_TIMEOUT),
        connect_timeout=float(settings.NODE_CONNECT_TIMEOUT),
    ) as client:
        info = client.get_node_info()
        if not info.node_id:
            raise FleetProtocolError("GetNodeInfo: the answer has no nodeID")
        return info, detect_permission(client)


def _clean(text: str) -> str:
    text = _CONTROL.sub(" ", text).strip()
    if len(text) > MAX_ERROR_LENGTH:
        text = text[: MAX_ERROR_LENGTH - 1] + "…"
    return text


def _node_text(exc: FleetError) -> str:
    """The error text the node itself sent, if any (the SDK has already scrubbed secrets)."""
    body = exc.response if isinstance(exc.response, dict) else None
    if body:
        for key in ("error", "message", "errorMessage"):
            value = body.get(key)
            if isinstance(value, str) and value.strip():
                return value.strip()
    return ""


def _detail(exc: FleetError) -> str:
    text = str(exc)
    text = _CALL_PREFIX.sub("", text, count=1)
    return _FAILED_PREFIX.sub("", text, count=1)


def describe_error(exc: BaseException, *, timeout: float | None = None) -> str:
    """What went wrong talking to a node, in plain words, safe to show and store (no secrets)."""
    if isinstance(exc, CredentialUnreadable):
        return (
            "the stored API token can no longer be decrypted with the configured keys: "
            "an admin must re-enter the token"
        )
    if isinstance(exc, FleetTimeoutError):
        connect = _CONNECT_TIMEOUT.search(str(exc))
        if connect:
            return f"timed out connecting: the node did not accept a connection within {connect.group(1)} s"
        if timeout:
            return f"timed out: the node did not answer within {timeout:g} s"
        return "timed out: the node did not answer in time"
    if isinstance(exc, FleetUnavailableError):
        match = _TRAILING_REASON.search(str(exc))
        reason = match.group(1) if match else "connection failed"
        return _clean(f"cannot reach the node: {reason}")
    if isinstance(exc, FleetAuthError):
        text = _node_text(exc)
        return _clean(f"the node rejected the token{': ' + text if text else ' (HTTP 403)'}")
    if isinstance(exc, FleetNodeError):
        text = _node_text(exc)
        if exc.status_code in (None, 200) or (exc.status_code and 200 <= exc.status_code < 300):
            return _clean(text or _detail(exc) or "the node reported an error")
        return _clean(f"the node answered HTTP {exc.status_code}{': ' + text if text else ''}")
    if isinstance(exc, FleetProtocolError):
        return _clean(f"the node's answer could not be read ({_detail(exc)})")
    if isinstance(exc, FleetError):
        return _clean(_detail(exc) or "the call to the node failed")
    return f"unexpected error ({type(exc).__name__}); see the worker log"


def describe_probe_error(exc: BaseException, *, host: str, port: int) -> str:
    """Why registering a node failed, in the words an admin needs (refused, timed out, token rejected...)."""
    where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    if isinstance(exc, FleetTimeoutError):
        return (
            f"timed out: {where} did not answer within "
            f"{settings.NODE_CONNECT_TIMEOUT + settings.NODE_READ_TIMEOUT:g} s (is the host right and reachable?)"
        )
    if isinstance(exc, FleetUnavailableError):
        match = _TRAILING_REASON.search(str(exc))
        reason = match.group(1) if match else "connection failed"
        if reason == "connection refused":
            return f"connection refused: nothing answers at {where} (is the Fleet service running on that port?)"
        return _clean(f"cannot reach {where}: {reason}")
    if isinstance(exc, FleetAuthError):
        text = _node_text(exc)
        return _clean(f"the node rejected the token{' (' + text + ')' if text else ''}")
    if isinstance(exc, FleetProtocolError) or (
        isinstance(exc, FleetNodeError) and exc.status_code is not None
        and (400 <= exc.status_code < 500 or exc.status_code in (501, 505))
    ):
        status = getattr(exc, "status_code", None)
        why = f"it answered HTTP {status}" if status else _detail(exc)
        return _clean(f"not a Fleet node: {where} does not speak the Fleet API ({why})")
    return describe_error(exc)
