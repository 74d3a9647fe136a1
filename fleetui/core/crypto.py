"""Encryption of stored credentials (API tokens, paired node ids, pairing keys).

MultiFernet over FLEETUI_CREDENTIAL_KEYS: the first key encrypts, every key decrypts, so a new
key can be put first and `manage.py rotate_keys` re-encrypts what was stored under the old ones.
"""

from __future__ import annotations

from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.views.decorators.debug import sensitive_variables


class CredentialUnreadable(Exception):
    """A stored credential can no longer be decrypted with the configured keys."""


@lru_cache(maxsize=4)
def _fernet(keys: tuple[str, ...]) -> MultiFernet:
    if not keys:
        raise ImproperlyConfigured("FLEETUI_CREDENTIAL_KEYS is empty")
    try:
        return MultiFernet([Fernet(k.strip().encode()) for k in keys])
    except (ValueError, TypeError):
        raise ImproperlyConfigured(
            "FLEETUI_CREDENTIAL_KEYS must be comma-separated Fernet keys "
            "(generate one with: python -c 'from cryptography.fernet import Fernet; "
            "print(Fernet.generate_key().decode())')"
        ) from None


def fernet() -> MultiFernet:
    return _fernet(tuple(settings.CREDENTIAL_KEYS))


@sensitive_variables("plaintext")
def encrypt(plaintext: str) -> str:
    if not plaintext:
        return ""
    return fernet().encrypt(plaintext.encode()).decode()


def decrypt(ciphertext: str) -> str:
    if not ciphertext:
        return ""
    try:
        return fernet().decrypt(ciphertext.encode()).decode()
    except (InvalidToken, ValueError):
        raise CredentialUnreadable("stored credential cannot be decrypted with the configured keys") from None


def rotate(ciphertext: str) -> str:
    """Re-encrypt under the first (newest) key."""
    if not ciphertext:
        return ""
    try:
        return fernet().rotate(ciphertext.encode()).decode()
    except (InvalidToken, ValueError):
        raise CredentialUnreadable("stored credential cannot be decrypted with the configured keys") from None
