"""`make run`: the whole system on one machine, for a demo or for development.

Starts, as child processes with a prefix on every line they print:
  redis     a local redis-server, only when nothing answers at REDIS_URL (no persistence)
  fleetsim  three simulated Fleet nodes (a manager and two workers)
  worker-polls    a Celery worker on the queues "polls" and "alerts"
  worker-actions  a Celery worker on the queue "actions" (long commands never starve polls)
  beat      Celery beat (its schedule file lives in the var directory)
  web       Django's server at http://127.0.0.1:8000 (or gunicorn with --server gunicorn)
after migrating the database, registering the simulated nodes not yet registered (`addnode
--if-missing`, the API token on stdin, never on a command line), making sure the demo users exist
and polling every node once. Ctrl-C (or SIGTERM) stops every child: SIGTERM first, SIGKILL for
whatever is still there after a grace period; on Linux the children also die if devrun is killed.

State kept in the var directory (default var/, or --var-dir / FLEETUI_VAR_DIR):
  devrun.json      fleetsim's seed, generated once: the same seed gives the same tokens, so the nodes
                   registered by the first run keep working
  demo-users.json  the demo users' password, generated once and printed at every start
  devrun.pids      the children of the running devrun (removed when it stops)
The run claims the Redis database its Celery uses (a key with a short TTL): a second run on the
same database is refused, because two runs there would take each other's tasks.
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import hashlib
import json
import os
import secrets
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from urllib.parse import urlparse

BASE_DIR = Path(__file__).resolve().parent.parent
MANAGE = str(BASE_DIR / "manage.py")

DEMO_USERS = (
    ("admin", "registers nodes, manages credentials and users"),
    ("operator", "acts on VMs, snapshots and images"),
    ("viewer", "reads everything"),
)
SIM_NODES = 3
STOP_GRACE_SECONDS = 10.0
STARTUP_TIMEOUT_SECONDS = 60.0
LINE_LIMIT = 64 * 1024


class StartupError(Exception):
    """Something the user can fix stopped the start; the message says what, in one line."""


class Interrupted(Exception):
    """Ctrl-C or SIGTERM arrived while starting."""


# --- a child process whose output we stream with a prefix -----------------------------------------

_PR_SET_PDEATHSIG = 1
_LIBC = None
if sys.platform.startswith("linux"):
    try:
        _LIBC = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    except OSError:  # pragma: no cover - no libc to load: children just outlive a SIGKILLed devrun
        _LIBC = None


def _die_with_parent() -> None:
    """Runs in the child between fork and exec: if devrun is SIGKILLed, the kernel TERMs the child.

    Only an async-signal-safe syscall here (libc was loaded before the fork)."""
    if _LIBC is not None:
        _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


@dataclass
class Child:
    name: str
    proc: subprocess.Popen[bytes]
    # Signal the whole process group (the server's own children too) rather than the main process.
    signal_group: bool = False
    # Called with each line instead of printing it; returns the text to print, or None to print nothing.
    filter_line: Callable[[str], str | None] | None = None
    buffer: bytes = b""
    open: bool = True
    captured: list[str] = field(default_factory=list)


class Supervisor:
    """Spawns children, pumps their output through one selector, stops them all on the way out."""

    def __init__(self, env: dict[str, str], *, color: bool) -> None:
        self.env = env
        self.color = color
        self.children: list[Child] = []
        self.selector = selectors.DefaultSelector()
        self.stop_requested = False
        self.kill_requested = False
        self.on_spawn: Callable[[], None] | None = None
        self.on_tick: Callable[[], None] | None = None
        self._width = 8

    # signals -------------------------------------------------------------------------------------
    def install_signal_handlers(self) -> None:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, self._on_signal)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if self.stop_requested:
            self.kill_requested = True  # a second Ctrl-C: stop waiting for a graceful exit
        self.stop_requested = True

    # output ----------------------------------------------------------------------------------------
    _COLORS = ("36", "33", "35", "32", "34", "31", "96", "93")

    def say(self, name: str, text: str) -> None:
        prefix = f"{name:<{self._width}}|"
        if self.color:
            color = self._COLORS[sum(map(ord, name)) % len(self._COLORS)]
            prefix = f"\033[{color}m{prefix}\033[0m"
        try:
            sys.stdout.write(f"{prefix} {text}\n")
            sys.stdout.flush()
        except BrokenPipeError:  # our own output went away (e.g. piped into `head`): keep supervising
            pass

    # children --------------------------------------------------------------------------------------
    def spawn(
        self,
        name: str,
        argv: Sequence[str],
        *,
        stdin_data: bytes | None = None,
        signal_group: bool = False,
        filter_line: Callable[[str], str | None] | None = None,
        extra_env: dict[str, str] | None = None,
    ) -> Child:
        env = dict(self.env)
        if extra_env:
            env.update(extra_env)
        proc = subprocess.Popen(
            list(argv),
            cwd=BASE_DIR,
            env=env,
            stdin=subprocess.PIPE if stdin_data is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches devrun only; devrun stops the children in order
            preexec_fn=_die_with_parent,
        )
        if stdin_data is not None and proc.stdin is not None:
            try:
                proc.stdin.write(stdin_data)
                proc.stdin.close()
            except BrokenPipeError:
                pass
        assert proc.stdout is not None
        os.set_blocking(proc.stdout.fileno(), False)
        child = Child(name=name, proc=proc, signal_group=signal_group, filter_line=filter_line)
        self.selector.register(proc.stdout, selectors.EVENT_READ, child)
        self.children.append(child)
        if self.on_spawn:
            self.on_spawn()
        return child

    def pump(self, timeout: float) -> None:
        """Forward whatever the children printed, waiting at most `timeout` seconds for some."""
        if self.on_tick:
            self.on_tick()
        if not self.selector.get_map():
            time.sleep(timeout)
            return
        for key, _ in self.selector.select(timeout):
            child: Child = key.data
            try:
                chunk = os.read(key.fd, 65536)
            except BlockingIOError:
                continue
            except OSError:
                chunk = b""
            if not chunk:
                self._close(child)
                continue
            child.buffer += chunk
            *lines, child.buffer = child.buffer.split(b"\n")
            if len(child.buffer) > LINE_LIMIT:  # a line without end: print what we have
                lines.append(child.buffer)
                child.buffer = b""
            for raw in lines:
                self._line(child, raw.decode("utf-8", "replace").rstrip("\r"))

    def _line(self, child: Child, text: str) -> None:
        child.captured.append(text)
        del child.captured[:-50]
        shown = child.filter_line(text) if child.filter_line else text
        if shown is not None:
            self.say(child.name, shown)

    def _close(self, child: Child) -> None:
        if child.open:
            child.open = False
            if child.buffer:
                self._line(child, child.buffer.decode("utf-8", "replace"))
                child.buffer = b""
            self.selector.unregister(child.proc.stdout)
            assert child.proc.stdout is not None
            child.proc.stdout.close()

    def drain(self, child: Child, timeout: float = 2.0) -> None:
        deadline = time.monotonic() + timeout
        while child.open and time.monotonic() < deadline:
            self.pump(0.05)

    def wait_for(self, child: Child) -> int:
        """Keep every child's output moving until `child` exits; its exit status."""
        while child.proc.poll() is None:
            self.check_interrupt()
            self.pump(0.1)
        self.drain(child)
        self.children.remove(child)
        return child.proc.returncode

    def check_interrupt(self) -> None:
        if self.stop_requested:
            raise Interrupted

    def exited(self) -> list[Child]:
        return [c for c in self.children if c.proc.poll() is not None]

    # stopping --------------------------------------------------------------------------------------
    def _send(self, child: Child, sig: int) -> None:
        try:
            if child.signal_group:
                os.killpg(child.proc.pid, sig)
            else:
                child.proc.send_signal(sig)
        except (ProcessLookupError, PermissionError):
            pass

    def stop_all(self, grace: float = STOP_GRACE_SECONDS) -> list[str]:
        """Stop the children, newest first; returns the names of those that had to be killed."""
        running = [c for c in reversed(self.children) if c.proc.poll() is None]
        if running:
            self.say("devrun", "stopping " + ", ".join(c.name for c in running) + " ...")
        for child in running:
            self._send(child, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while any(c.proc.poll() is None for c in running) and time.monotonic() < deadline:
            if self.kill_requested:
                break
            self.pump(0.1)
        killed = []
        for child in reversed(self.children):
            if child.proc.poll() is None:
                killed.append(child.name)
            # Kill the whole group: what a child started (pool processes, the server's reloader
            # child) must not outlive it, even when the child itself exited cleanly.
            try:
                os.killpg(child.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        for child in self.children:
            try:
                child.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:  # pragma: no cover - SIGKILL cannot be ignored
                pass
            self.drain(child, 0.5)
        return killed


# --- pieces of the start-up ------------------------------------------------------------------------


def _port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # SO_REUSEADDR: a port left in TIME_WAIT by the previous run is free; a listening one is not.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def check_ports(host: str, ports: dict[str, int]) -> None:
    busy = [f"{port} ({what})" for what, port in ports.items() if not _port_free(host, port)]
    if busy:
        raise StartupError(
            f"port {', '.join(busy)} on {host} already in use (another `make run`?): stop what uses it, "
            "or pick other ports, e.g. `make run RUN_ARGS='--web-port 8001 --sim-port 19473'`"
        )


def redis_answers(url: str) -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1).ping())
    except (redis.RedisError, OSError, ValueError):
        return False


