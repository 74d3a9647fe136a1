"""Fixtures for the access app's tests: as_role (users: the root conftest) and nodes registered from fleetsim."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from support.browser import browser_page, chromium, login_as  # noqa: F401 - test_access_browser.py's

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


@pytest.fixture(autouse=True)
def _discard_pairing_secrets(db: Any) -> Any:
    """Pairing requests made without a worker leave their (encrypted) code in the shared test Redis
    until its TTL; remove them so other tests' scans of Redis see only their own."""
    yield
    from fleetui.activity.models import Operation
    from fleetui.activity.secrets import secrets_discard

    for op_id in Operation.objects.filter(kind="node.pair").values_list("id", flat=True):
        secrets_discard(op_id)
