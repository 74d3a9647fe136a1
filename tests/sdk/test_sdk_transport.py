"""Transport behaviour of our client against real sockets: error mapping, timeouts, size cap, pooling."""

from __future__ import annotations

import json
import socket
import sys
import time
from collections.abc import Iterator
from typing import Any

import ciderstack
import pytest
import requests
from ciderstack import FleetClient, FleetError
from ciderstack.errors import (
    FleetAuthError,
    FleetNodeError,
    FleetProtocolError,
    FleetTimeoutError,
    FleetUnavailableError,
)

recorder = sys.modules["_fleetui_tests_sdk_recorder"]  # loaded by this folder's conftest.py
Override = recorder.Override
TOKEN = "csk_transport_" + "z" * 30


@pytest.fixture()
def client(recording_server: Any) -> Iterator[FleetClient]:
    with FleetClient("127.0.0.1", api_token=TOKEN, port=recording_server.port, timeout=2) as c:
        yield c


def test_it_requires_exactly_one_credential() -> None:
    with pytest.raises(FleetError, match="required"):
        FleetClient("127.0.0.1")
    with pytest.raises(FleetError, match="not both"):
        FleetClient("127.0.0.1", node_id="n", api_token="csk_x")
    with pytest.raises(FleetError, match="port"):
        FleetClient("127.0.0.1", api_token="csk_x", port=0)


def test_the_error_hierarchy_is_as_contracted() -> None:
    assert issubclass(FleetTimeoutError, FleetUnavailableError)
    for cls in (FleetAuthError, FleetUnavailableError, FleetTimeoutError, FleetNodeError, FleetProtocolError):
        assert issubclass(cls, FleetError)
        assert getattr(ciderstack, cls.__name__) is cls
        assert cls.__name__ not in ciderstack.__all__


def test_it_raises_auth_error_on_403(client: FleetClient, recording_server: Any) -> None:
    recording_server.overrides["ListVMs"] = Override(status=403, body={"error": "Invalid API token"})
    with pytest.raises(FleetAuthError, match="Invalid API token") as caught:
        client.list_vms()
    assert caught.value.response == {"error": "Invalid API token"}


@pytest.mark.parametrize("status", [500, 502, 503, 404])
def test_it_raises_node_error_on_other_statuses(client: FleetClient, recording_server: Any, status: int) -> None:
    recording_server.overrides["StartVM"] = Override(status=status, raw=b"<html>oops</html>")
    with pytest.raises(FleetNodeError, match=f"HTTP {status}") as caught:
        client.start_vm("vm")
    assert caught.value.status_code == status
    assert caught.value.response is None


def test_it_raises_node_error_on_success_false(client: FleetClient, recording_server: Any) -> None:
    recording_server.overrides["StartVM"] = Override(body={"success": False, "error": "VM not found"})
    with pytest.raises(FleetNodeError, match="VM not found") as caught:
        client.start_vm("nope")
    assert caught.value.status_code == 200
    assert caught.value.response == {"success": False, "error": "VM not found"}
    recording_server.overrides["StopVM"] = Override(body={"success": False, "message": "in message"})
    with pytest.raises(FleetNodeError, match="in message"):
        client.stop_vm("nope")


def test_a_missing_success_counts_as_success(client: FleetClient, recording_server: Any) -> None:
    recording_server.overrides["StartVM"] = Override(body={"message": "ok"})
    assert client.start_vm("vm") is True


@pytest.mark.parametrize(
    ("raw", "match"),
    [
        (b"<html>\x00\xff not json", "not JSON"),
        (b"[1, 2, 3]", "not a JSON object"),
        (b'"text"', "not a JSON object"),
        (b"", "empty"),
        (b'{"vms": "oops"}', "'vms' is a str, not a list"),
        (b'{"vms": {"id": 1}}', "not a list"),
    ],
)
def test_it_raises_protocol_error_on_unusable_bodies(
    client: FleetClient, recording_server: Any, raw: bytes, match: str
) -> None:
    recording_server.overrides["ListVMs"] = Override(raw=raw)
    with pytest.raises(FleetProtocolError, match=match):
        client.list_vms()


def test_a_wrong_shaped_object_field_is_a_protocol_error(client: FleetClient, recording_server: Any) -> None:
    recording_server.overrides["CloneVM"] = Override(body={"success": True, "newVM": ["x"]})
    with pytest.raises(FleetProtocolError, match="newVM"):
        client.clone_vm("vm", "c")
    recording_server.overrides["GenerateAPIToken"] = Override(body={"success": True, "token": {"id": "t"}})
    with pytest.raises(FleetProtocolError, match="no token"):
        client.generate_api_token("ci")


def test_it_caps_the_size_of_an_answer_with_a_content_length(recording_server: Any) -> None:
    recording_server.overrides["ListVMs"] = Override(raw=json.dumps({"vms": [], "pad": "x" * 200_000}).encode())
    with FleetClient("127.0.0.1", api_token=TOKEN, port=recording_server.port, max_response_bytes=100_000) as c:
        with pytest.raises(FleetProtocolError, match="exceeds the 100000-byte limit"):
            c.list_vms()
        recording_server.overrides.clear()
        assert len(c.list_vms()) == 2, "the client keeps working after a refused answer"


