"""Fixtures shared by every test folder.

`sim_fleet` is a factory: `fleet = sim_fleet(nodes=2, vms_per_node=3)` starts a fleetsim fleet on
ephemeral loopback ports with fast transitions (starting/stopping 0.2 s, tasks 1 s) unless told
otherwise, and stops it after the test.

The test run's own infrastructure (set up here, before any test runs):
- Redis: a database number of its own (15 down to 8, claimed with SET NX so two test runs on one
  machine never share one), flushed at the start. REDIS_URL and the Celery broker point at it.
- Node calls time out fast (connect 1 s, read 2 s) so fault tests stay quick.
- The test database is a file for SQLite (var/test-db-s<N>.sqlite3) and test_<db>_s<N> for
  PostgreSQL, so a real Celery worker in another process (`celery_worker` fixture) sees it.
  Tests that use the worker need committed data: mark them `@pytest.mark.django_db(transaction=True)`.

Users and rows (one copy for every folder; a folder's conftest may override a fixture by name, e.g.
tests/web's `users` with passwords, tests/security's and tests/hostile's own users):
- users / as_role: a user per role ("nobody", "viewer1", "operator1", "admin1"; no passwords) and
  `as_role(role)`: the test client logged out, then force-logged in as that role ("anonymous": logged out).
- make_node / make_vm (node_factory / vm_factory): rows built with the ORM, for page tests (pages never
  call a node).
- sim_node: a fleetsim node (fast transitions and tasks) registered as a Node and polled once, so
  its VMs, images, IPSWs and capacity are in the database as the pollers would leave them.
- run_op: record an Operation with operation_create and run it the way a worker does
  (operation_run: claim, handler over real HTTP to fleetsim, outcome, re-poll).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from django.conf import settings
from fleetsim import SimFleet

BASE_DIR = Path(__file__).resolve().parent.parent
_CLAIM_KEY = "fleetui-test:claim"


def _claim_redis_db() -> tuple[str, int]:
    """A Redis database for this test run alone; (base URL, number)."""
    import redis

    base = os.environ.get("FLEETUI_TEST_REDIS", "redis://127.0.0.1:6379").rstrip("/")
    for number in range(15, 7, -1):
        conn = redis.Redis.from_url(f"{base}/{number}", socket_connect_timeout=1)
        try:
            if not conn.set(_CLAIM_KEY, os.getpid(), nx=True, ex=6 * 3600):
                holder = int(conn.get(_CLAIM_KEY) or 0)
                try:
                    os.kill(holder, 0)
                    continue  # another live test run holds it
                except (ProcessLookupError, ValueError):
                    pass  # its run died: take it over
                except PermissionError:
                    continue
            conn.flushdb()
            conn.set(_CLAIM_KEY, os.getpid(), ex=6 * 3600)
            return base, number
        except redis.RedisError:
            break  # Redis is down: tests that need it fail and say so
    return base, 15


def _release_redis_db(url: str) -> None:
    import redis

    try:
        conn = redis.Redis.from_url(url, socket_connect_timeout=1)
        if conn.get(_CLAIM_KEY) == str(os.getpid()).encode():
            conn.flushdb()
    except redis.RedisError:
        pass


_REDIS_BASE, REDIS_DB = _claim_redis_db()
TEST_REDIS_URL = f"{_REDIS_BASE}/{REDIS_DB}"

# Settings were loaded before this file (pytest-django does it first): patch the loaded ones, and
# export the same as environment variables for the processes tests start (Celery worker, manage.py).
_TEST_ENV = {
    "REDIS_URL": TEST_REDIS_URL,
    "CELERY_BROKER_URL": TEST_REDIS_URL,
    "FLEETUI_NODE_CONNECT_TIMEOUT": "1",
    "FLEETUI_NODE_READ_TIMEOUT": "2",
    "FLEETUI_ALLOW_LOOPBACK_NODES": "1",
    # Alert webhook retries after 0.1 s, 0.2 s, 0.4 s... (tests/alerts).
    "FLEETUI_ALERT_RETRY_BASE_MS": "100",
}
os.environ.update(_TEST_ENV)
settings.REDIS_URL = TEST_REDIS_URL
settings.CELERY_BROKER_URL = TEST_REDIS_URL
settings.CACHES["default"]["LOCATION"] = TEST_REDIS_URL
settings.NODE_CONNECT_TIMEOUT = 1
settings.NODE_READ_TIMEOUT = 2
settings.ALLOW_LOOPBACK_NODES = True
settings.ALERT_RETRY_BASE_MS = 100

# Imported after the settings patch above (app modules may read settings when imported): the Celery app,
# and what the users and rows fixtures at the end build with.
from django.contrib.auth.models import Group, User  # noqa: E402
from django.test import Client  # noqa: E402
from django.utils import timezone  # noqa: E402

from fleetui.activity.models import Operation  # noqa: E402
from fleetui.activity.services import operation_create, operation_run  # noqa: E402
from fleetui.celery import app as celery_app  # noqa: E402
from fleetui.core.crypto import encrypt  # noqa: E402
from fleetui.nodes.models import Node  # noqa: E402
from fleetui.nodes.services import node_poll  # noqa: E402
from fleetui.vms.models import VM  # noqa: E402

celery_app.conf.broker_url = TEST_REDIS_URL


def pytest_unconfigure(config: pytest.Config) -> None:
    _release_redis_db(TEST_REDIS_URL)


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix: None) -> None:
    """A test database other processes can open: a file for SQLite, a per-run name for PostgreSQL."""
    db = settings.DATABASES["default"]
    test = db.setdefault("TEST", {})
    if db["ENGINE"].endswith("sqlite3"):
        path = BASE_DIR / "var" / f"test-db-s{REDIS_DB}.sqlite3"
        path.parent.mkdir(parents=True, exist_ok=True)
        test["NAME"] = str(path)
    else:
        test["NAME"] = f"test_{db['NAME']}_s{REDIS_DB}"


@pytest.fixture(autouse=True)
def _role_groups_present(request: pytest.FixtureRequest) -> None:
    """The role groups come from a data migration; a transactional test's flush deletes them for every
    test after it. Put them back before each database test (one query when they are there)."""
    names = set(request.fixturenames)
    marker = request.node.get_closest_marker("django_db")
    if marker is None and not names & {"db", "transactional_db", "live_server"}:
        return
    transactional = bool(names & {"transactional_db", "live_server"}) or bool(
        marker is not None and (marker.kwargs.get("transaction") or (marker.args and marker.args[0]))
    )
    request.getfixturevalue("transactional_db" if transactional else "db")
    from django.contrib.auth.models import Group

    from fleetui.core.roles import ROLES

    present = set(Group.objects.filter(name__in=ROLES).values_list("name", flat=True))
    for name in ROLES:
        if name not in present:
            Group.objects.get_or_create(name=name)


@pytest.fixture()
def sim_fleet() -> Iterator[Callable[..., SimFleet]]:
    fleets: list[SimFleet] = []

    def make(**kwargs: Any) -> SimFleet:
        options: dict[str, Any] = {"nodes": 3, "vms_per_node": 4, "seed": 1, "transition_seconds": 0.2,
                                   "task_seconds": 1.0}
        options.update(kwargs)
        fleet = SimFleet(**options).start()
        fleets.append(fleet)
        return fleet

    try:
        yield make
    finally:
        for fleet in fleets:
            fleet.stop()


@pytest.fixture()
def register_sim() -> Callable[..., Any]:
    """`register_sim(sim_node, name=None, token=None) -> Node`: register a fleetsim node through the
    real service (it probes the node over HTTP). Needs database access in the test."""
    from fleetui.nodes.services import node_register

    def register(sim_node: Any, *, name: str | None = None, token: str | None = None) -> Any:
        return node_register(name=name or sim_node.name, host=sim_node.host, port=sim_node.port,
                             api_token=token or sim_node.api_token, user=None)

    return register


# ---------------------------------------------------------------- a real Celery worker


def _database_url() -> str:
    """DATABASE_URL of the test database (call after it was created)."""
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


def _subprocess_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(_TEST_ENV)
    env["DATABASE_URL"] = _database_url()
    env["PYTHONPATH"] = os.pathsep.join([str(BASE_DIR), str(BASE_DIR / "sdk"), env.get("PYTHONPATH", "")])
    return env


@pytest.fixture()
def subprocess_env(django_db_setup: None) -> dict[str, str]:
    """Environment for a process a test starts (manage.py, celery): this run's test database and Redis.
    The process sees committed data only: use it from `transaction=True` tests."""
    return _subprocess_env()


@dataclass
class WorkerProcess:
    process: subprocess.Popen
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


@pytest.fixture(scope="session")
def celery_worker(django_db_setup: None, django_db_blocker: Any) -> Iterator[WorkerProcess]:
    """`celery -A fleetui worker -Q polls,actions,alerts -P threads` on the test Redis DB and test database.

    Session-wide: started the first time a test asks for it, stopped at the end of the run (before
    the test database is dropped). Its log is var/test-worker-s<N>.log.
    """
    import redis

    conn = redis.Redis.from_url(TEST_REDIS_URL)
    # Drop what earlier, worker-less tests queued (polls after registration, follow-ups).
    conn.flushdb()
    conn.set(_CLAIM_KEY, os.getpid(), ex=6 * 3600)

    env = _subprocess_env()
    log_path = BASE_DIR / "var" / f"test-worker-s{REDIS_DB}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log = log_path.open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "fleetui", "worker", "-Q", "polls,actions,alerts", "-P", "threads",
         "-c", "4", "--without-heartbeat", "--without-mingle", "--without-gossip", "-l", "INFO",
         "-n", f"test-{os.getpid()}@%h"],
        cwd=BASE_DIR, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    worker = WorkerProcess(process, log_path)
    deadline = time.monotonic() + 30
    while " ready." not in worker.log():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"the Celery worker did not start:\n{worker.log()[-3000:]}")
        time.sleep(0.05)
    try:
        yield worker
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def _wait_for(condition: Callable[[], Any], *, timeout: float = 10.0, interval: float = 0.05,
              message: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:g} s waiting for {message}")
        time.sleep(interval)


@pytest.fixture()
def wait_for() -> Callable[..., Any]:
    """`wait_for(lambda: ..., timeout=10, message="...")`: poll until truthy, fail after the timeout."""
    return _wait_for


# ---------------------------------------------------------------- users and rows

USER_ROLES = ("viewer", "operator", "admin")
ROW_TOKEN = "csk_provisioning_test_token_0123456789"


@pytest.fixture()
def users(db: Any) -> dict[str, User]:
    # No passwords: the tests log in with force_login, and hashing costs a second per user.
    made = {"none": User.objects.create_user("nobody")}
    for role in USER_ROLES:
        user = User.objects.create_user(f"{role}1")
        # get_or_create: a transactional test before this one may have flushed the migration's groups.
        user.groups.add(Group.objects.get_or_create(name=role)[0])
        made[role] = user
    return made


@pytest.fixture()
def as_role(client: Client, users: dict[str, User]) -> Callable[[str], Client]:
    def login(role: str) -> Client:
        client.logout()
        if role != "anonymous":
            client.force_login(users[role])
        return client

    return login


def make_node(name: str = "mac-01", *, read_only: bool = False, **fields: Any) -> Node:
    now = timezone.now()
    values: dict[str, Any] = {
        "name": name, "host": "10.0.0.1", "port": 9473, "api_token_enc": encrypt(ROW_TOKEN),
        "api_token_prefix": ROW_TOKEN[:12],
        "token_permission": Node.Permission.READ_ONLY if read_only else Node.Permission.FULL_ACCESS,
        "role": Node.Role.WORKER, "cpu_cores": 12, "total_memory_gb": 64, "disk_total_gb": 1000.0,
        "last_poll_at": now, "last_success_at": now,
    }
    values.update(fields)
    return Node.objects.create(**values)


def make_vm(node: Node, name: str, state: str = "stopped", **fields: Any) -> VM:
    now = timezone.now()
    values: dict[str, Any] = {
        "node": node, "remote_id": f"{node.name}-{name}", "name": name, "state": state, "cpu_count": 4,
        "memory_mb": 8192, "disk_size_gb": 64, "last_seen_at": now, "changed_at": now,
    }
    values.update(fields)
    return VM.objects.create(**values)


@pytest.fixture()
def node_factory(db: Any) -> Callable[..., Node]:
    return make_node


@pytest.fixture()
def vm_factory(db: Any) -> Callable[..., VM]:
    return make_vm


@dataclass
class SimNodeRow:
    sim: Any  # fleetsim SimNode
    node: Node

    def vm(self, *, state: str | None = None) -> VM:
        qs = VM.objects.filter(node=self.node, gone_at__isnull=True).order_by("name")
        if state:
            qs = qs.filter(state=state)
        vm = qs.first()
        assert vm is not None, f"no {state or ''} VM on {self.node.name}"
        return vm

    def poll(self) -> None:
        outcome = node_poll(node_id=self.node.pk, force=True)
        assert outcome.ok, outcome.error
        self.node.refresh_from_db()


@pytest.fixture()
def sim_node(db: Any, sim_fleet: Callable[..., SimFleet]) -> Iterator[SimNodeRow]:
    fleet = sim_fleet(nodes=1, vms_per_node=3, seed=7, transition_seconds=0.1, task_seconds=0.4)
    sim = fleet.nodes[0]
    node = Node.objects.create(
        name=sim.name, host=sim.host, port=sim.port, api_token_enc=encrypt(sim.api_token),
        api_token_prefix=sim.api_token[:12], token_permission=Node.Permission.FULL_ACCESS, role=sim.role,
        remote_node_id=sim.node_id,
    )
    row = SimNodeRow(sim=sim, node=node)
    row.poll()
    yield row


@pytest.fixture()
def run_op(django_capture_on_commit_callbacks: Any) -> Callable[..., Operation]:
    """run_op(kind, user=..., node=..., vm=..., params=..., secrets=...) -> the finished Operation."""

    def run(kind: str, *, user: Any, node: Node, vm: VM | None = None, params: dict | None = None,
            secrets: dict[str, str] | None = None) -> Operation:
        # Not enqueued: the worker's code path runs here, in this process.
        with django_capture_on_commit_callbacks(execute=False):
            op = operation_create(kind=kind, user=user, node=node, vm=vm, params=params, secrets=secrets)
        assert operation_run(operation_id=str(op.pk)) == "ran"
        op.refresh_from_db()
        return op

    return run
