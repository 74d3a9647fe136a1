"""Can the task queue (Redis, the Celery broker) be reached? A cheap PING, remembered for a few
seconds per process: pages show a warning while it is down, and actions are refused at once with
a clear message instead of being recorded and then failing."""

from __future__ import annotations

import threading
import time
from functools import lru_cache

import redis

# How long a page trusts the last answer; a down broker costs one failed connect per this period.
CHECK_SECONDS = 5.0

_last: dict[str, tuple[float, bool]] = {}
_lock = threading.Lock()


@lru_cache(maxsize=4)
def _client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=0.5)


def broker_url() -> str:
    from fleetui.celery import app

    # Celery's own resolution (the CELERY_BROKER_URL environment variable wins over the setting).
    return str(app.conf.broker_url or "")


def broker_reachable(*, max_age: float = CHECK_SECONDS) -> bool:
    """True when the broker answers PING (or is not Redis, which this cannot check)."""
    url = broker_url()
    if not url.startswith(("redis://", "rediss://", "unix://")):
        return True
    now = time.monotonic()
    with _lock:
        seen = _last.get(url)
    if seen is not None and now - seen[0] < max_age:
        return seen[1]
    try:
        ok = bool(_client(url).ping())
    except (redis.RedisError, OSError, ValueError):
        ok = False
    with _lock:
        _last[url] = (time.monotonic(), ok)
    return ok


def broker_down() -> bool:
    """For templates (called lazily, only by the pages that show the banner)."""
    return not broker_reachable()
