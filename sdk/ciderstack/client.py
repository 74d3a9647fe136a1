"""HTTP client for the CiderStack Fleet JSON-RPC API.

Same API and same requests on the wire as the published ``ciderstack`` 0.1.1
client, with a pooled keep-alive session, separate connect/read timeouts, a cap
on the size of an answer, typed errors (see :mod:`ciderstack.errors`) and
tolerant parsing (see :mod:`ciderstack.types`).
"""

from __future__ import annotations

import base64
import json
import logging
import re
import time
import uuid
from collections.abc import Iterable
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import ReadTimeoutError

from .errors import (
    FleetAuthError,
    FleetError,
    FleetNodeError,
    FleetProtocolError,
    FleetTimeoutError,
    FleetUnavailableError,
)
from .types import (
    VM,
    APIToken,
    APITokenSummary,
    ExecResult,
    NodeInfo,
    NodeStats,
    Snapshot,
    Task,
    Template,
    enum_value,
)

__all__ = ["FleetClient", "FleetError", "PairingCredentials"]

logger = logging.getLogger("ciderstack")

_REDACTED = "***"
_PAIRING_CODE = re.compile(r"\d{6}")
_CHUNK_BYTES = 64 * 1024
_JSON_HEADERS = {"Content-Type": "application/json"}


def _scrub_text(text: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, _REDACTED)
    return text


def _scrub(value: Any, secrets: tuple[str, ...]) -> Any:
    """A copy of a decoded JSON value with every occurrence of a secret replaced."""
    if not secrets:
        return value
    if isinstance(value, str):
        return _scrub_text(value, secrets)
    if isinstance(value, dict):
        return {key: _scrub(item, secrets) for key, item in value.items()}
    if isinstance(value, list):
        return [_scrub(item, secrets) for item in value]
    return value


def _short_reason(exc: BaseException) -> str:
    """What went wrong with a connection, in a few words (requests' own text is long and nested)."""
    text = str(exc)
    for needle, reason in (
        ("Connection refused", "connection refused"),
        ("Name or service not known", "host name not found"),
        ("nodename nor servname", "host name not found"),
        ("Temporary failure in name resolution", "host name not found"),
        ("No address associated", "host name not found"),
        ("Connection reset", "connection reset"),
        ("RemoteDisconnected", "connection closed by the node"),
        ("IncompleteRead", "answer cut short"),
        ("Connection broken", "connection broken"),
        ("No route to host", "no route to host"),
        ("Network is unreachable", "network unreachable"),
        ("Read timed out", "read timed out"),
        ("timed out", "timed out"),
    ):
        if needle in text:
            return reason
    return type(exc).__name__


def _message_from(body: dict[str, Any] | None) -> str:
    if not body:
        return ""
    for key in ("error", "message", "errorMessage"):
        value = body.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return ""


