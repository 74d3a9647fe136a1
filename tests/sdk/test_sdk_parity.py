"""Request parity: ours and the published ciderstack 0.1.1 send the same requests.

Both clients call every method with the same arguments against a recording HTTP
server (real sockets); each call must produce the same path, the same headers that
matter and the same JSON body (fresh request ids and pairing keys normalised), and
the same parsed return value.
"""

from __future__ import annotations

import base64
import dataclasses
import sys
import uuid
from datetime import datetime
from enum import Enum
from typing import Any

import ciderstack
import pytest
from ciderstack import FleetClient

recorder = sys.modules["_fleetui_tests_sdk_recorder"]  # loaded by this folder's conftest.py

TOKEN = "csk_parity_" + "t" * 32
VM_ID = recorder.VM_ID
SNAP = recorder.SNAP_ID
TPL = recorder.TEMPLATE_ID

# (method, args, kwargs): every method of the reference, optional arguments absent and present.
CALLS: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = [
    ("get_node_info", (), {}),
    ("get_node_stats", (), {}),
    ("list_vms", (), {}),
    ("get_vm", (VM_ID,), {}),
    ("get_vm", ("no-such-vm",), {}),
    ("start_vm", (VM_ID,), {}),
    ("stop_vm", (VM_ID,), {}),
    ("suspend_vm", (VM_ID,), {}),
    ("start_vm_recovery", (VM_ID,), {}),
    ("clone_vm", (VM_ID, "my-clone"), {}),
    ("rename_vm", (VM_ID, "new-name"), {}),
    ("delete_vm", (VM_ID,), {}),
    ("create_vm", ("ci-runner-01",), {}),
    ("create_vm", (), {"name": "ci-2", "cpu_count": 8, "memory_mb": 16384, "disk_gb": 128,
                       "oci_image": "ghcr.io/myorg/macos-base:latest"}),
    ("create_vm", ("ci-3",), {"ipsw_path": "/ipsw/15.1.ipsw"}),
    ("create_vm", ("ci-4",), {"ipsw_path": "", "oci_image": ""}),
    ("get_vm_settings", (VM_ID,), {}),
    ("update_vm_settings", (VM_ID,), {}),
    ("update_vm_settings", (VM_ID,), {"cpu_count": 8, "memory_size": 16384}),
    ("update_vm_settings", (VM_ID,), {"display_width": 1920, "display_height": 1080}),
    ("update_vm_settings", (VM_ID,), {"intent": "disposable", "ttl_seconds": 3600}),
    ("update_vm_settings", (VM_ID,), {"ttl_seconds": -1}),
    ("update_vm_settings", (VM_ID, 2, 4096, 800, 600, "ci", 0), {}),
    ("list_snapshots", (VM_ID,), {}),
    ("create_snapshot", (VM_ID, "pre-update"), {}),
    ("create_snapshot", (VM_ID, "pre-update", "Before system update"), {}),
    ("create_snapshot", (VM_ID, "pre-update", ""), {}),
    ("restore_snapshot", (VM_ID, SNAP), {}),
    ("delete_snapshot", (VM_ID, SNAP), {}),
    ("exec_command", (VM_ID, "uname -a"), {}),
    ("exec_command", (VM_ID, "uname -a"), {"ssh_user": "admin", "ssh_password": "pa55word"}),
    ("exec_command", (VM_ID, "xcodebuild"), {"ssh_user": "admin", "timeout": 600}),
    ("exec_command", (VM_ID, "true"), {"ssh_user": "", "ssh_password": ""}),
    ("get_tasks", (), {}),
    ("get_tasks", (), {"include_completed": True}),
    ("push_image", (VM_ID, "ghcr.io/myorg/my-vm:latest"), {}),
    ("push_image", (VM_ID, "registry.local/vm:1"), {"insecure": True}),
    ("list_ipsws", (), {}),
    ("list_oci_images", (), {}),
    ("download_ipsw", ("https://updates.cdn-apple.com/x/restore.ipsw", "macOS 15.1", "15.1"), {}),
    ("get_ipsw_info", ("/path/to/restore.ipsw",), {}),
    ("pull_oci_image", ("ghcr.io/myorg/macos-base:latest",), {}),
    ("pull_oci_image", ("ghcr.io/myorg/private:v1",), {"username": "user", "password": "ghp_secret"}),
    ("pull_oci_image", ("ghcr.io/myorg/private:v1",), {"username": "user"}),
    ("get_fleet_overview", (), {}),
    ("get_fleet_events", (), {}),
    ("get_fleet_events", (), {"limit": 20, "event_type": "vm_started"}),
    ("get_remote_resources", (), {}),
    ("list_templates", (), {}),
    ("get_template", (TPL,), {}),
    ("get_template_by_name", ("CI Runner Base",), {}),
    ("create_template_from_vm", (VM_ID, "Clean macOS 15 Base"), {}),
    ("create_template_from_vm", (), {"vm_id": VM_ID, "name": "T", "description": "Fresh", "category": "base",
                                     "keep_original_vm": False}),
    ("create_template_from_vm", (VM_ID, "T", ""), {}),
    ("delete_template", (TPL,), {}),
    ("generate_api_token", ("ci",), {}),
    ("generate_api_token", ("ci", "readOnly"), {}),
    ("revoke_api_token", ("tok-1",), {}),
    ("list_api_tokens", (), {}),
    ("list_shared_folders", (VM_ID,), {}),
    ("add_shared_folder", (VM_ID, "project-src", "/Users/dev/project"), {}),
    ("add_shared_folder", (), {"vm_id": VM_ID, "name": "p", "host_path": "/p", "read_only": True,
                               "mount_tag": "ptag"}),
    ("remove_shared_folder", (VM_ID, "project-src"), {}),
    ("set_shared_folder_enabled", (VM_ID, "project-src", False), {}),
    ("set_shared_folder_enabled", (VM_ID, "project-src", True), {}),
    ("unpair", (recorder.NODE_ID,), {}),
    ("cleanup_vms", (), {}),
    ("cleanup_vms", (), {"force": True}),
]


