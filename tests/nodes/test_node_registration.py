"""Registering, editing and removing nodes: probes over real HTTP against fleetsim."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from fleetsim import SimFleet

from fleetui.core.crypto import decrypt, encrypt
from fleetui.nodes.client import client_for
from fleetui.nodes.models import Node
from fleetui.nodes.services import NodeError, node_register, node_remove, node_update, validate_node_host
from fleetui.vms.models import VM

pytestmark = pytest.mark.django_db


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture()
def not_fleet_server() -> Iterator[int]:
    """A plain HTTP server that is not a Fleet node (answers 404 to everything)."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            self.send_response(404)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            self.wfile.write(b"<h1>Not Found</h1>")

        def log_message(self, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def test_it_registers_a_node_with_its_info_and_an_encrypted_token(fleet: SimFleet) -> None:
    sim = fleet.nodes[1]
    names_before = sorted(v.name for v in sim.state.vms.values())
    node = node_register(name="mac-01", host=sim.host, port=sim.port, api_token=sim.api_token, user=None)

    node.refresh_from_db()
    assert node.name == "mac-01"
    assert node.remote_node_id == sim.node_id
    assert node.hostname == f"{sim.name}.local"
    assert node.machine_model.startswith("Mac")
    assert node.cpu_cores and node.cpu_cores > 0
    assert node.info_at is not None
    assert node.token_permission == Node.Permission.FULL_ACCESS
    assert not node.is_read_only
    assert sim.api_token not in node.api_token_enc
    assert decrypt(node.api_token_enc) == sim.api_token
    assert node.api_token_prefix == sim.api_token[:12]
    # The permission check (a RenameVM of a nonexistent VM) renamed nothing.
    assert sorted(v.name for v in sim.state.vms.values()) == names_before
    assert "RenameVM" in [method for _, method in sim.received]


def test_it_accepts_a_read_only_token_and_marks_the_node_read_only(fleet: SimFleet) -> None:
    sim = fleet.nodes[2]
    names_before = sorted(v.name for v in sim.state.vms.values())

    node = node_register(name="ro", host=sim.host, port=sim.port, api_token=sim.readonly_token, user=None)

    assert node.token_permission == Node.Permission.READ_ONLY
    assert node.is_read_only
    assert sorted(v.name for v in sim.state.vms.values()) == names_before


def test_it_says_connection_refused_when_nothing_listens(db: Any) -> None:
    port = _free_port()
    with pytest.raises(NodeError) as caught:
        node_register(name="gone", host="127.0.0.1", port=port, api_token="csk_" + "a" * 40, user=None)
    assert caught.value.message.startswith("connection refused")
    assert f"127.0.0.1:{port}" in caught.value.message
    assert not Node.objects.exists()


def test_it_says_the_token_was_rejected(fleet: SimFleet) -> None:
    sim = fleet.nodes[0]
    with pytest.raises(NodeError) as caught:
        node_register(name="bad", host=sim.host, port=sim.port, api_token="csk_" + "x" * 40, user=None)
    assert "rejected the token" in caught.value.message
    assert "csk_xxxx" not in caught.value.message
    assert not Node.objects.exists()


def test_it_says_timed_out_when_the_node_hangs(fleet: SimFleet) -> None:
    sim = fleet.nodes[0]
    sim.set_faults("hang")
    with pytest.raises(NodeError) as caught:
        node_register(name="slow", host=sim.host, port=sim.port, api_token=sim.api_token, user=None)
    assert caught.value.message.startswith("timed out")
    assert not Node.objects.exists()


@pytest.mark.parametrize("mode", ["garbage", "wrong_shape"])
def test_it_says_not_a_fleet_node_when_the_answer_is_not_the_fleet_api(fleet: SimFleet, mode: str) -> None:
    sim = fleet.nodes[0]
    sim.set_faults(mode)
    with pytest.raises(NodeError) as caught:
        node_register(name="odd", host=sim.host, port=sim.port, api_token=sim.api_token, user=None)
    assert caught.value.message.startswith("not a Fleet node"), caught.value.message


def test_it_says_not_a_fleet_node_for_another_web_server(db: Any, not_fleet_server: int) -> None:
    with pytest.raises(NodeError) as caught:
        node_register(name="web", host="127.0.0.1", port=not_fleet_server, api_token="csk_" + "a" * 40, user=None)
    assert caught.value.message.startswith("not a Fleet node")
    assert "HTTP 404" in caught.value.message


def test_a_server_error_is_not_called_a_foreign_server(fleet: SimFleet) -> None:
    sim = fleet.nodes[0]
    sim.set_faults("http_500")
    with pytest.raises(NodeError) as caught:
        node_register(name="broken", host=sim.host, port=sim.port, api_token=sim.api_token, user=None)
    assert "HTTP 500" in caught.value.message
    assert "not a Fleet node" not in caught.value.message


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"name": ""}, "name"),
        ({"name": "x" * 101}, "at most 100"),
        ({"name": "a\x00b"}, "control characters"),
        ({"host": "169.254.169.254"}, "metadata"),
        ({"host": "0.0.0.0"}, "unspecified"),
        ({"port": 0}, "port"),
        ({"port": "http"}, "port"),
        ({"api_token": ""}, "API token"),
        ({"api_token": "not-a-token"}, "csk_"),
        ({"api_token": "csk_with space"}, "csk_"),
    ],
)
def test_bad_input_gets_a_clear_message_and_changes_nothing(fleet: SimFleet, kwargs: dict, words: str) -> None:
    sim = fleet.nodes[0]
    args: dict[str, Any] = {"name": "n", "host": sim.host, "port": sim.port, "api_token": sim.api_token,
                            "user": None}
    args.update(kwargs)
    with pytest.raises(NodeError) as caught:
        node_register(**args)
    assert words in caught.value.message
    assert not Node.objects.exists()
    assert not sim.received  # refused before anything was sent


