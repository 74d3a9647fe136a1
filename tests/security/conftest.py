"""Fixtures for the security tests: users of every role and the ORM-built rich fleet (secdata)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from secdata import RichFleet, make_rich_fleet, make_users


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings: Any) -> None:
    # Test users only: PBKDF2's deliberate slowness would dominate these tests' runtime.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture()
def users(db: Any) -> dict[str, User]:
    return make_users()


@pytest.fixture()
def rich_fleet(users: dict[str, User]) -> RichFleet:
    return make_rich_fleet(users)


@pytest.fixture()
def as_role(users: dict[str, User]) -> Callable[..., Client]:
    """as_role("operator") -> a fresh test client logged in as that role ("anonymous": not logged in)."""

    def login(role: str, **client_kwargs: Any) -> Client:
        client = Client(**client_kwargs)
        if role != "anonymous":
            client.force_login(users[role])
        return client

    return login
