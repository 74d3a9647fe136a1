"""Redis for the workers: one connection pool per URL, and the per-node poll lock.

The lock is redis-py's Lock: SET key token NX PX ttl to take it, a compare-and-delete script to
release it, so a lock that expired (a worker died mid-poll) and was taken by another poll is never
released by the first one.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache

import redis
from django.conf import settings

logger = logging.getLogger(__name__)

KEY_PREFIX = "fleetui"


@lru_cache(maxsize=4)
def _connection(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=3, health_check_interval=30)


def redis_connection() -> redis.Redis:
    return _connection(settings.REDIS_URL)


def poll_lock_ttl() -> int:
    """Longest a poll may hold its node: every call of a poll timing out, with room to spare."""
    per_call = settings.NODE_CONNECT_TIMEOUT + settings.NODE_READ_TIMEOUT
    return max(30, 10 * per_call)


@contextmanager
def node_poll_lock(node_id: int, *, wait: float = 0.0) -> Iterator[bool]:
    """Hold the node's poll lock; yields False when another poll holds it (after waiting `wait` s).

    When Redis cannot be reached the poll goes ahead unlocked (yields True): polls are idempotent
    and the database's unique constraints keep two overlapping ones from duplicating rows.
    """
    lock = redis_connection().lock(
        f"{KEY_PREFIX}:poll-lock:{node_id}",
        timeout=poll_lock_ttl(),
        blocking=wait > 0,
        blocking_timeout=wait if wait > 0 else None,
        sleep=0.05,
    )
    try:
        acquired = bool(lock.acquire())
    except redis.RedisError as exc:
        logger.warning("poll lock for node %s unavailable (%s): polling without it", node_id, type(exc).__name__)
        yield True
        return
    try:
        yield acquired
    finally:
        if acquired:
            try:
                lock.release()
            except redis.RedisError:
                # Expired (and maybe taken by another poll) or Redis went away: nothing of ours to release.
                pass
