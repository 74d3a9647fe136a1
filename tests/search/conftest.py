from __future__ import annotations

from typing import Any

import pytest


@pytest.fixture()
def as_role(client: Any, db: Any, settings: Any) -> Any:
    """as_role("viewer") -> the test client logged in with that role ("none": no role, "anonymous")."""
    from django.contrib.auth.models import Group, User

    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

    def login(role: str) -> Any:
        client.logout()
        if role == "anonymous":
            return client
        user, _ = User.objects.get_or_create(username=f"{role}-user")
        if role != "none":
            user.groups.add(Group.objects.get_or_create(name=role)[0])
        client.force_login(user)
        return client

    return login
