"""Redis for the workers: one connection pool per URL, and the per-node poll lock.

The lock is redis-py's Lock: SET key token NX PX ttl to take it, a compare-and-delete script to
release it, so a lock that expired (a worker died mid-poll) and was taken by another poll is never
released by the first one.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
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
def redis_lock(name: str, *, ttl: float, wait: float = 0.0) -> Iterator[bool]:
    """Hold the lock `name`; yields False when someone else holds it (after waiting `wait` s).

    When Redis cannot be reached the work goes ahead unlocked (yields True): what these locks guard
    is idempotent, and the database's unique constraints keep overlapping runs from duplicating rows.
    """
    lock = redis_connection().lock(
        f"{KEY_PREFIX}:{name}",
        timeout=ttl,
        blocking=wait > 0,
        blocking_timeout=wait if wait > 0 else None,
        sleep=0.05,
    )
    try:
        acquired = bool(lock.acquire())
    except redis.RedisError as exc:
        logger.warning("lock %s unavailable (%s): going ahead without it", name, type(exc).__name__)
        yield True
        return
    try:
        yield acquired
    finally:
        if acquired:
            try:
                lock.release()
            except redis.RedisError:
                # Expired (and maybe taken by another run) or Redis went away: nothing of ours to release.
                pass


def node_poll_lock(node_id: int, *, wait: float = 0.0) -> AbstractContextManager[bool]:
    """The lock that keeps two polls of one node from overlapping (see redis_lock)."""
    return redis_lock(f"poll-lock:{node_id}", ttl=poll_lock_ttl(), wait=wait)
