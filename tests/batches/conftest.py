"""Fixtures for the batch tests: a user per role, and a client logged in as one (rows: batchdata.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import Group, User
from django.test import Client


@pytest.fixture()
def users(db: Any) -> dict[str, User]:
    made = {"none": User.objects.create_user("nobody")}
    for role in ("viewer", "operator", "admin"):
        user = User.objects.create_user(f"{role}1")
        user.groups.add(Group.objects.get_or_create(name=role)[0])
        made[role] = user
    return made


@pytest.fixture()
def as_role(client: Client, users: dict[str, User]) -> Callable[[str], Client]:
    def login(role: str) -> Client:
        client.logout()
        if role != "anonymous":
            client.force_login(users[role])
        return client

    return login