def _pid_alive(pid: object) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class BrokerClaim:
    """This run's claim on the Redis database its Celery uses.

    Two runs on one database would take each other's tasks: a worker would poll node 3 of the other
    run's database in its own, or never see an operation the other run's page is waiting for. The
    claim is a key with a short TTL, refreshed while the run lives, so a killed run frees it by itself.
    """

    KEY = "fleetui:devrun:owner"
    TTL_SECONDS = 30
    REFRESH_SECONDS = 10.0

    def __init__(self, url: str, var_dir: Path) -> None:
        import redis

        self.url = url
        self.errors = (redis.RedisError, OSError)
        self.conn = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)
        self.value = json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "var_dir": str(var_dir)})
        self.refreshed = 0.0

    def acquire(self) -> None:
        if self.conn.set(self.KEY, self.value, nx=True, ex=self.TTL_SECONDS):
            self.refreshed = time.monotonic()
            return
        raw = self.conn.get(self.KEY) or b"{}"
        try:
            other = json.loads(raw)
        except ValueError:
            other = {}
        if not isinstance(other, dict):
            other = {}
        if other.get("host") == socket.gethostname() and not _pid_alive(other.get("pid")):
            self.conn.set(self.KEY, self.value, ex=self.TTL_SECONDS)  # its run died without letting go
            self.refreshed = time.monotonic()
            return
        parsed = urlparse(self.url)
        db = parsed.path.strip("/") or "0"
        other_db = "1" if db != "1" else "2"
        suggestion = _redacted(parsed._replace(path=f"/{other_db}").geturl())
        raise StartupError(
            f"another `make run` (pid {other.get('pid')} on {other.get('host')}, var dir {other.get('var_dir')}) "
            f"uses the Redis database at {_redacted(self.url)}, and two runs on one database take each other's "
            f"Celery tasks: stop it, or give this run a database of its own, e.g. REDIS_URL={suggestion}"
        )

    def refresh(self) -> None:
        if time.monotonic() - self.refreshed < self.REFRESH_SECONDS:
            return
        self.refreshed = time.monotonic()
        try:
            if self.conn.get(self.KEY) == self.value.encode():
                self.conn.expire(self.KEY, self.TTL_SECONDS)
            else:  # expired while Redis was away: take it again if it is free
                self.conn.set(self.KEY, self.value, nx=True, ex=self.TTL_SECONDS)
        except self.errors:
            pass  # Redis is away for a moment; the workers will say so

    def release(self) -> None:
        try:
            if self.conn.get(self.KEY) == self.value.encode():
                self.conn.delete(self.KEY)
        except self.errors:
            pass


