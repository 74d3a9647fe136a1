"""Is the worker running an Operation still alive? A heartbeat key in Redis says so.

The worker that claimed an Operation refreshes `fleetui:op-alive:<id>` every HEARTBEAT_SECONDS
(expiring after HEARTBEAT_TTL_SECONDS) until the operation is finished. A second delivery of the
same task (Redis gives an unacknowledged task back when a worker loses its connection, or after the
visibility timeout) and the reaper use it to tell "still running elsewhere: leave it alone" from
"its worker died: record it as interrupted". Without it, a duplicate delivery would fail an
operation that is still running and its real outcome would be lost.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from uuid import UUID

import redis

from fleetui.nodes.locks import KEY_PREFIX, redis_connection

logger = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 2.0
HEARTBEAT_TTL_SECONDS = 8


def _key(operation_id: UUID | str) -> str:
    return f"{KEY_PREFIX}:op-alive:{operation_id}"


def _beat(key: str) -> None:
    try:
        redis_connection().set(key, "1", ex=HEARTBEAT_TTL_SECONDS)
    except redis.RedisError:
        pass  # Redis away: operation_alive says "maybe" meanwhile, so nobody fails the operation for it


def heartbeat_claim(operation_id: UUID | str) -> bool:
    """Start the heartbeat before claiming the row, unless one beats already (SET NX); True if this
    call started it. Set before the claim, so there is no moment where the operation is running
    with no heartbeat; a caller that then loses the claim calls heartbeat_drop."""
    try:
        return bool(redis_connection().set(_key(operation_id), "1", ex=HEARTBEAT_TTL_SECONDS, nx=True))
    except redis.RedisError:
        return False


def heartbeat_drop(operation_id: UUID | str) -> None:
    try:
        redis_connection().delete(_key(operation_id))
    except redis.RedisError:
        pass  # it expires by itself


@contextmanager
def operation_heartbeat(operation_id: UUID | str) -> Iterator[None]:
    """Keep the operation's heartbeat alive while the block runs (a daemon thread; dies with the worker)."""
    key = _key(operation_id)
    stop = threading.Event()
    _beat(key)

    def run() -> None:
        while not stop.wait(HEARTBEAT_SECONDS):
            _beat(key)

    thread = threading.Thread(target=run, name=f"op-heartbeat-{operation_id}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=HEARTBEAT_SECONDS)
        heartbeat_drop(operation_id)


def operation_alive(operation_id: UUID | str) -> bool:
    """True when a worker may still be running the operation: its heartbeat is fresh, or Redis cannot
    say (an outage is no proof of death; the reaper looks again later)."""
    try:
        return bool(redis_connection().exists(_key(operation_id)))
    except redis.RedisError:
        logger.warning("cannot tell whether operation %s is still running (Redis unreachable)", operation_id)
        return True
