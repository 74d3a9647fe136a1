"""The Celery app the benchmark's workers run: FleetUI's own app, unchanged, plus measurement hooks.

    celery -A bench_celery worker ...   (with bench/ on PYTHONPATH)

After every task the worker process adds the rows it wrote (see _writes.py) to the Redis hash
bench:writes and counts the task as done in bench:done:<task name>, in one MULTI, so once the
done count reaches N every write of those N tasks is already counted. worker_ready sets
bench:ready:<hostname>.
"""

from __future__ import annotations

import time
from typing import Any

import redis
from celery.signals import task_failure, task_postrun, worker_process_init, worker_ready
from django.conf import settings

from fleetui.celery import app  # noqa: F401  (the app celery -A finds here)

_counter: Any = None
_redis: redis.Redis | None = None


def _r() -> redis.Redis:
    global _redis
    if _redis is None:
        _redis = redis.Redis.from_url(settings.REDIS_URL)
    return _redis


def _install() -> None:
    global _counter
    from _writes import WriteCounter

    if _counter is None:
        _counter = WriteCounter()
        _counter.install()


@worker_process_init.connect
def _on_process_init(**kwargs: Any) -> None:  # prefork children
    _install()


@worker_ready.connect
def _on_ready(sender: Any = None, **kwargs: Any) -> None:
    _install()
    _r().set(f"bench:ready:{getattr(sender, 'hostname', 'worker')}", str(time.time()), ex=3600)


@task_postrun.connect
def _on_postrun(task: Any = None, state: str | None = None, **kwargs: Any) -> None:
    if _counter is None:
        _install()
    counts = _counter.take()
    pipe = _r().pipeline(transaction=True)
    for key, value in counts.items():
        if value:
            pipe.hincrby("bench:writes", key, value)
    if state != "RETRY":  # a retried task is done only when its last attempt is
        pipe.incr(f"bench:done:{getattr(task, 'name', '?')}")
        if getattr(task, "name", "").endswith(".poll_node"):
            pipe.hincrby("bench:by_worker", str(getattr(getattr(task, "request", None), "hostname", "?")), 1)
        pipe.set("bench:last_done", repr(time.time()))
    pipe.execute()


@task_failure.connect
def _on_failure(sender: Any = None, exception: BaseException | None = None, **kwargs: Any) -> None:
    _r().hincrby("bench:failed", f"{getattr(sender, 'name', '?')} {type(exception).__name__}", 1)
