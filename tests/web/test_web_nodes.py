"""Node admin pages against real fleetsim nodes: register, edit, remove. The token is never shown."""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from fleetui.core.crypto import decrypt
from fleetui.nodes.models import Node


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture()
def sim(sim_fleet: Callable[..., Any]) -> Any:
    return sim_fleet(nodes=2, vms_per_node=2)


def test_it_registers_a_node_after_asking_it(as_role: Callable[[str], Client], sim: Any) -> None:
    client = as_role("admin")
    node = sim.nodes[0]
    form = client.get(reverse("node-add"))
    assert form.status_code == 200 and b'type="password"' in form.content
    response = client.post(reverse("node-add"), {"name": "mac-a", "host": node.host, "port": node.port,
                                                 "api_token": node.api_token}, follow=True)
    registered = Node.objects.get(name="mac-a")
    assert response.redirect_chain[-1][0] == reverse("node-detail", args=[registered.pk])
    assert b"Node mac-a registered." in response.content
    assert decrypt(registered.api_token_enc) == node.api_token and not registered.is_read_only
    assert registered.remote_node_id == node.node_id
    for url in [reverse("node-detail", args=[registered.pk]), reverse("node-edit", args=[registered.pk]),
                reverse("node-list"), reverse("fleet-overview")]:
        assert node.api_token.encode() not in client.get(url).content, url


def test_it_marks_a_read_only_token(as_role: Callable[[str], Client], sim: Any) -> None:
    node = sim.nodes[1]
    response = as_role("admin").post(reverse("node-add"), {"name": "mac-ro", "host": node.host, "port": node.port,
                                                           "api_token": node.readonly_token}, follow=True)
    assert b"read-only" in response.content
    assert Node.objects.get(name="mac-ro").is_read_only


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "This field is required."),
        ({"name": "n", "host": "169.254.169.254", "port": 9473, "api_token": "csk_abcdefgh"}, "not a node"),
        ({"name": "n", "host": "224.0.0.1", "port": 9473, "api_token": "csk_abcdefgh"}, "not a node"),
        ({"name": "n", "host": "10.0.0.9", "port": 70000, "api_token": "csk_abcdefgh"}, "less than or equal"),
        ({"name": "n\x00", "host": "10.0.0.9", "port": 9473, "api_token": "csk_abcdefgh"}, "control"),
        ({"name": "n", "host": "10.0.0.9", "port": 9473, "api_token": "qz7x"}, "does not look like"),
    ],
)
def test_it_rerenders_a_bad_registration(as_role: Callable[[str], Client], db: Any, body: dict,
                                         message: str) -> None:
    response = as_role("admin").post(reverse("node-add"), body)
    assert response.status_code == 200
    assert message in response.content.decode()
    assert Node.objects.count() == 0
    if body.get("api_token"):
        assert body["api_token"].encode() not in response.content  # never rendered back


def test_it_says_in_plain_words_why_a_node_cannot_be_reached(as_role: Callable[[str], Client], sim: Any) -> None:
    client = as_role("admin")
    refused = client.post(reverse("node-add"), {"name": "gone", "host": "127.0.0.1", "port": _closed_port(),
                                                "api_token": "csk_whatever_123"})
    assert refused.status_code == 200 and b"Could not register the node:" in refused.content
    assert b"refused" in refused.content.lower()
    node = sim.nodes[0]
    rejected = client.post(reverse("node-add"), {"name": "bad-token", "host": node.host, "port": node.port,
                                                 "api_token": "csk_not_the_right_token"})
    assert rejected.status_code == 200 and b"Could not register the node:" in rejected.content
    assert b"csk_not_the_right_token" not in rejected.content
    assert Node.objects.count() == 0


def test_it_edits_a_node_and_keeps_the_token_when_left_empty(as_role: Callable[[str], Client], sim: Any) -> None:
    client = as_role("admin")
    node = sim.nodes[0]
    client.post(reverse("node-add"), {"name": "mac-a", "host": node.host, "port": node.port,
                                      "api_token": node.api_token})
    registered = Node.objects.get()
    stored = registered.api_token_enc
    page = client.get(reverse("node-edit", args=[registered.pk]))
    assert page.status_code == 200 and node.api_token.encode() not in page.content
    assert b'name="api_token"' in page.content and b'value="csk' not in page.content
    response = client.post(reverse("node-edit", args=[registered.pk]),
                           {"name": "mac-renamed", "host": node.host, "port": node.port, "api_token": ""})
    assert response.status_code == 302
    registered.refresh_from_db()
    assert registered.name == "mac-renamed" and registered.api_token_enc == stored
    bad = client.post(reverse("node-edit", args=[registered.pk]),
                      {"name": "mac-renamed", "host": node.host, "port": node.port, "api_token": "csk_wrong_token"})
    assert bad.status_code == 200 and b"Could not save the node:" in bad.content
    registered.refresh_from_db()
    assert decrypt(registered.api_token_enc) == node.api_token


def test_it_removes_a_node_after_confirmation(as_role: Callable[[str], Client], fleet: Any) -> None:
    client = as_role("admin")
    node = fleet.nodes[1]
    confirm = client.get(reverse("node-remove", args=[node.pk]))
    assert confirm.status_code == 200 and b"Remove node" in confirm.content
    assert Node.objects.filter(pk=node.pk).exists()
    response = client.post(reverse("node-remove", args=[node.pk]), follow=True)
    assert response.redirect_chain[-1][0] == reverse("node-list")
    assert not Node.objects.filter(pk=node.pk).exists()


def test_it_shows_node_pages(as_role: Callable[[str], Client], fleet: Any, node_factory: Any) -> None:
    node_factory("down-node", online=False)
    client = as_role("viewer")
    listing = client.get(reverse("node-list")).content.decode()
    assert "mac-01" in listing and "Offline" in listing and "connection refused" in listing
    assert reverse("node-add") not in listing  # viewers get no admin links
    detail = client.get(reverse("node-detail", args=[fleet.nodes[0].pk])).content.decode()
    for text in ["build-running", "Pull ghcr.io/acme/base:15", 'value="42"', "ghcr.io/acme/base:15",
                 "<polyline", "Needs the operator role."]:
        assert text in detail, text
    partial = client.get(reverse("node-detail", args=[fleet.nodes[0].pk]), headers={"HX-Request": "true"})
    assert b'id="node-live"' in partial.content and b"<html" not in partial.content
    response = client.get(reverse("fleet-overview"))
    totals = response.context["totals"]
    assert (totals.nodes_online, totals.nodes_total, totals.vms_running, totals.vms_total) == (2, 3, 1, 4)
    overview = response.content.decode()
    assert 'data-health="offline"' in overview and 'data-health="online"' in overview
