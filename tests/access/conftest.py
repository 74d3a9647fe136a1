"""Fixtures for the access app's tests: a user per role and nodes registered from fleetsim."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import Group, User
from django.test import Client
from support.browser import browser_page, chromium, login_as  # noqa: F401 - test_access_browser.py's

from fleetui.core.crypto import encrypt
from fleetui.nodes.models import Node

ROLES = ("viewer", "operator", "admin")


@pytest.fixture()
def users(db: Any) -> dict[str, User]:
    made = {"none": User.objects.create_user("nobody")}
    for role in ROLES:
        user = User.objects.create_user(f"{role}1")  # no password: no slow hashing; tests log in with force_login
        # get_or_create: a transaction=True test before this one flushed the migration-made groups
        user.groups.add(Group.objects.get_or_create(name=role)[0])
        made[role] = user
    return made


@pytest.fixture()
def as_role(client: Client, users: dict[str, User]) -> Callable[[str], Client]:
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