def _post(
    session: requests.Session,
    *,
    url: str,
    method: str,
    where: str,
    payload: dict[str, Any],
    connect_timeout: float,
    read_timeout: float,
    max_response_bytes: int,
    secrets: tuple[str, ...],
) -> dict[str, Any]:
    """POST one RPC and return the decoded JSON object of a 2xx answer; map every failure to a FleetError.

    Errors: FleetAuthError (403), FleetNodeError (other non-2xx), FleetUnavailableError /
    FleetTimeoutError (transport), FleetProtocolError (body unusable). ``success: false`` is the
    caller's business.
    """
    data = json.dumps(payload, allow_nan=False).encode("utf-8")
    started = time.perf_counter()
    deadline = time.monotonic() + connect_timeout + read_timeout
    status: int | None = None
    try:
        try:
            # Prepared directly and handed to Session.send: the same request as session.post(), without
            # the per-call settings merge (a sizeable share of a loopback call's time). The session's
            # headers, adapters, proxies and TLS settings still apply; its `auth` does not (nodes use none).
            request = requests.PreparedRequest()
            request.prepare(
                method="POST", url=url, headers={**session.headers, **_JSON_HEADERS}, data=data, hooks={}
            )
            response = session.send(
                request, timeout=(connect_timeout, read_timeout), stream=True, allow_redirects=False
            )
        except requests.ConnectTimeout:
            raise FleetTimeoutError(
                f"{method} to {where}: could not connect within {connect_timeout:g} s"
            ) from None
        except requests.Timeout:
            raise FleetTimeoutError(f"{method} to {where}: no answer within {read_timeout:g} s") from None
        except requests.ConnectionError as exc:
            raise FleetUnavailableError(f"{method} to {where}: node unreachable ({_short_reason(exc)})") from None
        except requests.RequestException as exc:
            raise FleetError(f"{method} to {where}: request failed ({type(exc).__name__})") from None

        with response:
            status = response.status_code
            declared = response.headers.get("Content-Length")
            if declared and declared.isdigit() and int(declared) > max_response_bytes:
                raise FleetProtocolError(
                    f"{method} to {where}: answer of {int(declared)} bytes exceeds the "
                    f"{max_response_bytes}-byte limit"
                )
            chunks: list[bytes] = []
            size = 0
            try:
                for chunk in response.iter_content(_CHUNK_BYTES):
                    size += len(chunk)
                    if size > max_response_bytes:
                        raise FleetProtocolError(
                            f"{method} to {where}: answer exceeds the {max_response_bytes}-byte limit"
                        )
                    if time.monotonic() > deadline:
                        raise FleetTimeoutError(f"{method} to {where}: answer still arriving after the timeout")
                    chunks.append(chunk)
            except requests.ConnectionError as exc:
                if exc.args and isinstance(exc.args[0], ReadTimeoutError):
                    raise FleetTimeoutError(f"{method} to {where}: no answer within {read_timeout:g} s") from None
                raise FleetUnavailableError(
                    f"{method} to {where}: connection lost while reading the answer ({_short_reason(exc)})"
                ) from None
            except requests.RequestException as exc:
                # ChunkedEncodingError and friends: the answer was cut short or mangled in transit.
                raise FleetUnavailableError(
                    f"{method} to {where}: connection lost while reading the answer ({_short_reason(exc)})"
                ) from None
            raw = b"".join(chunks)

        body: Any
        try:
            body = json.loads(raw) if raw.strip() else None
        except ValueError:
            body = None
        if status is not None and not 200 <= status < 300 and isinstance(body, dict):
            body = _scrub(body, secrets)  # it rides on the exception; a success answer is left as sent

        if status == 403:
            detail = _scrub_text(_message_from(body if isinstance(body, dict) else None), secrets)
            raise FleetAuthError(
                f"{method} to {where}: refused (HTTP 403){': ' + detail if detail else ''}",
                body if isinstance(body, dict) else None,
            )
        if not 200 <= status < 300:
            detail = _scrub_text(_message_from(body if isinstance(body, dict) else None), secrets)
            raise FleetNodeError(
                f"{method} to {where}: node answered HTTP {status}{': ' + detail if detail else ''}",
                body if isinstance(body, dict) else None,
                status_code=status,
            )
        if body is None and raw.strip():
            raise FleetProtocolError(f"{method} to {where}: answer is not JSON ({len(raw)} bytes)")
        if not isinstance(body, dict):
            kind = "empty" if body is None else f"a JSON {type(body).__name__}"
            raise FleetProtocolError(f"{method} to {where}: answer is {kind}, not a JSON object")
    except FleetError as exc:
        logger.debug(
            "rpc %s %s failed in %.1f ms: %s (HTTP %s)",
            method, where, (time.perf_counter() - started) * 1000, type(exc).__name__, status,
        )
        raise
    logger.debug("rpc %s %s -> HTTP %s in %.1f ms", method, where, status, (time.perf_counter() - started) * 1000)
    return body


