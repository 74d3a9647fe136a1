"""Secrets an Operation needs once (registry passwords, SSH passwords): never in the database or a
Celery message. Kept in Redis, encrypted with the credential keys, under a short TTL, keyed by the
operation id; the worker takes them (read and delete in one transaction) when it runs the operation.
"""

from __future__ import annotations

import json
from uuid import UUID

from django.views.decorators.debug import sensitive_variables

from fleetui.core.crypto import CredentialUnreadable, decrypt, encrypt
from fleetui.nodes.locks import KEY_PREFIX, redis_connection

# Long enough for a queued action to start; short enough that a forgotten secret is soon gone.
SECRETS_TTL_SECONDS = 15 * 60


def _key(operation_id: UUID | str) -> str:
    return f"{KEY_PREFIX}:op-secrets:{operation_id}"


@sensitive_variables("secrets", "clean")
def secrets_put(operation_id: UUID | str, secrets: dict[str, str], *, ttl: int = SECRETS_TTL_SECONDS) -> None:
    """Store `secrets` for the operation; raises redis.RedisError when Redis cannot be reached."""
    clean = {str(k): str(v) for k, v in secrets.items() if v is not None}
    if not clean:
        return
    redis_connection().set(_key(operation_id), encrypt(json.dumps(clean)), ex=ttl)


@sensitive_variables("raw", "data")
def secrets_take(operation_id: UUID | str) -> dict[str, str] | None:
    """The operation's secrets, deleted from Redis as they are read; None when there are none (any more)."""
    pipe = redis_connection().pipeline(transaction=True)
    pipe.get(_key(operation_id))
    pipe.delete(_key(operation_id))
    raw, _ = pipe.execute()
    if raw is None:
        return None
    try:
        data = json.loads(decrypt(raw.decode() if isinstance(raw, bytes) else raw))
    except (CredentialUnreadable, ValueError):
        return None
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else None


def secrets_discard(operation_id: UUID | str) -> None:
    redis_connection().delete(_key(operation_id))