def load_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def save_json(path: Path, data: dict) -> None:
    """Write a private file atomically (0600: it may hold demo passwords)."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(data, handle, indent=2)
        handle.write("\n")
    os.replace(tmp, path)


def demo_password(var_dir: Path) -> str:
    """The demo users' password (one for all three), generated once and kept in <var>/demo-users.json."""
    path = var_dir / "demo-users.json"
    data = load_json(path)
    password = data.get("password")
    if not isinstance(password, str) or len(password) < 8:
        password = f"demo-{secrets.token_urlsafe(9)}"
        save_json(path, {"users": [u for u, _ in DEMO_USERS], "password": password})
    return password


def devrun_state(var_dir: Path) -> dict:
    """<var>/devrun.json: the fleetsim seed (so its tokens are the same every run)."""
    path = var_dir / "devrun.json"
    data = load_json(path)
    if not isinstance(data.get("seed"), int):
        data["seed"] = secrets.randbelow(2**31 - 1) + 1
        save_json(path, data)
    return data


def token_fingerprint(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()[:16]


def wait_for_http(sup: Supervisor, url: str, *, timeout: float, watch: list[Child]) -> int:
    """Poll `url` until it answers; returns the HTTP status. Raises StartupError on timeout/crash."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        sup.check_interrupt()
        for child in watch:
            if child.proc.poll() is not None:
                raise StartupError(f"{child.name} exited with status {child.proc.returncode} while starting")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - our own local server
                return response.status
        except urllib.error.HTTPError as exc:
            return exc.code
        except (urllib.error.URLError, OSError):
            sup.pump(0.25)
    raise StartupError(f"{url} did not answer within {timeout:.0f} s")


# --- the whole run ---------------------------------------------------------------------------------


@dataclass
class Options:
    host: str
    web_port: int
    sim_port: int
    var_dir: Path
    redis_url: str
    poll_interval: int | None
    server: str


def _env_port(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit():
        raise SystemExit(f"devrun: {name} must be a port number, got {raw!r}")
    return int(raw)


def parse_args(argv: Sequence[str] | None) -> Options:
    env = os.environ
    parser = argparse.ArgumentParser(prog="python -m fleetui.devrun", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--web-port",
        type=int,
        default=_env_port("FLEETUI_WEB_PORT", 8000),
        help="port of the web server (env FLEETUI_WEB_PORT, default 8000)",
    )
    parser.add_argument(
        "--sim-port",
        type=int,
        default=_env_port("FLEETUI_SIM_PORT", 9473),
        help="port of the first simulated node; node i listens on port+i (env FLEETUI_SIM_PORT, default 9473)",
    )
    parser.add_argument(
        "--var-dir",
        default=env.get("FLEETUI_VAR_DIR", str(BASE_DIR / "var")),
        help="where the database, generated keys, demo passwords and beat schedule live (env FLEETUI_VAR_DIR)",
    )
    parser.add_argument(
        "--poll-interval",
        type=int,
        default=None,
        help="seconds between polls of every node (env FLEETUI_POLL_INTERVAL, default 10)",
    )
    parser.add_argument(
        "--server",
        choices=("runserver", "gunicorn"),
        default=env.get("FLEETUI_DEVRUN_SERVER", "runserver"),
        help="web server to run (default: Django's runserver)",
    )
    args = parser.parse_args(argv)
    for name in ("web_port", "sim_port"):
        port = getattr(args, name)
        if not 1 <= port <= 65535 - SIM_NODES:
            parser.error(f"--{name.replace('_', '-')} must be a port number, got {port}")
    if args.poll_interval is not None and not 1 <= args.poll_interval <= 3600:
        parser.error("--poll-interval must be between 1 and 3600 seconds")
    return Options(
        host="127.0.0.1",
        web_port=args.web_port,
        sim_port=args.sim_port,
        var_dir=Path(args.var_dir).resolve(),
        redis_url=env.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
        poll_interval=args.poll_interval,
        server=args.server,
    )


def child_env(opts: Options) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "PYTHONUNBUFFERED": "1",
            "DJANGO_SETTINGS_MODULE": "fleetui.settings",
            "FLEETUI_VAR_DIR": str(opts.var_dir),
            "REDIS_URL": opts.redis_url,
            # The simulated nodes listen on 127.0.0.1, which is refused unless this is on.
            "FLEETUI_ALLOW_LOOPBACK_NODES": "1",
        }
    )
    env.setdefault("DATABASE_URL", f"sqlite:///{opts.var_dir / 'fleetui.sqlite3'}")
    if opts.poll_interval is not None:
        env["FLEETUI_POLL_INTERVAL"] = str(opts.poll_interval)
    return env


def ensure_redis(sup: Supervisor, opts: Options) -> None:
    if redis_answers(opts.redis_url):
        sup.say("devrun", f"using the Redis at {_redacted(opts.redis_url)}")
        return
    parsed = urlparse(opts.redis_url)
    host, port = parsed.hostname or "127.0.0.1", parsed.port or 6379
    server = shutil.which("redis-server")
    local = host in {"127.0.0.1", "localhost", "::1"} and parsed.scheme == "redis" and not parsed.password
    if not (server and local):
        hint = (
            "install it (Debian/Ubuntu: `sudo apt-get install redis-server`, macOS: `brew install redis`) "
            "and run `make run` again, or set REDIS_URL to a Redis that answers"
        )
        raise StartupError(f"no Redis answers at {_redacted(opts.redis_url)}: {hint}")
    check_ports(host, {"redis": port})
    redis_dir = opts.var_dir / "redis"
    redis_dir.mkdir(parents=True, exist_ok=True)
    sup.say("devrun", f"no Redis at {_redacted(opts.redis_url)}: starting a local redis-server (no persistence)")
    child = sup.spawn(
        "redis",
        [server, "--bind", host, "--port", str(port), "--save", "", "--appendonly", "no", "--dir", str(redis_dir)],
    )
    deadline = time.monotonic() + 10
    while not redis_answers(opts.redis_url):
        sup.check_interrupt()
        if child.proc.poll() is not None or time.monotonic() > deadline:
            raise StartupError(f"redis-server did not start on port {port} (see its output above)")
        sup.pump(0.1)


def check_broker(sup: Supervisor, opts: Options) -> None:
    """CELERY_BROKER_URL, when set apart from REDIS_URL, must answer too (Celery would only retry)."""
    broker = sup.env.get("CELERY_BROKER_URL", "")
    if not broker or broker == opts.redis_url:
        return
    if broker.startswith(("redis://", "rediss://")) and not redis_answers(broker):
        raise StartupError(f"no Redis answers at CELERY_BROKER_URL={_redacted(broker)}: unset it or start that Redis")
    sup.say("devrun", f"Celery broker: {_redacted(broker)}")


def _redacted(url: str) -> str:
    parsed = urlparse(url)
    if parsed.password:
        return url.replace(f":{parsed.password}@", ":***@")
    return url


def start_fleetsim(sup: Supervisor, opts: Options, seed: int) -> tuple[Child, list[dict]]:
    """Start fleetsim; the list fills with its nodes (one JSON line each) as the output is pumped."""
    nodes: list[dict] = []

    def on_line(text: str) -> str | None:
        if text.startswith("{"):
            try:
                node = json.loads(text)
            except ValueError:
                return text
            if isinstance(node, dict) and "apiToken" in node:
                nodes.append(node)
                # The line carries the node's tokens: show where it listens and the code a human types
                # to pair with it (what a real Mac shows on its screen), never a token.
                return (
                    f"{node.get('name')} ({node.get('role')}) listening on {node.get('host')}:{node.get('port')}, "
                    f"pairing code {node.get('pairingCode')}"
                )
        return text

    child = sup.spawn(
        "fleetsim",
        [
            sys.executable, "-m", "fleetsim",
            "--nodes", str(SIM_NODES),
            "--host", opts.host,
            "--port", str(opts.sim_port),
            "--seed", str(seed),
        ],
        filter_line=on_line,
    )  # fmt: skip
    return child, nodes


def wait_for_nodes(sup: Supervisor, child: Child, nodes: list[dict], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while len(nodes) < SIM_NODES:
        sup.check_interrupt()
        if child.proc.poll() is not None:
            sup.drain(child)
            raise StartupError(f"fleetsim exited with status {child.proc.returncode} (see its output above)")
        if time.monotonic() > deadline:
            raise StartupError(f"fleetsim did not report its nodes within {timeout:.0f} s")
        sup.pump(0.1)


SETUP_FLAG = "--setup-from-stdin"
_STEP_SEPARATOR = "\t"


class _StepOutput:
    """A stdout for call_command whose lines go to the supervisor as `<step>\t<text>`."""

    def __init__(self, step: str) -> None:
        self.step = step
        self.pending = ""

    def write(self, text: str) -> int:
        self.pending += text
        *lines, self.pending = self.pending.split("\n")
        for line in lines:
            sys.stdout.write(f"{self.step}{_STEP_SEPARATOR}{line}\n")
        sys.stdout.flush()
        return len(text)

    def flush(self) -> None:
        sys.stdout.flush()  # a partial line ("Applying x..." before " OK") waits for its end

    def finish(self) -> None:
        if self.pending:
            self.write("\n")

    def isatty(self) -> bool:
        return False


def setup_main() -> int:
    """The start-up's Django steps in one process (one Django start instead of six), run as a child:
    migrate, `addnode --if-missing` per simulated node, `ensure_demo_users`, one `poll --sync`.

    The tokens and the demo password come as JSON on stdin and reach the commands as arguments of
    call_command, in this process: never on a command line, where `ps` would show them."""
    import django
    from django.core.management import CommandError, call_command

    django.setup()
    data = json.loads(sys.stdin.readline())

    def step(label: str, command: str, /, **options: object) -> None:
        out = _StepOutput(label)
        try:
            call_command(command, stdout=out, stderr=out, **options)
        finally:
            out.finish()

    try:
        step("migrate", "migrate", interactive=False)
        for node in data["nodes"]:
            step("addnode", "addnode", name=node["name"], host=node["host"], port=int(node["port"]),
                 api_token=node["apiToken"], if_missing=True)  # fmt: skip
        step("users", "ensure_demo_users", password=data["password"])
    except CommandError as exc:
        print(f"setup{_STEP_SEPARATOR}error: {exc}", flush=True)
        return 1
    try:
        # One poll now, so the first page shows the fleet instead of "not polled yet" until beat's first tick.
        step("poll", "poll", sync=True)
    except CommandError as exc:
        print(f"poll{_STEP_SEPARATOR}{exc}", flush=True)
        return 3
    return 0


def run_setup(sup: Supervisor, opts: Options, nodes: list[dict], state: dict, password: str) -> None:
    fingerprints: dict[str, str] = state.setdefault("tokens", {})
    for node in nodes:
        name, fingerprint = str(node["name"]), token_fingerprint(str(node["apiToken"]))
        if fingerprints.get(name) not in (None, fingerprint):
            sup.say(
                "devrun",
                f"warning: {name} now serves a different API token than when it was registered; "
                f"re-enter its token on its Edit page (or delete {opts.var_dir} to start afresh)",
            )
        fingerprints[name] = fingerprint

    def route(text: str) -> str | None:
        step, sep, rest = text.partition(_STEP_SEPARATOR)
        if sep and step.isidentifier():
            sup.say(step, rest)
            return None
        return text  # log lines of the commands (stderr): shown as "setup"

    payload = {
        "nodes": [{k: node[k] for k in ("name", "host", "port", "apiToken")} for node in nodes],
        "password": password,
    }
    child = sup.spawn(
        "setup",
        [sys.executable, "-m", "fleetui.devrun", SETUP_FLAG],
        stdin_data=(json.dumps(payload) + "\n").encode(),
        filter_line=route,
    )
    status = sup.wait_for(child)
    if status == 3:
        sup.say(
            "devrun",
            "warning: the first poll failed (see above); the worker keeps polling. Nodes registered by an "
            "earlier run with another --sim-port keep their old port: edit them, or start with that port",
        )
    elif status != 0:
        raise StartupError("setting up the database failed (see the output above)")
    save_json(opts.var_dir / "devrun.json", state)


def web_argv(opts: Options) -> list[str]:
    if opts.server == "gunicorn":
        return [
            sys.executable, "-m", "gunicorn", "fleetui.wsgi:application",
            "--bind", f"{opts.host}:{opts.web_port}", "--workers", "2", "--threads", "4",
            "--access-logfile", "-",
        ]  # fmt: skip
    # --noreload: one process we can stop; --insecure is not needed, WhiteNoise serves the static files.
    return [sys.executable, MANAGE, "runserver", f"{opts.host}:{opts.web_port}", "--noreload"]


def banner(sup: Supervisor, opts: Options, password: str, login_status: int) -> None:
    url = f"http://{opts.host}:{opts.web_port}/"
    lines = [
        "",
        f"FleetUI is running at {url}",
        f"Log in as one of these demo users, password {password}",
        f"(generated once, kept in {opts.var_dir / 'demo-users.json'}):",
    ]
    for username, what in DEMO_USERS:
        lines.append(f"    {username:<9} {what}")
    last = opts.sim_port + SIM_NODES - 1
    lines.append(f"Three simulated nodes (fleetsim) listen on {opts.host}, ports {opts.sim_port}-{last}.")
    if login_status != 200:
        lines.append(f"(the login page answered HTTP {login_status}: look at the web output above)")
    lines.append("Press Ctrl-C to stop everything.")
    lines.append("")
    for line in lines:
        sup.say("devrun", line)


def write_pids(sup: Supervisor, opts: Options) -> None:
    """<var>/devrun.pids: which processes this run started (for the tests and for a curious operator)."""
    data = {"devrun": os.getpid(), "children": {c.name: c.proc.pid for c in sup.children}}
    save_json(opts.var_dir / "devrun.pids", data)


def main(argv: Sequence[str] | None = None) -> int:
    opts = parse_args(argv)
    opts.var_dir.mkdir(parents=True, exist_ok=True)
    sup = Supervisor(child_env(opts), color=sys.stdout.isatty() and "NO_COLOR" not in os.environ)
    sup.install_signal_handlers()
    sup.on_spawn = lambda: write_pids(sup, opts)
    exit_code = 0
    claim: BrokerClaim | None = None
    try:
        check_ports(
            opts.host,
            {"web": opts.web_port, **{f"fleetsim node {i}": opts.sim_port + i for i in range(SIM_NODES)}},
        )
        ensure_redis(sup, opts)
        check_broker(sup, opts)
        broker = sup.env.get("CELERY_BROKER_URL") or opts.redis_url
        if broker.startswith(("redis://", "rediss://")):
            claim = BrokerClaim(broker, opts.var_dir)
            claim.acquire()
            sup.on_tick = claim.refresh
        state = devrun_state(opts.var_dir)
        fleetsim, nodes = start_fleetsim(sup, opts, state["seed"])
        wait_for_nodes(sup, fleetsim, nodes)
        password = demo_password(opts.var_dir)
        run_setup(sup, opts, nodes, state, password)
        # Two workers, as in docker-compose: a long command or pull on "actions" never starves the polls.
        pollers = sup.spawn(
            "worker-polls",
            [
                sys.executable, "-m", "celery", "-A", "fleetui", "worker",
                "--queues", "polls,alerts", "--loglevel", "INFO", "--concurrency", "4", "--pool", "threads",
                "--hostname", f"devrun-polls-{os.getpid()}@%h", "--without-mingle", "--without-gossip",
            ],
        )  # fmt: skip
        actors = sup.spawn(
            "worker-actions",
            [
                sys.executable, "-m", "celery", "-A", "fleetui", "worker",
                "--queues", "actions", "--loglevel", "INFO", "--concurrency", "4", "--pool", "threads",
                "--hostname", f"devrun-actions-{os.getpid()}@%h", "--without-mingle", "--without-gossip",
            ],
        )  # fmt: skip
        beat = sup.spawn(
            "beat",
            [
                sys.executable, "-m", "celery", "-A", "fleetui", "beat", "--loglevel", "INFO",
                "--schedule", str(opts.var_dir / "celerybeat-schedule"),
            ],
        )  # fmt: skip
        web = sup.spawn("web", web_argv(opts), signal_group=True)
        status = wait_for_http(
            sup,
            f"http://{opts.host}:{opts.web_port}/accounts/login/",
            timeout=STARTUP_TIMEOUT_SECONDS,
            watch=[pollers, actors, beat, web],
        )
        banner(sup, opts, password, status)
        while not sup.stop_requested:
            gone = sup.exited()
            if gone:
                for child in gone:
                    sup.drain(child)
                    sup.say("devrun", f"{child.name} exited unexpectedly (status {child.proc.returncode})")
                exit_code = 1
                break
            sup.pump(0.25)
    except StartupError as exc:
        sup.say("devrun", f"error: {exc}")
        exit_code = 1
    except Interrupted:
        exit_code = 130
    finally:
        killed = sup.stop_all()
        if killed:
            sup.say("devrun", "killed after the grace period: " + ", ".join(killed))
        if claim is not None:
            claim.release()
        sup.say("devrun", "stopped")
        try:
            (opts.var_dir / "devrun.pids").unlink()
        except FileNotFoundError:
            pass
    return exit_code


if __name__ == "__main__":
    sys.exit(setup_main() if sys.argv[1:] == [SETUP_FLAG] else main())