def _list_field(body: dict[str, Any], key: str, method: str) -> list[dict[str, Any]]:
    """The list under ``key`` (missing means empty); items that are not objects are dropped with a warning."""
    value = body.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise FleetProtocolError(f"{method}: '{key}' is a {type(value).__name__}, not a list")
    items = [item for item in value if isinstance(item, dict)]
    if len(items) != len(value):
        logger.warning("rpc %s: dropped %d item(s) of '%s' that are not objects",
                       method, len(value) - len(items), key)
    return items


def _object_field(body: dict[str, Any], key: str, method: str) -> dict[str, Any]:
    value = body.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise FleetProtocolError(f"{method}: '{key}' is a {type(value).__name__}, not an object")
    return value


class PairingCredentials(dict):
    """What :meth:`FleetClient.pair` returns: a plain dict whose repr hides the private key.

    Keys (as the published client): node_id, private_key_hex, public_key_hex,
    responder_node_id, responder_name.
    """

    def __repr__(self) -> str:
        shown = {key: (_REDACTED if key == "private_key_hex" else value) for key, value in self.items()}
        return f"PairingCredentials({shown!r})"

    __str__ = __repr__


class FleetClient:
    """Client for the CiderStack Fleet API.

    Authenticate with either an API token (recommended) or a trusted node ID::

        client = FleetClient("192.168.1.100", api_token="csk_...")
        client = FleetClient("192.168.1.100", node_id="your-trusted-node-id")

    Connections: each client keeps one pooled keep-alive ``requests.Session``, so
    repeated calls to a node reuse a TCP connection. ``close()`` (or ``with
    FleetClient(...) as client:``) releases it. ``requests.Session`` is not
    formally thread-safe: use one client per thread (they are cheap), or guard a
    shared client with a lock. Passing ``session=`` uses the caller's session,
    which ``close()`` then leaves open.

    Timeouts: ``timeout`` is the read timeout (seconds to wait for the answer);
    ``connect_timeout`` bounds connecting, so a dead node fails fast.
    ``exec_command`` waits for the command's own timeout plus a margin.

    Errors: every failure raises :class:`FleetError` or one of its subclasses in
    :mod:`ciderstack.errors`. Answers over ``max_response_bytes`` are refused.

    Secrets: the API token, node ID, SSH and registry passwords never appear in
    exception messages, in this object's repr or in the ``ciderstack`` logger,
    which logs method, node and duration at DEBUG, never a body.
    """

    DEFAULT_PORT = 9473
    DEFAULT_TIMEOUT = 30
    DEFAULT_EXEC_TIMEOUT = 300  # seconds (5 min)
    DEFAULT_CONNECT_TIMEOUT = 5.0
    DEFAULT_MAX_RESPONSE_BYTES = 16 * 1024 * 1024
    EXEC_TIMEOUT_MARGIN = 60  # seconds the HTTP request outlives the command's own timeout

    def __init__(
        self,
        host: str,
        node_id: str | None = None,
        api_token: str | None = None,
        port: int = DEFAULT_PORT,
        timeout: int = DEFAULT_TIMEOUT,
        *,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        session: requests.Session | None = None,
    ) -> None:
        """Provide exactly one of node_id or api_token, else FleetError."""
        if not node_id and not api_token:
            raise FleetError("Either node_id or api_token is required for authentication")
        if node_id and api_token:
            raise FleetError("Provide either node_id or api_token, not both")
        if not host or not isinstance(host, str):
            raise FleetError("host is required")
        if not 0 < int(port) < 65536:
            raise FleetError(f"port must be between 1 and 65535, not {port}")
        if not timeout or timeout <= 0 or not connect_timeout or connect_timeout <= 0:
            raise FleetError("timeout and connect_timeout must be positive")
        if max_response_bytes <= 0:
            raise FleetError("max_response_bytes must be positive")
        self.host = host
        self.port = int(port)
        self.timeout = timeout
        self.connect_timeout = float(connect_timeout)
        self.max_response_bytes = int(max_response_bytes)
        self.node_id = node_id
        self.api_token = api_token
        # IPv6 literals need brackets in a URL.
        netloc_host = f"[{host}]" if ":" in host and not host.startswith("[") else host
        self.base_url = f"http://{netloc_host}:{self.port}"
        self._where = f"{netloc_host}:{self.port}"
        self._secrets: tuple[str, ...] = tuple(s for s in (api_token, node_id) if s)
        self._owns_session = session is None
        self._session = session if session is not None else self._new_session()

    @staticmethod
    def _new_session() -> requests.Session:
        session = requests.Session()
        # Node APIs live on the LAN over plain HTTP: proxy variables and .netrc must not apply
        # (and looking them up on every call costs time).
        session.trust_env = False
        # No automatic retries: most calls mutate, and a dead node should fail at once.
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=4, max_retries=0)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        return session

    def __repr__(self) -> str:
        if self.api_token:
            auth = f"api_token={self.api_token[:8]}…"
        else:
            auth = f"node_id={(self.node_id or '')[:4]}…"
        return f"FleetClient({self._where}, {auth})"

    __str__ = __repr__

    def close(self) -> None:
        """Close the pooled connections (a session passed in by the caller is left open)."""
        if self._owns_session:
            self._session.close()

    def __enter__(self) -> FleetClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # ------------------------------------------------------------------ transport

    def _rpc(
        self,
        method: str,
        payload: dict[str, Any] | None = None,
        request_timeout: float | None = None,
        secrets: tuple[str, ...] = (),
    ) -> dict[str, Any]:
        """Make an RPC call, auth injected first as the published client does; return the answer object."""
        body: dict[str, Any]
        if self.api_token:
            body = {"apiToken": self.api_token}
        else:
            body = {"callerNodeID": self.node_id}
        if payload:
            body.update(payload)
        read_timeout = float(request_timeout if request_timeout is not None else self.timeout)
        return _post(
            self._session,
            url=f"{self.base_url}/rpc/{method}",
            method=method,
            where=self._where,
            payload=body,
            connect_timeout=min(self.connect_timeout, read_timeout),
            read_timeout=read_timeout,
            max_response_bytes=self.max_response_bytes,
            secrets=self._secrets + tuple(s for s in secrets if s),
        )

    def _call(
        self,
        method: str,
        payload: dict[str, Any] | None = None,
        request_timeout: float | None = None,
        secrets: tuple[str, ...] = (),
    ) -> dict[str, Any]:
        """An RPC whose ``success: false`` answer raises FleetNodeError (a missing ``success`` is success)."""
        response = self._rpc(method, payload, request_timeout, secrets)
        self._check_response(response, method, secrets)
        return response

    def _check_response(
        self, response: dict[str, Any], operation: str, secrets: tuple[str, ...] = ()
    ) -> dict[str, Any]:
        success = response.get("success", True)
        if success is False or success == 0 or success == "false":
            secrets = self._secrets + tuple(s for s in secrets if s)
            error = _scrub_text(_message_from(response) or "Unknown error", secrets)
            raise FleetNodeError(f"{operation} failed: {error}", _scrub(response, secrets), status_code=200)
        return response

    # ------------------------------------------------------------------ node information

    def get_node_info(self) -> NodeInfo:
        """Get information about the connected node."""
        return NodeInfo.from_dict(self._call("GetNodeInfo"))

    def get_node_stats(self) -> NodeStats:
        """Get real-time statistics for the node."""
        return NodeStats.from_dict(self._call("GetNodeStats"))

    # ------------------------------------------------------------------ VMs

    def list_vms(self) -> list[VM]:
        """List all VMs on the node."""
        data = self._call("ListVMs")
        return [VM.from_dict(item) for item in _list_field(data, "vms", "ListVMs")]

    def get_vm(self, vm_id: str) -> VM | None:
        """Get a specific VM by ID (None if not found)."""
        for vm in self.list_vms():
            if vm.id == vm_id:
                return vm
        return None

    def start_vm(self, vm_id: str) -> bool:
        """Start a VM (or resume a suspended one)."""
        self._call("StartVM", {"vmID": vm_id})
        return True

    def stop_vm(self, vm_id: str) -> bool:
        """Stop a VM."""
        self._call("StopVM", {"vmID": vm_id})
        return True

    def suspend_vm(self, vm_id: str) -> bool:
        """Suspend (pause) a running VM."""
        self._call("SuspendVM", {"vmID": vm_id})
        return True

    def start_vm_recovery(self, vm_id: str) -> bool:
        """Start a VM in macOS Recovery."""
        self._call("StartVMRecovery", {"vmID": vm_id})
        return True

    def clone_vm(self, vm_id: str, new_name: str) -> VM:
        """Clone a VM; returns the new VM."""
        response = self._call("CloneVM", {"vmID": vm_id, "newName": new_name})
        return VM.from_dict(_object_field(response, "newVM", "CloneVM"))

    def rename_vm(self, vm_id: str, new_name: str) -> bool:
        """Rename a VM."""
        self._call("RenameVM", {"vmID": vm_id, "newName": new_name})
        return True

    def delete_vm(self, vm_id: str) -> bool:
        """Delete a VM."""
        self._call("DeleteVM", {"vmID": vm_id})
        return True

    def create_vm(
        self,
        name: str,
        cpu_count: int = 4,
        memory_mb: int = 8192,
        disk_gb: int = 64,
        ipsw_path: str | None = None,
        oci_image: str | None = None,
    ) -> str:
        """Create a VM on the node (runs as a task); returns the new VM's id."""
        payload: dict[str, Any] = {
            "requestID": str(uuid.uuid4()),
            "name": name,
            "cpuCount": cpu_count,
            "memorySizeMB": memory_mb,
            "diskSizeGB": disk_gb,
        }
        if ipsw_path:
            payload["ipswPath"] = ipsw_path
        if oci_image:
            payload["ociImageReference"] = oci_image
        response = self._call("CreateVMOnNode", payload)
        return str(response.get("vmID") or "")

    # ------------------------------------------------------------------ VM settings

    def get_vm_settings(self, vm_id: str) -> dict[str, Any]:
        """Get a VM's settings (its ``configuration`` object)."""
        response = self._call("GetVMSettings", {"vmID": vm_id})
        return _object_field(response, "configuration", "GetVMSettings")

    def update_vm_settings(
        self,
        vm_id: str,
        cpu_count: int | None = None,
        memory_size: int | None = None,
        display_width: int | None = None,
        display_height: int | None = None,
        intent: str | None = None,
        ttl_seconds: int | None = None,
    ) -> bool:
        """Update VM settings; only the given ones are sent. ``memory_size`` in MB; ``ttl_seconds=-1`` clears."""
        payload: dict[str, Any] = {"vmID": vm_id}
        for key, value in (
            ("cpuCount", cpu_count),
            ("memorySize", memory_size),
            ("displayWidth", display_width),
            ("displayHeight", display_height),
            ("intent", intent),
            ("ttlSeconds", ttl_seconds),
        ):
            if value is not None:
                payload[key] = value
        self._call("UpdateVMSettings", payload)
        return True

    # ------------------------------------------------------------------ snapshots

    def list_snapshots(self, vm_id: str) -> list[Snapshot]:
        """List snapshots of a VM."""
        data = self._call("ListSnapshots", {"vmID": vm_id})
        return [Snapshot.from_dict(item) for item in _list_field(data, "snapshots", "ListSnapshots")]

    def create_snapshot(self, vm_id: str, name: str, description: str | None = None) -> Snapshot:
        """Create a snapshot."""
        payload: dict[str, Any] = {"vmID": vm_id, "name": name}
        if description:
            payload["snapshotDescription"] = description
        response = self._call("CreateSnapshot", payload)
        return Snapshot.from_dict(_object_field(response, "snapshot", "CreateSnapshot"))

    def restore_snapshot(self, vm_id: str, snapshot_id: str) -> bool:
        """Restore a VM to a snapshot (the VM must be stopped)."""
        self._call("RestoreSnapshot", {"vmID": vm_id, "snapshotID": snapshot_id})
        return True

    def delete_snapshot(self, vm_id: str, snapshot_id: str) -> bool:
        """Delete a snapshot."""
        self._call("DeleteSnapshot", {"vmID": vm_id, "snapshotID": snapshot_id})
        return True

    # ------------------------------------------------------------------ command execution

    def exec_command(
        self,
        vm_id: str,
        command: str,
        ssh_user: str | None = None,
        ssh_password: str | None = None,
        timeout: int = DEFAULT_EXEC_TIMEOUT,
    ) -> ExecResult:
        """Run a shell command on a running VM over SSH.

        ``ssh_user`` omitted lets the node use its default ("cideradmin"). The HTTP read timeout
        is extended to the command's ``timeout`` plus EXEC_TIMEOUT_MARGIN. A command that ran and
        failed, or that the node refused to run, comes back as ``success=False`` (with the node's
        reason in ``stderr``), as with the published client.
        """
        payload: dict[str, Any] = {"vmID": vm_id, "command": command, "timeout": timeout}
        if ssh_user:
            payload["sshUser"] = ssh_user
        if ssh_password:
            payload["sshPassword"] = ssh_password
        request_timeout = max(float(self.timeout), float(timeout) + self.EXEC_TIMEOUT_MARGIN)
        response = self._rpc(
            "ExecCommand", payload, request_timeout=request_timeout, secrets=(ssh_password or "",)
        )
        return ExecResult.from_dict(response)

    # ------------------------------------------------------------------ tasks

    def get_tasks(self, include_completed: bool = False) -> list[Task]:
        """Get the node's tasks (running ones; completed ones too when asked)."""
        data = self._call("GetTasks", {"includeCompleted": include_completed})
        return [Task.from_dict(item) for item in _list_field(data, "tasks", "GetTasks")]

    # ------------------------------------------------------------------ images

    def push_image(self, vm_id: str, image_name: str, insecure: bool = False) -> str:
        """Push a VM as an OCI image; returns the task id."""
        response = self._call("PushImage", {"vmID": vm_id, "imageName": image_name, "insecure": insecure})
        return str(response.get("taskID") or "")

    def list_ipsws(self) -> list[dict[str, Any]]:
        """List IPSW files available on the node."""
        return _list_field(self._call("ListRemoteIPSWs"), "ipsws", "ListRemoteIPSWs")

    def list_oci_images(self) -> list[dict[str, Any]]:
        """List OCI images on the node."""
        return _list_field(self._call("ListRemoteOCIImages"), "images", "ListRemoteOCIImages")

    def download_ipsw(self, url: str, name: str, version: str) -> bool:
        """Download an IPSW onto the node (runs as a task)."""
        self._call("DownloadIPSWOnNode", {
            "requestID": str(uuid.uuid4()),
            "downloadURL": url,
            "expectedName": name,
            "expectedVersion": version,
        })
        return True

    def get_ipsw_info(self, path: str) -> dict[str, Any]:
        """Get metadata about an IPSW file on the node."""
        return self._call("GetIPSWInfo", {"path": path})

    def pull_oci_image(
        self,
        image_reference: str,
        username: str | None = None,
        password: str | None = None,
    ) -> bool:
        """Pull an OCI image onto the node (runs as a task); credentials are sent only when both are given."""
        payload: dict[str, Any] = {"requestID": str(uuid.uuid4()), "imageReference": image_reference}
        if username and password:
            payload["credentials"] = {"username": username, "password": password}
        self._call("PullOCIImageOnNode", payload, secrets=(password or "",))
        return True

    # ------------------------------------------------------------------ fleet overview

    def get_fleet_overview(self) -> dict[str, Any]:
        """Get aggregated fleet status (manager node only); the raw answer, with ``overview`` inside."""
        return self._call("GetFleetOverview")

    def get_fleet_events(self, limit: int = 100, event_type: str | None = None) -> list[dict[str, Any]]:
        """Get fleet activity events, newest first."""
        payload: dict[str, Any] = {"limit": limit}
        if event_type:
            payload["eventType"] = event_type
        return _list_field(self._call("GetFleetEvents", payload), "events", "GetFleetEvents")

    def get_remote_resources(self) -> dict[str, Any]:
        """Get the node's free capacity for VM creation."""
        return self._call("GetRemoteResources")

    # ------------------------------------------------------------------ pairing

    @staticmethod
    def pair(
        host: str,
        code: str,
        name: str | None = None,
        port: int = 9473,
    ) -> dict[str, Any]:
        """Pair with a Fleet node using the 6-digit code it shows; returns credentials.

        Returns a dict (repr hides the private key) with node_id, private_key_hex,
        public_key_hex, responder_node_id and responder_name. Use ``node_id`` for
        ``FleetClient(host, node_id=...)`` and keep the private key secret.
        Needs the ``pairing`` extra (``cryptography``).
        """
        code_text = str(code).strip()
        if not _PAIRING_CODE.fullmatch(code_text):
            raise FleetError("The pairing code must be the 6 digits the node shows")
        try:
            from cryptography.hazmat.primitives.asymmetric import ec
            from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
        except ImportError:  # pragma: no cover - cryptography is a dependency of this project
            raise FleetError("Pairing needs the 'cryptography' package (pip install ciderstack[pairing])") from None

        node_id = str(uuid.uuid4()).upper()
        client_name = name or f"sdk-{node_id[:8].lower()}"
        private_key = ec.generate_private_key(ec.SECP256R1())
        public_key_bytes = private_key.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
        private_key_hex = private_key.private_numbers().private_value.to_bytes(32, "big").hex()

        payload = {
            "requestID": str(uuid.uuid4()).upper(),
            "requesterNodeID": {"value": node_id},
            "requesterName": client_name,
            "requesterIP": "0.0.0.0",
            "publicKey": base64.b64encode(public_key_bytes).decode("ascii"),
            "code": code_text,
        }
        netloc_host = f"[{host}]" if ":" in host and not host.startswith("[") else host
        where = f"{netloc_host}:{port}"
        with FleetClient._new_session() as session:
            result = _post(
                session,
                url=f"http://{where}/rpc/RequestPairing",
                method="RequestPairing",
                where=where,
                payload=payload,
                connect_timeout=FleetClient.DEFAULT_CONNECT_TIMEOUT,
                read_timeout=float(FleetClient.DEFAULT_TIMEOUT),
                max_response_bytes=FleetClient.DEFAULT_MAX_RESPONSE_BYTES,
                secrets=(code_text, private_key_hex),
            )
        if result.get("accepted") is not True:
            reason = _scrub_text(_message_from(result) or "Pairing rejected", (code_text, private_key_hex))
            raise FleetAuthError(f"Pairing failed: {reason}", _scrub(result, (code_text, private_key_hex)))
        responder = result.get("responderNodeID")
        responder_id = responder.get("value", "") if isinstance(responder, dict) else responder
        return PairingCredentials(
            node_id=node_id,
            private_key_hex=private_key_hex,
            public_key_hex=public_key_bytes.hex(),
            responder_node_id=str(responder_id or ""),
            responder_name=str(result.get("responderName") or ""),
        )

    # ------------------------------------------------------------------ templates

    def list_templates(self) -> list[Template]:
        """List all VM templates."""
        data = self._call("ListTemplates")
        return [Template.from_dict(item) for item in _list_field(data, "templates", "ListTemplates")]

    def _get_template(self, payload: dict[str, Any]) -> Template | None:
        response = self._rpc("GetTemplate", payload)
        success = response.get("success", True)
        if success is False or success == 0 or success == "false":
            return None
        template = _object_field(response, "template", "GetTemplate")
        return Template.from_dict(template) if template else None

    def get_template(self, template_id: str) -> Template | None:
        """Get a template by ID (None if not found)."""
        return self._get_template({"templateID": template_id})

    def get_template_by_name(self, name: str) -> Template | None:
        """Get a template by name (None if not found)."""
        return self._get_template({"templateName": name})

    def create_template_from_vm(
        self,
        vm_id: str,
        name: str,
        description: str | None = None,
        category: str | None = None,
        keep_original_vm: bool = True,
    ) -> Template:
        """Create a template from a stopped VM."""
        payload: dict[str, Any] = {"vmID": vm_id, "name": name}
        if description is not None:
            payload["description"] = description
        if category is not None:
            payload["category"] = category
        payload["keepOriginalVM"] = keep_original_vm
        response = self._call("CreateTemplateFromVM", payload)
        return Template.from_dict(_object_field(response, "template", "CreateTemplateFromVM"))

    def delete_template(self, template_id: str) -> bool:
        """Delete a template."""
        self._call("DeleteTemplate", {"templateID": template_id})
        return True

    # ------------------------------------------------------------------ API tokens

    def generate_api_token(self, name: str, permissions: str = "fullAccess") -> APIToken:
        """Generate an API token (needs node-ID auth). The answer is the only time the full token is shown."""
        permission = enum_value(permissions)
        if permission not in ("readOnly", "fullAccess"):
            raise FleetError("permissions must be 'readOnly' or 'fullAccess'")
        response = self._call("GenerateAPIToken", {"name": name, "permissions": permission})
        token = _object_field(response, "token", "GenerateAPIToken")
        if not isinstance(token.get("token"), str) or not token.get("token"):
            raise FleetProtocolError("GenerateAPIToken: the answer has no token")
        return APIToken.from_dict(token)

    def revoke_api_token(self, token_id: str) -> bool:
        """Revoke an API token by its ID; True if the node revoked it."""
        response = self._rpc("RevokeAPIToken", {"tokenID": token_id})
        return response.get("revoked") is True

    def list_api_tokens(self) -> list[APITokenSummary]:
        """List API tokens (the node shows only their prefixes)."""
        data = self._call("ListAPITokens")
        return [APITokenSummary.from_dict(item) for item in _list_field(data, "tokens", "ListAPITokens")]

    # ------------------------------------------------------------------ shared folders

    def list_shared_folders(self, vm_id: str) -> list[dict[str, Any]]:
        """List a VM's shared folders."""
        return _list_field(self._call("ListSharedFolders", {"vmID": vm_id}), "folders", "ListSharedFolders")

    def add_shared_folder(
        self,
        vm_id: str,
        name: str,
        host_path: str,
        read_only: bool = False,
        mount_tag: str | None = None,
    ) -> bool:
        """Add a VirtioFS shared folder to a VM."""
        payload: dict[str, Any] = {"vmID": vm_id, "name": name, "hostPath": host_path, "readOnly": read_only}
        if mount_tag is not None:
            payload["mountTag"] = mount_tag
        self._call("AddSharedFolder", payload)
        return True

    def remove_shared_folder(self, vm_id: str, name: str) -> bool:
        """Remove a shared folder from a VM."""
        self._call("RemoveSharedFolder", {"vmID": vm_id, "name": name})
        return True

    def set_shared_folder_enabled(self, vm_id: str, name: str, enabled: bool) -> bool:
        """Enable or disable a shared folder."""
        self._call("SetSharedFolderEnabled", {"vmID": vm_id, "name": name, "enabled": enabled})
        return True

    # ------------------------------------------------------------------ fleet utilities

    def unpair(self, node_id: str) -> bool:
        """Unpair a node from the fleet."""
        self._call("Unpair", {"nodeID": node_id})
        return True

    def cleanup_vms(self, force: bool = False) -> int:
        """Remove retired VMs whose TTL has passed (``force`` includes persistent ones); returns the count."""
        response = self._call("CleanupVMs", {"force": force})
        value = response.get("cleanedCount", 0)
        return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0
