"""The Django admin for nodes shows no credential, and cannot add a node around the probe."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse
from fleetsim import SimFleet

from fleetui.nodes.models import Node

pytestmark = pytest.mark.django_db


@pytest.fixture()
def admin_client_fast(db: Any) -> Client:
    user = User.objects.create(username="root", is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(user)
    return client


def test_node_admin_never_shows_the_token(
    admin_client_fast: Client, fleet: SimFleet, register_sim: Callable[..., Node]
) -> None:
    sim = fleet.nodes[1]
    node = register_sim(sim)
    for url in (reverse("admin:nodes_node_changelist"), reverse("admin:nodes_node_change", args=[node.pk])):
        page = admin_client_fast.get(url).content.decode()
        assert node.name in page
        assert sim.api_token not in page
        assert node.api_token_enc not in page
        assert "api_token_enc" not in page and "paired_node_id_enc" not in page
    assert admin_client_fast.get(reverse("admin:nodes_node_add")).status_code == 403


def test_node_admin_can_rename_but_not_rewrite_what_was_seen(
    admin_client_fast: Client, fleet: SimFleet, register_sim: Callable[..., Node]
) -> None:
    node = register_sim(fleet.nodes[1])
    url = reverse("admin:nodes_node_change", args=[node.pk])
    response = admin_client_fast.post(url, {"name": "renamed", "host": "10.9.9.9", "api_token_enc": "x"})
    assert response.status_code == 302
    node.refresh_from_db()
    assert node.name == "renamed" and node.host == fleet.nodes[1].host
    assert node.api_token_enc != "x"