def test_it_refuses_a_second_registration_of_a_name_an_address_or_a_node(
    fleet: SimFleet, register_sim: Callable[..., Node]
) -> None:
    first = register_sim(fleet.nodes[0], name="alpha")
    sim = fleet.nodes[0]
    with pytest.raises(NodeError, match="named ALPHA is already registered"):
        node_register(name="ALPHA", host=fleet.nodes[1].host, port=fleet.nodes[1].port,
                      api_token=fleet.nodes[1].api_token, user=None)
    with pytest.raises(NodeError, match="already registered as alpha"):
        node_register(name="beta", host=sim.host, port=sim.port, api_token=sim.api_token, user=None)
    # The same machine under another address (localhost instead of 127.0.0.1).
    with pytest.raises(NodeError, match="already registered as alpha"):
        node_register(name="gamma", host="localhost", port=sim.port, api_token=sim.api_token, user=None)
    assert list(Node.objects.values_list("pk", flat=True)) == [first.pk]


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("10.0.0.5", "10.0.0.5"),
        (" Mac-Mini-03.Example.COM. ", "mac-mini-03.example.com"),
        ("[2001:db8::1]", "2001:db8::1"),
        ("127.0.0.1", "127.0.0.1"),
        ("localhost", "localhost"),
    ],
)
def test_validate_node_host_normalises_good_hosts(host: str, expected: str) -> None:
    assert validate_node_host(host) == expected


@pytest.mark.parametrize(
    ("host", "words"),
    [
        ("169.254.169.254", "metadata"),
        ("169.254.10.1", "link-local"),
        ("fe80::1", "link-local"),
        ("fd00:ec2::254", "metadata"),
        ("100.100.100.200", "metadata"),
        ("metadata.google.internal", "metadata"),
        ("224.0.0.1", "multicast"),
        ("ff02::1", "multicast"),
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("::ffff:169.254.169.254", "metadata"),
        ("255.255.255.255", "broadcast"),
        ("", "Enter"),
        ("bad host!", "host name"),
        ("a" * 254, "253"),
        ("fe80::1%eth0", "link-local"),
    ],
)
def test_validate_node_host_refuses_what_cannot_be_a_node(host: str, words: str) -> None:
    with pytest.raises(ValidationError) as caught:
        validate_node_host(host)
    assert words in " ".join(caught.value.messages)


