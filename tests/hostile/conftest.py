"""Fixtures for the hostile-input tests: the security tests' users, rich fleet and page helpers.

tests/security has no __init__.py (pytest imports its helpers by folder), so its folder is put on
sys.path here to share secdata.py and htmlscan.py rather than copy them.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "security"))

from secdata import make_users  # noqa: E402


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings: Any) -> None:
    # Test users only: PBKDF2's deliberate slowness would dominate these tests' runtime.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture()
def users(db: Any) -> dict[str, Any]:
    return make_users()