def _is_uuid(value: Any) -> bool:
    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return True


def _normalise(body: dict[str, Any]) -> dict[str, Any]:
    body = dict(body)
    if "requestID" in body:
        assert _is_uuid(body["requestID"]), body["requestID"]
        body["requestID"] = "<request-id>"
    return body


def plain(value: Any) -> Any:
    """A comparable form of a return value of either package (enums and dataclasses are per package)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, list):
        return [plain(item) for item in value]
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    return value


def test_every_reference_method_is_covered() -> None:
    public = {name for name in dir(FleetClient) if not name.startswith("_") and callable(getattr(FleetClient, name))}
    assert public - {"pair", "close"} == {call[0] for call in CALLS}


@pytest.mark.parametrize(("method", "args", "kwargs"), CALLS, ids=[f"{c[0]}-{i}" for i, c in enumerate(CALLS)])
def test_it_sends_the_same_request_as_the_published_client(
    recording_server: Any, published: Any, method: str, args: tuple, kwargs: dict
) -> None:
    ours = FleetClient("127.0.0.1", api_token=TOKEN, port=recording_server.port, timeout=5)
    theirs = published.FleetClient("127.0.0.1", api_token=TOKEN, port=recording_server.port, timeout=5)
    with ours:
        our_result = getattr(ours, method)(*args, **kwargs)
    our_requests = recording_server.take()
    their_result = getattr(theirs, method)(*args, **kwargs)
    their_requests = recording_server.take()

    assert len(our_requests) == len(their_requests) == 1
    mine, pub = our_requests[0], their_requests[0]
    assert mine.path == pub.path
    assert mine.headers["Content-Type"] == pub.headers["Content-Type"] == "application/json"
    assert _normalise(mine.body) == _normalise(pub.body)
    assert list(mine.body) == list(pub.body), "same key order"
    assert mine.body["apiToken"] == TOKEN
    assert plain(our_result) == plain(their_result)


@pytest.mark.parametrize("method", ["list_vms", "start_vm", "list_api_tokens", "generate_api_token"])
def test_it_authenticates_with_a_node_id_like_the_published_client(
    recording_server: Any, published: Any, method: str
) -> None:
    args = {"list_vms": (), "start_vm": (VM_ID,), "list_api_tokens": (), "generate_api_token": ("ci",)}[method]
    node_id = str(uuid.uuid4()).upper()
    with FleetClient("127.0.0.1", node_id=node_id, port=recording_server.port) as ours:
        getattr(ours, method)(*args)
    getattr(published.FleetClient("127.0.0.1", node_id=node_id, port=recording_server.port), method)(*args)
    mine, pub = recording_server.take()
    assert mine.body == pub.body
    assert mine.body["callerNodeID"] == node_id and "apiToken" not in mine.body


@pytest.mark.parametrize("name", [None, "my-ci-script"])
def test_pairing_sends_the_same_request_as_the_published_client(
    recording_server: Any, published: Any, name: str | None
) -> None:
    ours = FleetClient.pair("127.0.0.1", "123456", name=name, port=recording_server.port)
    theirs = published.FleetClient.pair("127.0.0.1", "123456", name=name, port=recording_server.port)
    mine, pub = recording_server.take()
    assert mine.path == pub.path == "/rpc/RequestPairing"
    assert "apiToken" not in mine.body and "callerNodeID" not in mine.body
    for body, result in ((mine.body, ours), (pub.body, theirs)):
        assert body["requestID"] == body["requestID"].upper() and _is_uuid(body["requestID"])
        assert body["requesterNodeID"] == {"value": result["node_id"]}
        assert result["node_id"] == result["node_id"].upper() and _is_uuid(result["node_id"])
        point = base64.b64decode(body["publicKey"])
        assert len(point) == 65 and point[0] == 4, "uncompressed P-256 point"
        assert point.hex() == result["public_key_hex"]
        expected_name = name or f"sdk-{result['node_id'][:8].lower()}"
        assert body["requesterName"] == expected_name
    normalised = [
        {k: v for k, v in b.items() if k not in ("requestID", "requesterNodeID", "publicKey", "requesterName")}
        for b in (mine.body, pub.body)
    ]
    assert normalised[0] == normalised[1] == {"requesterIP": "0.0.0.0", "code": "123456"}
    assert list(mine.body) == list(pub.body)
    assert set(ours) == set(theirs)
    assert ours["responder_node_id"] == theirs["responder_node_id"] == recorder.NODE_ID
    assert ours["responder_name"] == theirs["responder_name"] == "mac-01"


def test_pairing_keys_are_a_real_p256_key_pair(recording_server: Any) -> None:
    from cryptography.hazmat.primitives.asymmetric import ec

    creds = FleetClient.pair("127.0.0.1", 123456, port=recording_server.port)
    private = ec.derive_private_key(int(creds["private_key_hex"], 16), ec.SECP256R1())
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    public = private.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
    assert public.hex() == creds["public_key_hex"]
    (request,) = recording_server.take()
    assert request.body["code"] == "123456", "an int code is sent as a string"


def test_exports_match_the_published_package(published: Any) -> None:
    assert ciderstack.__all__ == published.__all__
    for name in ("NodeInfo", "NodeStats", "VM", "Snapshot", "ExecResult", "Task", "Template", "APIToken",
                 "APITokenSummary", "VMState", "TaskStatus", "NodeRole", "APITokenPermissions"):
        ours, theirs = getattr(ciderstack.types, name), getattr(published.types, name)
        if dataclasses.is_dataclass(theirs):
            assert [f.name for f in dataclasses.fields(ours)] == [f.name for f in dataclasses.fields(theirs)]
        else:
            assert [(m.name, m.value) for m in ours] == [(m.name, m.value) for m in theirs]
    for constant in ("DEFAULT_PORT", "DEFAULT_TIMEOUT", "DEFAULT_EXEC_TIMEOUT"):
        assert getattr(FleetClient, constant) == getattr(published.FleetClient, constant)
    assert (FleetClient.DEFAULT_PORT, FleetClient.DEFAULT_TIMEOUT, FleetClient.DEFAULT_EXEC_TIMEOUT) == (9473, 30, 300)


def test_signatures_match_the_published_client(published: Any) -> None:
    import inspect

    for name in dir(published.FleetClient):
        theirs = getattr(published.FleetClient, name)
        if name.startswith("_") or not callable(theirs):
            continue
        our_params = list(inspect.signature(getattr(FleetClient, name)).parameters.values())
        their_params = list(inspect.signature(theirs).parameters.values())
        assert [(p.name, p.default, p.kind) for p in our_params] == [
            (p.name, p.default, p.kind) for p in their_params
        ], name
    ours_init = inspect.signature(FleetClient.__init__).parameters
    theirs_init = inspect.signature(published.FleetClient.__init__).parameters
    positional = [p for p in ours_init.values() if p.kind is not inspect.Parameter.KEYWORD_ONLY]
    assert [(p.name, p.default) for p in positional] == [(p.name, p.default) for p in theirs_init.values()]
    assert {p.name for p in ours_init.values() if p.kind is inspect.Parameter.KEYWORD_ONLY} == {
        "connect_timeout", "max_response_bytes", "session"}
    assert ciderstack.FleetError is ciderstack.errors.FleetError


def test_it_keeps_one_connection_alive_where_the_published_client_opens_one_per_call(
    recording_server: Any, published: Any
) -> None:
    with FleetClient("127.0.0.1", api_token=TOKEN, port=recording_server.port) as ours:
        for _ in range(5):
            ours.list_vms()
    assert len({r.client_port for r in recording_server.take()}) == 1
    theirs = published.FleetClient("127.0.0.1", api_token=TOKEN, port=recording_server.port)
    for _ in range(5):
        theirs.list_vms()
    assert len({r.client_port for r in recording_server.take()}) == 5
