"""Infrastructure these tests may break on purpose: a Redis server of their own (never the machine's
shared one on 6379) and Celery workers of their own, started, SIGKILLed and restarted by the tests.

`private_redis`: redis-server on 127.0.0.1:6390 (or the next free port), no persistence, in var/.
`broker_switch`: points this process (settings.REDIS_URL, the Celery app's broker and its pools) at
that Redis for one test, so what the code under test enqueues goes there and not to the session's
broker, where the shared `celery_worker` might take it.
`start_worker(queues=..., concurrency=...)`: a `celery worker` subprocess on the private Redis and the
test database, in its own process group.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import redis

BASE_DIR = Path(__file__).resolve().parents[2]
PREFERRED_PORT = 6390


def _free_port(preferred: int) -> int:
    for port in [preferred, *range(preferred + 1, preferred + 40)]:
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port for a private redis-server")


@dataclass
class PrivateRedis:
    port: int
    workdir: Path
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url, socket_connect_timeout=1, socket_timeout=2)

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.workdir), "--protected-mode", "yes"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while True:
            try:
                if self.client().ping():
                    return
            except redis.RedisError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"redis-server on {self.port} did not start")
            time.sleep(0.05)

    def stop(self) -> None:
        """Stop it hard (SIGKILL): what a crash or a restarted container looks like to clients."""
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        self.process = None


@pytest.fixture(scope="module")
def private_redis() -> Iterator[PrivateRedis]:
    workdir = BASE_DIR / "var" / "resilience-redis"
    workdir.mkdir(parents=True, exist_ok=True)
    server = PrivateRedis(port=_free_port(PREFERRED_PORT), workdir=workdir)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture()
def broker_switch(
    private_redis: PrivateRedis, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> Iterator[PrivateRedis]:
    from fleetui.celery import app

    def point_at(url: str) -> None:
        app.conf.broker_url = url
        # What Celery itself does after a fork: drop the pools bound to the old broker.
        app._pool = None
        app.amqp._producer_pool = None

    private_redis.client().flushdb()
    old_url = app.conf.broker_url
    settings.REDIS_URL = settings.CELERY_BROKER_URL = private_redis.url
    monkeypatch.setenv("CELERY_BROKER_URL", private_redis.url)  # Celery reads it before its own setting
    point_at(private_redis.url)
    try:
        yield private_redis
    finally:
        point_at(old_url)


def _database_url() -> str:
    from django.db import connections

    db = connections["default"].settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{Path(db['NAME']).resolve()}"
    auth = quote(db.get("USER") or "", safe="")
    if db.get("PASSWORD"):
        auth += ":" + quote(db["PASSWORD"], safe="")
    host = db.get("HOST") or "127.0.0.1"
    port = f":{db['PORT']}" if db.get("PORT") else ""
    return f"postgres://{auth}{'@' if auth else ''}{host}{port}/{quote(db['NAME'], safe='')}"


@dataclass
class Worker:
    name: str
    process: subprocess.Popen
    log_path: Path
    _log: Any = field(repr=False, default=None)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL the worker and everything it started: no cleanup, no acks, no goodbyes."""
        if self.alive():
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.alive():
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()
        if self._log:
            self._log.close()


@pytest.fixture()
def start_worker(private_redis: PrivateRedis) -> Iterator[Callable[..., Worker]]:
    workers: list[Worker] = []

    def start(*, queues: str = "polls,actions", concurrency: int = 2, name: str = "w",
              extra_env: dict[str, str] | None = None) -> Worker:
        env = dict(os.environ)
        env.update({
            "REDIS_URL": private_redis.url,
            "CELERY_BROKER_URL": private_redis.url,
            "DATABASE_URL": _database_url(),
            "PYTHONPATH": os.pathsep.join([str(BASE_DIR), str(BASE_DIR / "sdk"), env.get("PYTHONPATH", "")]),
        })
        env.update(extra_env or {})
        index = len(workers)
        log_path = BASE_DIR / "var" / f"resilience-{os.getpid()}-{name}-{index}.log"
        log = log_path.open("w")
        process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "fleetui", "worker", "-Q", queues, "-P", "threads",
             "-c", str(concurrency), "--without-heartbeat", "--without-mingle", "--without-gossip", "-l", "INFO",
             "-n", f"{name}{index}-{os.getpid()}@%h"],
            cwd=BASE_DIR, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        worker = Worker(name, process, log_path, log)
        workers.append(worker)
        deadline = time.monotonic() + 30
        while " ready." not in worker.log():
            if not worker.alive() or time.monotonic() > deadline:
                worker.kill()
                pytest.fail(f"the Celery worker did not start:\n{worker.log()[-3000:]}")
            time.sleep(0.05)
        return worker

    try:
        yield start
    finally:
        for worker in workers:
            worker.stop()
