"""Fixtures for the fleet app's tests: as_role (users: the root conftest) and nodes registered from fleetsim."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

from fleetui.core.crypto import encrypt
from fleetui.nodes.models import Node


@pytest.fixture()
def as_role(client: Client, users: dict[str, User]) -> Callable[[str], Client]:
    """Not the root conftest's: no logout first, so a second as_role() in a test keeps the first login's
    cookies (messages, CSRF) and session data. `users` is the root conftest's."""
    def login(role: str) -> Client:
        if role != "anonymous":
            client.force_login(users[role])
        return client

    return login


def register_sim_node(sim_node: Any, **overrides: Any) -> Node:
    """A Node row for a fleetsim node, as registration would store it (token encrypted)."""
    fields: dict[str, Any] = {
        "name": sim_node.name,
        "host": sim_node.host,
        "port": sim_node.port,
        "api_token_enc": encrypt(sim_node.api_token),
        "api_token_prefix": sim_node.api_token[:12],
        "token_permission": "fullAccess",
        "role": sim_node.role,
        "remote_node_id": sim_node.node_id,
    }
    fields.update(overrides)
    return Node.objects.create(**fields)


@pytest.fixture()
def register_node(db: Any) -> Callable[..., Node]:
    return register_sim_node