def test_loopback_is_refused_unless_allowed(settings: Any) -> None:
    settings.ALLOW_LOOPBACK_NODES = False
    for host in ("127.0.0.1", "::1", "localhost", "api.localhost"):
        with pytest.raises(ValidationError, match="loopback"):
            validate_node_host(host)


def test_edit_keeps_the_stored_token_when_none_is_given(fleet: SimFleet, register_sim: Callable[..., Node]) -> None:
    node = register_sim(fleet.nodes[1])
    stored = node.api_token_enc
    received = len(fleet.nodes[1].received)

    node = node_update(node=node, name="renamed", host=node.host, port=node.port, api_token="", user=None)

    node.refresh_from_db()
    assert node.name == "renamed"
    assert node.api_token_enc == stored
    assert len(fleet.nodes[1].received) == received  # a rename alone does not call the node


def test_edit_with_a_new_token_probes_and_can_make_the_node_read_only(
    fleet: SimFleet, register_sim: Callable[..., Node]
) -> None:
    sim = fleet.nodes[1]
    node = register_sim(sim)
    node = node_update(node=node, name=node.name, host=node.host, port=node.port, api_token=sim.readonly_token,
                       user=None)
    node.refresh_from_db()
    assert node.is_read_only
    assert decrypt(node.api_token_enc) == sim.readonly_token
    assert node.api_token_prefix == sim.readonly_token[:12]


def test_edit_with_a_bad_token_changes_nothing(fleet: SimFleet, register_sim: Callable[..., Node]) -> None:
    node = register_sim(fleet.nodes[1])
    before = Node.objects.values().get(pk=node.pk)
    with pytest.raises(NodeError, match="rejected the token"):
        node_update(node=Node.objects.get(pk=node.pk), name="new-name", host=node.host, port=node.port,
                    api_token="csk_" + "z" * 40, user=None)
    assert Node.objects.values().get(pk=node.pk) == before


def test_edit_of_the_address_with_an_unreadable_token_asks_for_the_token(
    fleet: SimFleet, register_sim: Callable[..., Node]
) -> None:
    node = register_sim(fleet.nodes[1])
    Node.objects.filter(pk=node.pk).update(api_token_enc="gAAAAA-not-decryptable")
    node.refresh_from_db()
    with pytest.raises(NodeError, match="enter the token again"):
        node_update(node=node, name=node.name, host="localhost", port=node.port, api_token=None, user=None)
    # With the token given again it works, and the breaker starts afresh.
    Node.objects.filter(pk=node.pk).update(consecutive_failures=7)
    node.refresh_from_db()
    node = node_update(node=node, name=node.name, host="localhost", port=node.port,
                       api_token=fleet.nodes[1].api_token, user=None)
    assert node.host == "localhost"
    assert node.consecutive_failures == 0
    with client_for(node) as client:
        assert client.get_node_info().node_id == fleet.nodes[1].node_id


def test_pointing_a_node_at_another_machine_forgets_the_old_one(
    fleet: SimFleet, register_sim: Callable[..., Node]
) -> None:
    from fleetui.nodes.services import node_poll

    node = register_sim(fleet.nodes[1])
    assert node_poll(node_id=node.pk).ok
    assert VM.objects.filter(node=node).count() == 4
    other = fleet.nodes[2]
    node = node_update(node=node, name=node.name, host=other.host, port=other.port, api_token=other.api_token,
                       user=None)
    assert node.remote_node_id == other.node_id
    assert not VM.objects.filter(node=node).exists()


def test_remove_deletes_the_node_and_what_was_seen_of_it(
    fleet: SimFleet, register_sim: Callable[..., Node]
) -> None:
    from fleetui.nodes.services import node_poll

    node = register_sim(fleet.nodes[1])
    node_poll(node_id=node.pk)
    node_remove(node=node, user=None)
    assert not Node.objects.exists()
    assert not VM.objects.exists()


def test_client_for_refuses_an_undecryptable_token(fleet: SimFleet, register_sim: Callable[..., Node]) -> None:
    from fleetui.core.crypto import CredentialUnreadable

    node = register_sim(fleet.nodes[1])
    node.api_token_enc = encrypt("x")[:-4] + "AAAA"
    with pytest.raises(CredentialUnreadable):
        client_for(node)