def test_it_caps_the_size_of_an_answer_without_a_content_length(recording_server: Any) -> None:
    big = json.dumps({"vms": [], "pad": "x" * 300_000}).encode()
    recording_server.overrides["ListVMs"] = Override(raw=big, close_delimited=True)
    with FleetClient("127.0.0.1", api_token=TOKEN, port=recording_server.port, max_response_bytes=100_000) as c:
        with pytest.raises(FleetProtocolError, match="exceeds the 100000-byte limit"):
            c.list_vms()
    recording_server.overrides["ListVMs"] = Override(raw=b'{"vms": []}', close_delimited=True)
    with FleetClient("127.0.0.1", api_token=TOKEN, port=recording_server.port) as c:
        assert c.list_vms() == []


def test_a_read_timeout_is_a_timeout_error(recording_server: Any) -> None:
    recording_server.overrides["ListVMs"] = Override(delay=3.0)
    with FleetClient("127.0.0.1", api_token=TOKEN, port=recording_server.port, timeout=0.2) as c:
        started = time.monotonic()
        with pytest.raises(FleetTimeoutError, match=r"no answer within 0.2 s"):
            c.list_vms()
        assert time.monotonic() - started < 2.0


def test_exec_command_waits_longer_than_the_client_timeout(recording_server: Any) -> None:
    recording_server.overrides["ExecCommand"] = Override(delay=0.5)
    with FleetClient("127.0.0.1", api_token=TOKEN, port=recording_server.port, timeout=0.2) as c:
        result = c.exec_command("vm", "sleep 0.5", timeout=1)
    assert result.success and result.stdout == "Darwin\n"


@pytest.fixture()
def full_backlog() -> Iterator[int]:
    """A listening socket whose accept queue is full, so a further connect hangs (Linux drops the SYN)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    for _ in range(3):
        filler = socket.socket()
        filler.setblocking(False)
        try:
            filler.connect(("127.0.0.1", port))
        except BlockingIOError:
            pass
        fillers.append(filler)
    time.sleep(0.05)
    try:
        yield port
    finally:
        for sock in [*fillers, listener]:
            sock.close()


def test_a_connect_timeout_is_separate_from_the_read_timeout(full_backlog: int) -> None:
    with FleetClient("127.0.0.1", api_token=TOKEN, port=full_backlog, timeout=30, connect_timeout=0.2) as c:
        started = time.monotonic()
        with pytest.raises(FleetTimeoutError, match=r"could not connect within 0.2 s"):
            c.get_node_info()
        assert time.monotonic() - started < 2


def test_a_refused_connection_is_unavailable_not_timeout() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free_port = probe.getsockname()[1]
    with FleetClient("127.0.0.1", api_token=TOKEN, port=free_port) as c:
        with pytest.raises(FleetUnavailableError, match="connection refused") as caught:
            c.list_vms()
    assert not isinstance(caught.value, FleetTimeoutError)


def test_an_unknown_host_is_unavailable() -> None:
    with FleetClient("no-such-node.invalid", api_token=TOKEN, connect_timeout=1) as c:
        with pytest.raises(FleetUnavailableError):
            c.list_vms()


def test_pairing_refused_is_an_auth_error(recording_server: Any) -> None:
    recording_server.overrides["RequestPairing"] = Override(
        body={"accepted": False, "errorMessage": "Invalid pairing code"})
    with pytest.raises(FleetAuthError, match="Invalid pairing code"):
        FleetClient.pair("127.0.0.1", "000000", port=recording_server.port)
    with pytest.raises(FleetError, match="6 digits"):
        FleetClient.pair("127.0.0.1", "12ab", port=recording_server.port)
    assert [r.method for r in recording_server.take()] == ["RequestPairing"]


def test_close_and_context_manager(recording_server: Any) -> None:
    own = FleetClient("127.0.0.1", api_token=TOKEN, port=recording_server.port)
    with own as entered:
        assert entered is own
        entered.list_vms()
        pool = own._session.get_adapter("http://x").poolmanager
        assert len(pool.pools) == 1
    assert len(pool.pools) == 0, "close() dropped the pooled connections"

    shared = requests.Session()
    with FleetClient("127.0.0.1", api_token=TOKEN, port=recording_server.port, session=shared) as c:
        c.list_vms()
    assert len(shared.get_adapter("http://x").poolmanager.pools) == 1, "a caller's session is left open"
    shared.close()


def test_get_template_is_none_when_absent(client: FleetClient, recording_server: Any) -> None:
    recording_server.overrides["GetTemplate"] = Override(body={"success": True})
    assert client.get_template("t") is None
    recording_server.overrides["GetTemplate"] = Override(body={"success": False, "error": "Template not found"})
    assert client.get_template_by_name("t") is None


def test_exec_refused_by_the_node_comes_back_as_a_failed_result(client: FleetClient, recording_server: Any) -> None:
    recording_server.overrides["ExecCommand"] = Override(body={"success": False, "error": "VM is not running"})
    result = client.exec_command("vm", "uname")
    assert (result.success, result.exit_code, result.stderr) == (False, -1, "VM is not running")
