"""`make run`'s orchestration (fleetui/devrun.py), end to end: real fleetsim, real Redis, real Celery
worker and beat, real web server, each a child process; then Ctrl-C and nothing is left behind.

Every run gets its own var directory, SQLite file and ports (and its own redis-server when one is
installed), so it never touches the developer's var/ or another test's queues.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from fleetsim import SimFleet

ROOT = Path(__file__).resolve().parents[2]
HAVE_REDIS_SERVER = shutil.which("redis-server") is not None


def _free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port_block(count: int, taken: set[int]) -> int:
    """The first of `count` consecutive free ports (not in `taken`)."""
    for _ in range(200):
        first = random.randint(20000, 60000)
        block = range(first, first + count)
        if not taken.intersection(block) and all(_free(p) for p in block):
            taken.update(block)
            return first
    raise RuntimeError("no block of free ports found")


@dataclass
class DevRun:
    proc: subprocess.Popen[bytes]
    var_dir: Path
    web_port: int
    sim_port: int
    redis_url: str
    lines: list[str] = field(default_factory=list)

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_for_line(self, text: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(text in line for line in self.lines):
                return
            if self.proc.poll() is not None:
                time.sleep(0.2)  # let the reader thread catch the last lines
                pytest.fail(f"devrun exited with {self.proc.returncode} before {text!r}:\n{self.output}")
            time.sleep(0.1)
        pytest.fail(f"no {text!r} within {timeout} s:\n{self.output}")

    def interrupt(self, timeout: float = 25) -> int:
        self.proc.send_signal(signal.SIGINT)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"devrun did not stop within {timeout} s of SIGINT:\n{self.output}")


def start_devrun(
    var_dir: Path,
    *,
    env_extra: dict[str, str] | None = None,
    args: tuple[str, ...] = (),
    same_as: DevRun | None = None,
) -> DevRun:
    """Start devrun on free ports (or on those of an earlier run, as a second `make run` would)."""
    taken: set[int] = set()
    web_port = same_as.web_port if same_as else free_port_block(1, taken)
    sim_port = same_as.sim_port if same_as else free_port_block(3, taken)
    env = dict(os.environ)
    env.update(
        {
            "DATABASE_URL": f"sqlite:///{var_dir / 'fleetui.sqlite3'}",
            "NO_COLOR": "1",
            "PYTHONUNBUFFERED": "1",
        }
    )
    if same_as:
        env["REDIS_URL"] = same_as.redis_url
    elif HAVE_REDIS_SERVER:
        # Nothing answers on this port: devrun must start (and later stop) its own redis-server.
        env["REDIS_URL"] = f"redis://127.0.0.1:{free_port_block(1, taken)}/0"
    else:
        # No redis-server to start: the machine's Redis, on a database neither the suite (8-15, see
        # conftest) nor a default `make run` (0) uses; devrun's own claim guards it from another run.
        env["REDIS_URL"] = "redis://127.0.0.1:6379/6"
    env.update(env_extra or {})
    # The suite's conftest points the broker at the suite's own Redis database: devrun's Celery must use
    # the Redis this test gave it, like every other part of the run.
    env["CELERY_BROKER_URL"] = env["REDIS_URL"]
    argv = [
        sys.executable, "-m", "fleetui.devrun",
        "--var-dir", str(var_dir), "--web-port", str(web_port), "--sim-port", str(sim_port),
        "--poll-interval", "1", *args,
    ]  # fmt: skip
    proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)  # fmt: skip
    run = DevRun(proc=proc, var_dir=var_dir, web_port=web_port, sim_port=sim_port, redis_url=env["REDIS_URL"])

    def read() -> None:
        assert proc.stdout is not None
        for raw in proc.stdout:
            run.lines.append(raw.decode("utf-8", "replace").rstrip("\n"))

    threading.Thread(target=read, daemon=True).start()
    return run


@pytest.fixture
def devrun_factory(tmp_path: Path) -> Iterator[list[DevRun]]:
    runs: list[DevRun] = []
    yield runs
    for run in runs:  # a failed test must not leave a fleet running
        if run.proc.poll() is None:
            run.proc.send_signal(signal.SIGINT)
            try:
                run.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                run.proc.kill()


def http_status(url: str) -> int:
    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: object, **kwargs: object) -> None:
            return None

    try:
        with urllib.request.build_opener(NoRedirect).open(url, timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def query(db: Path, sql: str) -> list[tuple]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def live_processes_in_groups(pgids: set[int]) -> list[str]:
    """Processes (not zombies) whose process group is one of `pgids`: the children and all they started."""
    alive = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid pgrp ...; comm may contain spaces, so split after the last ")".
        comm = stat[stat.index("(") + 1 : stat.rindex(")")]
        state, _ppid, pgrp = stat[stat.rindex(")") + 2 :].split()[:3]
        if int(pgrp) in pgids and state != "Z":
            alive.append(f"{entry.name} {comm} ({state})")
    return alive


@pytest.mark.worker
@pytest.mark.timeout(120)
def test_it_starts_everything_polls_stops_every_child_on_ctrl_c_and_a_second_run_reuses_it_all(
    tmp_path: Path, devrun_factory: list
) -> None:
    var_dir = tmp_path / "var"
    run = start_devrun(var_dir)
    devrun_factory.append(run)
    run.wait_for_line("FleetUI is running at", timeout=60)

    # The web server answers: the login page for anyone, a redirect to it for the dashboard.
    base = f"http://127.0.0.1:{run.web_port}"
    assert http_status(f"{base}/accounts/login/") == 200
    assert http_status(f"{base}/") == 302

    # The three simulated nodes are registered, and the Celery worker (fed by beat) keeps polling them.
    db = var_dir / "fleetui.sqlite3"
    nodes = query(db, "SELECT name, host, port, role FROM nodes_node ORDER BY port")
    assert [(host, port) for _, host, port, _ in nodes] == [("127.0.0.1", run.sim_port + i) for i in range(3)]
    before = query(db, "SELECT max(last_success_at) FROM nodes_node")[0][0]
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        polled = query(db, "SELECT count(*), max(last_success_at) FROM nodes_node WHERE last_success_at IS NOT NULL")
        if polled[0][0] == 3 and polled[0][1] != before:
            break
        time.sleep(0.3)
    else:
        pytest.fail(f"no successful poll by the worker within 20 s ({polled}):\n{run.output}")
    assert {role for *_, role in query(db, "SELECT name, role FROM nodes_node")} == {"manager", "worker"}

    # The demo password was generated into var/ (private) and printed, as the banner says.
    password = json.loads((var_dir / "demo-users.json").read_text())["password"]
    assert any(f"password {password}" in line for line in run.lines), run.output
    assert (var_dir / "demo-users.json").stat().st_mode & 0o077 == 0
    users = query(db, "SELECT u.username, g.name FROM auth_user u JOIN auth_user_groups ug ON ug.user_id = u.id "
                      "JOIN auth_group g ON g.id = ug.group_id ORDER BY u.username")  # fmt: skip
    assert users == [("admin", "admin"), ("operator", "operator"), ("viewer", "viewer")]

    pids = json.loads((var_dir / "devrun.pids").read_text())
    children = pids["children"]
    assert {"fleetsim", "worker-polls", "worker-actions", "beat", "web"} <= set(children)
    if HAVE_REDIS_SERVER:
        assert "redis" in children

    assert run.interrupt() == 0, run.output
    assert "stopped" in run.lines[-1]
    time.sleep(0.2)
    assert live_processes_in_groups(set(children.values())) == [], run.output
    assert _free(run.web_port) and all(_free(run.sim_port + i) for i in range(3))
    assert not (var_dir / "devrun.pids").exists()

    # Neither an API token nor a read-only token of the simulated nodes was printed.
    seed = json.loads((var_dir / "devrun.json").read_text())["seed"]
    fleet = SimFleet(nodes=3, seed=seed)
    secrets = [n.api_token for n in fleet.nodes] + [n.readonly_token for n in fleet.nodes]
    assert not [s for s in secrets if s in run.output]

    # A second `make run`: same database, same nodes and stored credentials, nothing registered twice,
    # and the simulated nodes (same seed, same tokens) accept the stored tokens: every node is polled
    # successfully again. Ctrl-C as soon as that is seen, in the middle of the start-up: still nothing left.
    registered = query(db, "SELECT id, name, api_token_enc FROM nodes_node ORDER BY id")
    last_success = dict(query(db, "SELECT id, last_success_at FROM nodes_node"))
    second = start_devrun(var_dir, same_as=run)
    devrun_factory.append(second)
    deadline = time.monotonic() + 45
    while time.monotonic() < deadline and second.proc.poll() is None:
        now = dict(query(db, "SELECT id, last_success_at FROM nodes_node"))
        if all(now[pk] and now[pk] > (last_success[pk] or "") for pk in last_success):
            break
        time.sleep(0.2)
    else:
        pytest.fail(f"the second run did not poll every node successfully:\n{second.output}")
    assert query(db, "SELECT id, name, api_token_enc FROM nodes_node ORDER BY id") == registered
    children = json.loads((var_dir / "devrun.pids").read_text())["children"]
    assert second.interrupt() in (0, 130), second.output
    assert not [line for line in second.lines if "warning:" in line or "error:" in line], second.output
    time.sleep(0.2)
    assert live_processes_in_groups(set(children.values())) == [], second.output


def test_it_says_which_port_is_taken_and_starts_nothing(tmp_path: Path, devrun_factory: list) -> None:
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", 0))
    blocker.listen()
    taken_port = blocker.getsockname()[1]
    try:
        run = start_devrun(tmp_path / "var", args=("--web-port", str(taken_port)))
        devrun_factory.append(run)
        assert run.proc.wait(timeout=20) == 1
    finally:
        blocker.close()
    time.sleep(0.2)
    assert f"port {taken_port} (web)" in run.output and "already in use" in run.output, run.output
    assert not any(line.startswith(("fleetsim", "migrate", "redis")) for line in run.lines), run.output


def test_it_explains_how_to_get_redis_when_none_answers_and_none_is_installed(
    tmp_path: Path, devrun_factory: list
) -> None:
    taken: set[int] = set()
    dead_port = free_port_block(1, taken)
    empty_bin = tmp_path / "bin"
    empty_bin.mkdir()
    run = start_devrun(
        tmp_path / "var",
        env_extra={"REDIS_URL": f"redis://127.0.0.1:{dead_port}/0", "PATH": str(empty_bin)},
    )
    devrun_factory.append(run)
    assert run.proc.wait(timeout=20) == 1
    time.sleep(0.2)
    errors = [line for line in run.lines if "error:" in line]
    assert len(errors) == 1, run.output
    assert f"no Redis answers at redis://127.0.0.1:{dead_port}/0" in errors[0]
    assert "apt-get install redis-server" in errors[0]


def test_it_refuses_a_redis_database_another_live_run_is_using(tmp_path: Path, devrun_factory: list) -> None:
    import redis

    # The suite's own Redis database (conftest), claimed as if by another `make run`: this process.
    url = os.environ["REDIS_URL"]
    conn = redis.Redis.from_url(url)
    other = {"pid": os.getpid(), "host": socket.gethostname(), "var_dir": "/somewhere/else/var"}
    conn.set("fleetui:devrun:owner", json.dumps(other), ex=60)
    try:
        run = start_devrun(tmp_path / "var", env_extra={"REDIS_URL": url})
        devrun_factory.append(run)
        assert run.proc.wait(timeout=20) == 1
        time.sleep(0.2)
        assert json.loads(conn.get("fleetui:devrun:owner")) == other  # left alone
    finally:
        conn.delete("fleetui:devrun:owner")
    errors = [line for line in run.lines if "error:" in line]
    assert len(errors) == 1, run.output
    assert f"another `make run` (pid {os.getpid()}" in errors[0] and "/somewhere/else/var" in errors[0]
    assert "REDIS_URL=redis://127.0.0.1:6379/" in errors[0]
    assert not any(line.startswith(("fleetsim", "migrate")) for line in run.lines), run.output
