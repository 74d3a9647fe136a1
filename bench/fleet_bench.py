"""FleetUI at fleet scale: `make bench` (or .venv/bin/python bench/fleet_bench.py [options]).

Starts fleetsim with 500 nodes x 20 VMs on 127.0.0.1 (bench/simserver.py, in its own process),
builds a fresh benchmark database (var/bench/bench.sqlite3; with DATABASE_URL=postgres://.../NAME
it uses a fresh database NAME_bench on that server), registers the nodes, and measures, each beside
the alternative it beats, in the same run:

- a full poll cycle (wall, CPU) with real Celery workers on the real Redis broker, at 100/250/500
  nodes, with one and with two worker processes; beside a naive sequential poll;
- rows written per cycle when nothing changed and when 1% of the VMs changed; beside an
  upsert-everything poll;
- the fleet overview, VM list, node detail and activity log at 10,000 VMs and 100,000 activity
  rows (Django test client in this process, logged in); beside the same pages at 100 VMs;
- a live partial under concurrent viewers (gunicorn + wrk); beside the full page;
- a click to the node (POST of a VM action until fleetsim receives the RPC);
- peak RSS of a web worker and of a Celery worker; history retention (prune_history) at scale.

Prints one table and saves it to var/bench/last.txt. Every child process is stopped at the end,
every loop is bounded in count and time, and everything talks to 127.0.0.1 only.
Redis: a database of its own on the REDIS_URL server (the first free one of 7..1, claimed the way
the test suite claims 15..8; or BENCH_REDIS_URL), flushed before and after.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import sys
import time
import traceback
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlparse, urlunparse

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
VAR = ROOT / "var" / "bench"
sys.path.insert(0, str(BENCH_DIR))
sys.path.insert(0, str(ROOT / "sdk"))
sys.path.insert(0, str(ROOT))

from _proc import BenchError, Managed, Processes, free_port, status_kb, wait_for, wait_for_port  # noqa: E402

LOOPBACK = {"127.0.0.1", "localhost", "::1", ""}
POLL_TASK = "fleetui.nodes.tasks.poll_node"


# ----------------------------------------------------------------------------------------------- results


@dataclass
class Row:
    what: str
    measured: str
    alternative: str
    target: str
    ok: bool | None  # None: no target, or could not be measured


@dataclass
class Results:
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    header: list[str] = field(default_factory=list)

    def add(self, what: str, measured: str, alternative: str = "", target: str = "", ok: bool | None = None) -> None:
        self.rows.append(Row(what, measured, alternative, target, ok))
        mark = {True: "ok", False: "MISS", None: ""}[ok]
        tail = (f"  | vs {alternative}" if alternative else "") + (f"  [{mark}]" if mark else "")
        print(f"   {what}: {measured}{tail}", flush=True)

    def failed(self, what: str, exc: BaseException, target: str = "") -> None:
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        self.add(what, f"not measured: {text[:110]}", "", target, False)

    def note(self, text: str) -> None:
        self.notes.append(text)
        print(f"   note: {text}", flush=True)

    def render(self) -> str:
        head = ("figure", "measured", "alternative (same run)", "target", "")
        body = [(r.what, r.measured, r.alternative, r.target, {True: "ok", False: "MISS", None: "-"}[r.ok])
                for r in self.rows]
        widths = [max(len(str(x[i])) for x in [head, *body]) for i in range(5)]

        def line(cells: tuple[str, ...]) -> str:
            return "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

        out = [*self.header, "", line(head), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
        out += [line(cells) for cells in body]
        if self.notes:
            out += ["", "Notes:"] + [f"- {n}" for n in self.notes]
        return "\n".join(out)


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms" if seconds >= 0.0995 else f"{seconds * 1000:.1f} ms"


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


# ----------------------------------------------------------------------------------------------- setup


def _loopback(url: str, what: str) -> None:
    host = urlparse(url).hostname or ""
    if host not in LOOPBACK:
        raise BenchError(f"{what} points at {host!r}; the benchmark only talks to 127.0.0.1")


def prepare_environment(args: argparse.Namespace) -> dict[str, str]:
    """Environment for this process and every child: bench database, bench Redis db, quiet logs."""
    VAR.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    given_db = os.environ.get("BENCH_DATABASE_URL") or os.environ.get("DATABASE_URL", "")
    if given_db.startswith(("postgres://", "postgresql://", "pgsql://")):
        _loopback(given_db, "DATABASE_URL")
        parsed = urlparse(given_db)
        name = parsed.path.lstrip("/")
        bench_name = name if os.environ.get("BENCH_DATABASE_URL") else f"{name}_bench"
        _recreate_postgres(parsed, bench_name)
        database_url = urlunparse(parsed._replace(path="/" + bench_name))
    else:
        db_file = VAR / "bench.sqlite3"
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(str(db_file) + suffix).unlink(missing_ok=True)
        database_url = f"sqlite:///{db_file}"
    redis_url = os.environ.get("BENCH_REDIS_URL") or claim_redis_db(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
    _loopback(redis_url, "REDIS_URL")
    env.update({
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "CELERY_BROKER_URL": redis_url,
        "FLEETUI_VAR_DIR": str(VAR),
        "FLEETUI_MODE": "dev",
        "FLEETUI_ALLOW_LOOPBACK_NODES": "1",
        "FLEETUI_POLL_INTERVAL": str(args.poll_interval),
        "FLEETUI_LOG_LEVEL": "WARNING",
        "DEBUG": "0",
        "DJANGO_SETTINGS_MODULE": "fleetui.settings",
        "PYTHONPATH": os.pathsep.join([str(BENCH_DIR), str(ROOT / "sdk"), str(ROOT)]),
        "PYTHONUNBUFFERED": "1",
    })
    os.environ.update(env)
    return env


# The test suite's claim protocol (tests/conftest.py): a Redis database is taken with SET NX of this
# key holding the pid; a database whose holder is alive is left alone. The tests scan 15..8; the
# benchmark scans 7..1, and claims the same way, so neither ever flushes the other's database.
CLAIM_KEY = "fleetui-test:claim"


def claim_redis_db(url: str) -> str:
    import redis

    parsed = urlparse(url)
    for number in range(7, 0, -1):
        candidate = urlunparse(parsed._replace(path=f"/{number}"))
        conn = redis.Redis.from_url(candidate, socket_connect_timeout=2)
        if not conn.set(CLAIM_KEY, os.getpid(), nx=True, ex=3 * 3600):
            holder = int(conn.get(CLAIM_KEY) or 0)
            try:
                os.kill(holder, 0)
                continue  # a live process holds it
            except (ProcessLookupError, ValueError):
                pass  # its holder died: take it over
            except PermissionError:
                continue
        conn.flushdb()
        conn.set(CLAIM_KEY, os.getpid(), ex=3 * 3600)
        return candidate
    raise BenchError("no free Redis database among 7..1 (each is claimed by a live process)")


def release_redis_db(url: str) -> None:
    import redis

    conn = redis.Redis.from_url(url, socket_connect_timeout=2)
    if conn.get(CLAIM_KEY) == str(os.getpid()).encode():
        conn.flushdb()


def _recreate_postgres(parsed: Any, bench_name: str) -> None:
    import psycopg
    from psycopg import sql

    if not re.fullmatch(r"[A-Za-z0-9_]+", bench_name):
        raise BenchError(f"benchmark database name {bench_name!r} must be letters, digits and underscores")
    conninfo = {"host": parsed.hostname or "127.0.0.1", "port": parsed.port or 5432,
                "user": parsed.username or "postgres", "dbname": "postgres"}
    if parsed.password:
        conninfo["password"] = parsed.password
    with psycopg.connect(**conninfo, autocommit=True, connect_timeout=5) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(bench_name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(bench_name)))


def start_fleetsim(procs: Processes, env: dict[str, str], args: argparse.Namespace) -> tuple[Managed, list[dict]]:
    sim = procs.add(Managed(
        "fleetsim",
        [sys.executable, str(BENCH_DIR / "simserver.py"), "--nodes", str(args.nodes), "--vms-per-node",
         str(args.vms_per_node), "--seed", str(args.seed), "--transition-seconds", "0.2", "--task-seconds", "5"],
        env=env, cwd=ROOT, log_dir=VAR, stdin=True, stdout_pipe=True,
    ))
    nodes: list[dict] = []
    deadline = time.monotonic() + 120
    assert sim.proc.stdout is not None
    while time.monotonic() < deadline:
        line = sim.proc.stdout.readline()
        if not line:
            raise BenchError(f"fleetsim exited before it was ready: {sim.log_tail()}")
        line = line.strip()
        if line == "READY":
            return sim, nodes
        if line.startswith("{"):
            nodes.append(json.loads(line))
    raise BenchError("fleetsim did not get ready within 120 s")


def sim_received(sim: Managed, index: int, since: float) -> list[tuple[float, str]]:
    assert sim.proc.stdin is not None and sim.proc.stdout is not None
    sim.proc.stdin.write(json.dumps({"cmd": "received", "node": index, "since": since}) + "\n")
    sim.proc.stdin.flush()
    answer = sim.proc.stdout.readline()
    if not answer:
        raise BenchError("fleetsim stopped answering")
    return [(float(t), str(m)) for t, m in json.loads(answer)]


# ----------------------------------------------------------------------------------------------- Django side


def django_setup() -> None:
    import django

    django.setup()


def migrate_and_users() -> tuple[Any, Any]:
    from django.contrib.auth.models import Group, User
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)
    admin = User.objects.create_superuser("bench-admin", "admin@bench.invalid", "bench-password-not-secret")
    operator = User.objects.create_user("bench-operator", "op@bench.invalid", "bench-password-not-secret")
    operator.groups.add(Group.objects.get(name="operator"))
    return admin, operator


def register_nodes(described: list[dict], admin: Any, results: Results, *, via_service: int) -> list[Any]:
    """The first `via_service` nodes through node_register (probes each node, the real path), the
    rest in bulk through the ORM with the same encrypted credentials (fast)."""
    from fleetui.core.crypto import encrypt
    from fleetui.nodes.models import Node

    created = []
    service_used = 0
    try:
        from fleetui.nodes.services import node_register
    except ImportError:
        node_register = None
    for d in described[:via_service]:
        if node_register is None:
            break
        node = node_register(name=d["name"], host=d["host"], port=int(d["port"]), api_token=d["apiToken"], user=admin)
        created.append(node)
        service_used += 1
    rest = [
        Node(name=d["name"], host=d["host"], port=int(d["port"]), api_token_enc=encrypt(d["apiToken"]),
             api_token_prefix=d["apiToken"][:12], token_permission=Node.Permission.FULL_ACCESS,
             role=d.get("role", ""), created_by=admin)
        for d in described[service_used:]
    ]
    Node.objects.bulk_create(rest, batch_size=500)
    if via_service and service_used == 0:
        results.note("node_register was not importable: every node was registered through the ORM")
    return created + list(Node.objects.filter(name__in=[d["name"] for d in described[service_used:]]))


# ----------------------------------------------------------------------------------------------- polling


class Cycles:
    """Poll cycles through real Celery workers: enqueue poll_node per node, wait for every one."""

    def __init__(self, env: dict[str, str], procs: Processes, sim: Managed, args: argparse.Namespace) -> None:
        import redis

        self.env = env
        self.procs = procs
        self.sim = sim
        self.args = args
        self.r = redis.Redis.from_url(env["REDIS_URL"])
        self.workers: list[Managed] = []
        self.peak_kb = 0

    def start_worker(self, name: str, *, pool: str | None = None, concurrency: int | None = None) -> Managed:
        # The queues of the deployed polls worker (polls, and the alert checks each poll queues) plus
        # actions, so the clicks are served too.
        argv = [sys.executable, "-m", "celery", "-A", "bench_celery", "worker", "-Q", "polls,alerts,actions",
                "-P", pool or self.args.pool, "-c", str(concurrency or self.args.concurrency), "-n", f"{name}@bench",
                "--without-heartbeat", "--without-gossip", "--without-mingle", "-l", "WARNING"]
        self.r.delete(f"bench:ready:{name}@bench")
        worker = self.procs.add(Managed(name, argv, env=self.env, cwd=ROOT, log_dir=VAR))
        try:
            wait_for(lambda: (worker.check_alive() or True) and bool(self.r.exists(f"bench:ready:{name}@bench")),
                     timeout=60, what=f"Celery worker {name} to be ready")
        except BenchError as exc:
            raise BenchError(f"{exc}: {worker.log_tail(5)}") from None
        self.workers.append(worker)
        return worker

    def stop_worker(self, worker: Managed) -> None:
        self.peak_rss_kb()
        self.procs.stop(worker)
        self.workers.remove(worker)

    def peak_rss_kb(self) -> int:
        """The highest peak RSS of any worker process seen so far (checked before each one stops)."""
        for worker in self.workers:
            for pid in worker.tree():
                self.peak_kb = max(self.peak_kb, status_kb(pid, "VmHWM"))
        return self.peak_kb

    def cycle(self, node_ids: list[int], *, timeout: float = 120.0) -> dict[str, Any]:
        """One poll of every node in `node_ids`, and the alert check each poll queues (when the
        alerts app is installed): wall time from the first enqueue to the last of those tasks."""
        from django.utils import timezone

        from fleetui.celery import app
        from fleetui.nodes.models import Node
        from fleetui.nodes.tasks import poll_node

        followers = [name for name in ("fleetui.alerts.tasks.evaluate_node",) if name in app.tasks]
        done_keys = [f"bench:done:{poll_node.name}"] + [f"bench:done:{name}" for name in followers]
        self.r.delete("bench:writes", *done_keys, "bench:failed", "bench:last_done", "bench:by_worker", "alerts")
        cpu0 = sum(w.cpu() for w in self.workers)
        sim0 = self.sim.cpu()
        started_at = timezone.now()
        t0 = time.time()
        for node_id in node_ids:
            poll_node.delay(node_id)
        deadline = time.monotonic() + timeout
        for key in done_keys:
            while int(self.r.get(key) or 0) < len(node_ids):
                if time.monotonic() > deadline:
                    raise BenchError(f"poll cycle of {len(node_ids)} nodes not done after {timeout:.0f} s "
                                     f"({key.split(':')[-1]}: {int(self.r.get(key) or 0)} done)")
                for w in self.workers:
                    w.check_alive()
                time.sleep(0.01)
        wall = float(self.r.get("bench:last_done") or time.time()) - t0
        writes = Counter({k.decode(): int(v) for k, v in self.r.hgetall("bench:writes").items()})
        failed_tasks = sum(int(v) for v in self.r.hgetall("bench:failed").values())
        failed_nodes = Node.objects.filter(pk__in=node_ids, last_error_at__gte=started_at).count()
        by_worker = {k.decode().split("@")[0]: int(v) for k, v in self.r.hgetall("bench:by_worker").items()}
        return {"wall": wall, "cpu": sum(w.cpu() for w in self.workers) - cpu0, "sim_cpu": self.sim.cpu() - sim0,
                "writes": writes, "failed_tasks": failed_tasks, "failed_nodes": failed_nodes, "by_worker": by_worker,
                "followers": followers}


def change_one_percent(described: list[dict], count: int, seed: int) -> int:
    """Change `count` VMs on the nodes through the SDK: stop a running VM, else rename a stopped one."""
    import random

    from ciderstack import FleetClient

    rng = random.Random(seed)
    changed = 0
    step = max(1, len(described) // count)
    for i in range(0, len(described), step):
        if changed >= count:
            break
        d = described[i]
        with FleetClient(d["host"], api_token=d["apiToken"], port=int(d["port"]), timeout=10) as client:
            vms = client.list_vms()
            running = [v for v in vms if str(getattr(v.state, "value", v.state)) == "running"]
            if running and changed % 2 == 0:
                client.stop_vm(running[0].id)
            else:
                vm = rng.choice(vms)
                client.rename_vm(vm.id, f"{vm.name}-r{rng.randint(1000, 9999)}")
        changed += 1
    return changed


# ----------------------------------------------------------------------------------------------- pages


def time_page(client: Any, url: str, *, count: int, headers: dict[str, str] | None = None,
              budget: float = 60.0) -> dict[str, Any]:
    """Server time of `count` GETs through the test client, plus the query count of one more."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    extra = {f"HTTP_{k.upper().replace('-', '_')}": v for k, v in (headers or {}).items()}
    first = client.get(url, **extra)
    if first.status_code not in (200, 286):
        raise BenchError(f"GET {url} answered {first.status_code}")
    with CaptureQueriesContext(connection) as ctx:
        client.get(url, **extra)
    queries = len(ctx.captured_queries)
    times = []
    deadline = time.monotonic() + budget
    for _ in range(count):
        if time.monotonic() > deadline:
            break
        t = time.perf_counter()
        response = client.get(url, **extra)
        times.append(time.perf_counter() - t)
        if response.status_code not in (200, 286):
            raise BenchError(f"GET {url} answered {response.status_code}")
    return {"p50": statistics.median(times), "p95": pct(times, 95), "queries": queries, "n": len(times),
            "bytes": len(first.content), "html": first.content.decode(errors="replace")}


def discover_live_partial(html: str, page_url: str) -> tuple[str, dict[str, str]]:
    """The first element that polls itself (hx-trigger "every ..."), its URL and the headers htmx sends."""
    for match in re.finditer(r"<[a-zA-Z][^>]*\bhx-trigger=\"[^\"]*every[^\"]*\"[^>]*>", html):
        tag = match.group(0)
        get = re.search(r'\bhx-get="([^"]+)"', tag)
        url = get.group(1).replace("&amp;", "&") if get else page_url
        headers = {"HX-Request": "true", "HX-Current-URL": f"http://testserver{page_url}"}
        own_id = re.search(r'\bid="([^"]+)"', tag)
        target = re.search(r'\bhx-target="#([^"]+)"', tag)
        if own_id:
            headers["HX-Trigger"] = own_id.group(1)
        if target or own_id:
            headers["HX-Target"] = (target or own_id).group(1)  # type: ignore[union-attr]
        return url, headers
    return page_url, {"HX-Request": "true", "HX-Current-URL": f"http://testserver{page_url}"}


# ----------------------------------------------------------------------------------------------- main run


def run(args: argparse.Namespace, procs: Processes, results: Results) -> None:
    env = prepare_environment(args)
    import redis

    bench_redis = redis.Redis.from_url(env["REDIS_URL"])
    bench_redis.ping()

    django_setup()
    from _writes import WriteCounter, by_table, total
    from django.conf import settings
    from django.db import connection
    from django.test import Client

    from fleetui.nodes.models import Node
    from fleetui.vms.models import VM

    cores = os.cpu_count() or 1
    commit = _git_commit()
    results.header += [
        f"FleetUI fleet benchmark, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} "
        f"on {cores} cores ({platform.python_implementation()} {platform.python_version()}), commit {commit}",
        f"fleet: {args.nodes} fleetsim nodes x {args.vms_per_node} VMs (seed {args.seed}); database: "
        f"{connection.vendor}; Celery: -P {args.pool} -c {args.concurrency}; "
        f"poll interval {settings.POLL_INTERVAL} s",
    ]
    print("== fleetsim", flush=True)
    t = time.perf_counter()
    sim, described = start_fleetsim(procs, env, args)
    print(f"   {len(described)} nodes up in {time.perf_counter() - t:.1f} s", flush=True)

    admin, operator = migrate_and_users()
    client = Client()
    client.force_login(operator)

    # ---- the same pages at 100 VMs, the baseline their figures at 10,000 VMs are set against
    print("== small fleet (5 nodes, 100 VMs) pages", flush=True)
    small_n = max(1, min(5, args.nodes))
    small = register_nodes(described[:small_n], admin, results, via_service=small_n)
    from fleetui.nodes.services import node_poll

    for node in small:
        node_poll(node_id=node.pk)
    pages = _page_urls(small[0], args)
    baseline: dict[str, dict[str, Any]] = {}
    for label, (url, headers) in pages.items():
        try:
            baseline[label] = time_page(client, url, count=args.small_requests, headers=headers)
        except Exception as exc:
            results.note(f"{label} at {small_n * args.vms_per_node} VMs: not measured ({exc})")

    # ---- the whole fleet
    print(f"== register {args.nodes - small_n} more nodes", flush=True)
    t = time.perf_counter()
    register_nodes(described[small_n:], admin, results, via_service=0)
    print(f"   {time.perf_counter() - t:.1f} s", flush=True)
    all_ids = list(Node.objects.order_by("pk").values_list("pk", flat=True))

    cycles = Cycles(env, procs, sim, args)
    # node_register queued a first poll of each node it registered; those ran above already.
    bench_redis.delete("polls")
    print("== Celery poll cycles", flush=True)
    w1 = cycles.start_worker("bench1")
    target_cycle = "<= 5 s at 500 nodes"
    steady = changed_cycle = None
    by_size: dict[int, dict[str, Any]] = {}
    changed = 0
    try:
        cold = cycles.cycle(all_ids, timeout=args.cycle_timeout)
        results.add(f"first poll cycle, {len(all_ids)} nodes (creates {VM.objects.count()} VM rows)",
                    f"{cold['wall']:.2f} s wall, {cold['cpu']:.1f} s CPU, {total(cold['writes'])} rows written")
        steady = _median([cycles.cycle(all_ids, timeout=args.cycle_timeout) for _ in range(args.cycle_repeats)])
        for n in (100, 250):
            if n < len(all_ids):
                by_size[n] = cycles.cycle(all_ids[:n], timeout=args.cycle_timeout)
        by_size[len(all_ids)] = steady
    except Exception as exc:
        results.failed("poll cycle, 1 Celery worker", exc, target_cycle)

    if steady is not None:
        try:
            print("== rows written: 1% of the VMs change", flush=True)
            changed = change_one_percent(described, max(1, (args.nodes * args.vms_per_node) // 100), args.seed)
            time.sleep(1.0)  # fleetsim's transitions last 0.2 s: let the stops settle
            changed_cycle = cycles.cycle(all_ids, timeout=args.cycle_timeout)
        except Exception as exc:
            results.failed("rows written per cycle", exc, "proportional to change")

    one_small = two_small = None
    if steady is not None and "scale" not in args.skip:
        # Scale-out: the same cycle with one worker of concurrency C and with two such workers (as a
        # second machine would add one). The main worker steps aside meanwhile.
        print(f"== scale-out: one and two Celery workers of -c {args.scale_concurrency}", flush=True)
        try:
            cycles.stop_worker(w1)
            s1 = cycles.start_worker("scale1", concurrency=args.scale_concurrency)
            one_small = _median([cycles.cycle(all_ids, timeout=args.cycle_timeout) for _ in range(args.cycle_repeats)])
            s2 = cycles.start_worker("scale2", concurrency=args.scale_concurrency)
            two_small = _median([cycles.cycle(all_ids, timeout=args.cycle_timeout) for _ in range(args.cycle_repeats)])
            cycles.stop_worker(s2)
            cycles.stop_worker(s1)
        except Exception as exc:
            results.failed("poll cycle, 2 Celery workers", exc)
        finally:
            w1 = cycles.start_worker("bench1")

    # The alternatives, after the real polls (the naive one rewrites every row): the same SDK calls
    # one node after the other, without and with an upsert-everything write of what was seen.
    naive_sdk = naive_full = None
    naive_counts: Counter[str] = Counter()
    if "naive" not in args.skip:
        from _naive import NodeCreds, naive_sequential_poll, sdk_only_sequential

        print("== naive sequential poll (same SDK calls, one node after the other; upsert everything)", flush=True)
        tokens = {d["name"]: d for d in described}
        creds = [NodeCreds(n.pk, n.host, n.port, tokens[n.name]["apiToken"], tokens[n.name].get("role") == "manager")
                 for n in Node.objects.order_by("pk")]
        try:
            naive_sdk = sdk_only_sequential(creds, deadline=time.monotonic() + args.naive_budget)
        except Exception as exc:
            results.note(f"naive sequential poll (SDK calls only): not measured ({exc})")
        counter = WriteCounter()
        counter.install()
        try:
            naive_full = naive_sequential_poll(creds, deadline=time.monotonic() + args.naive_budget)
            naive_counts = counter.take()
        except Exception as exc:
            results.note(f"naive upsert-everything poll: not measured ({exc})")
        finally:
            counter.uninstall()
        if naive_sdk:
            results.note(f"the SDK calls of one poll of every node, one node after the other and writing nothing, "
                         f"take {naive_sdk[0]:.2f} s from one process: the floor a sequential poller cannot beat")
    naive_alt = (f"naive sequential poll + upsert: {naive_full[0]:.2f} s" if naive_full
                 else "naive sequential poll: not measured")

    if steady is not None:
        fail_note = f"; {steady['failed_nodes']} nodes failed" if steady["failed_nodes"] else ""
        results.add(
            f"poll cycle, {len(all_ids)} nodes, 1 Celery worker (-P {args.pool} -c {args.concurrency})",
            f"{steady['wall']:.2f} s wall, {steady['cpu']:.1f} s CPU (+ {steady['sim_cpu']:.1f} s fleetsim)"
            + fail_note,
            naive_alt, target_cycle, steady["wall"] <= 5.0 and steady["failed_nodes"] == 0,
        )
        scale = ", ".join(f"{n}: {c['wall']:.2f} s ({c['wall'] / n * 1000:.1f} ms/node)"
                          for n, c in sorted(by_size.items()))
        per_node = [c["wall"] / n for n, c in sorted(by_size.items())]
        # Linear (or better): the cost per node at full size is no more than 1.5x the smallest one.
        results.add("poll cycle growth with nodes", scale, "", "linear", per_node[-1] <= 1.5 * min(per_node))
    if one_small is not None and two_small is not None:
        split = "/".join(str(v) for _, v in sorted(two_small["by_worker"].items()))
        results.add(f"scale-out: poll cycle with 2 Celery workers (-P {args.pool} -c {args.scale_concurrency} each)",
                    f"{two_small['wall']:.2f} s wall, polls split {split}"
                    + (f"; {two_small['failed_nodes']} nodes failed" if two_small["failed_nodes"] else ""),
                    f"1 such worker: {one_small['wall']:.2f} s", "faster than 1 worker",
                    two_small["wall"] < one_small["wall"] and two_small["failed_nodes"] == 0)
    if steady is not None and changed_cycle is not None:
        naive_rows = f"upsert everything: {total(naive_counts)} rows ({by_table(naive_counts)})" if naive_full else ""
        vm_rows = {name: total(c["writes"], prefix="update vms_vm") + total(c["writes"], prefix="insert vms_vm")
                   for name, c in (("quiet", steady), ("busy", changed_cycle))}
        results.add("rows written per cycle, nothing changed",
                    f"{total(steady['writes'])} ({by_table(steady['writes'])})", naive_rows,
                    "proportional to change", vm_rows["quiet"] == 0)
        results.add(f"rows written per cycle, {changed} VMs (1%) changed",
                    f"{total(changed_cycle['writes'])} ({by_table(changed_cycle['writes'])})", naive_rows,
                    "proportional to change", 0 < vm_rows["busy"] <= 2 * changed)

    nodes = list(Node.objects.order_by("pk"))
    manager = next((n for n in nodes if n.role == Node.Role.MANAGER), nodes[0])
    html_overview = ""
    web = None
    if "pages" not in args.skip:
        # ---- history for the pages: stats samples, 100,000 activity rows
        print("== seeding history (stats samples, fleet events, operations)", flush=True)
        from _seed import seed_events, seed_operations, seed_stats_history

        t = time.perf_counter()
        n_samples = seed_stats_history(nodes=nodes, per_node=args.stats_per_node, spacing=timedelta(minutes=1),
                                       start_age=timedelta(minutes=1))
        n_events = seed_events(count=args.events, source=manager, node_names=[n.name for n in nodes[:200]],
                               oldest=timedelta(days=30))
        n_ops = seed_operations(count=args.operations, user=operator, oldest=timedelta(days=30))
        results.note(f"seeded {n_samples} stats samples, {n_events} fleet events and {n_ops} operations "
                     f"in {time.perf_counter() - t:.1f} s")

        # ---- pages at 10,000 VMs (right after a poll, so every node shows as online, as it would live)
        refresh(cycles, all_ids, results)
        print(f"== pages at {VM.objects.count()} VMs", flush=True)
        pages = _page_urls(small[0], args)
        targets = {"fleet overview": 0.150, "VM list, filtered and paged": 0.080, "node detail": 0.100,
                   "activity log": 0.100}
        for label, (url, headers) in pages.items():
            limit = targets.get(label)
            try:
                m = time_page(client, url, count=args.requests, headers=headers)
                if label == "fleet overview":
                    html_overview = m["html"]
                base = baseline.get(label)
                alt = (f"at {small_n * args.vms_per_node} VMs: p50 {ms(base['p50'])}, {base['queries']} queries"
                       if base else "")
                grows = base is not None and m["queries"] > base["queries"]
                target = f"<= {limit * 1000:.0f} ms p50" if limit else ""
                if label == "fleet overview":
                    target += "; queries constant"
                results.add(f"{label} ({url})", f"p50 {ms(m['p50'])}, p95 {ms(m['p95'])}, {m['queries']} queries, "
                            f"n={m['n']}", alt, target, (m["p50"] <= limit and not grows) if limit else None)
            except Exception as exc:
                results.failed(f"{label} ({url})", exc, f"<= {limit * 1000:.0f} ms p50" if limit else "")

    if "load" not in args.skip:
        # ---- live partial under concurrent viewers: gunicorn + wrk
        print("== live partial under load (gunicorn + load generator)", flush=True)
        try:
            partial_url, partial_headers = discover_live_partial(html_overview, "/")
            m = time_page(client, partial_url, count=min(args.requests, 100), headers=partial_headers)
            results.add(f"live partial in-process ({partial_url}, HX-Request)",
                        f"p50 {ms(m['p50'])}, {m['queries']} queries, {m['bytes']} bytes", "", "", None)
            web, port = start_gunicorn(procs, env, args)
            results.header.append(f"gunicorn: {gunicorn_config(web)}")
            refresh(cycles, all_ids, results)
            session = client.cookies[settings.SESSION_COOKIE_NAME].value
            load_headers = {"Cookie": f"{settings.SESSION_COOKIE_NAME}={session}"}
            partial = run_load(port, partial_url, {**load_headers, **partial_headers}, args)
            full = run_load(port, "/", load_headers, args)
            ok = partial.rps >= 200 and partial.p95_ms <= 250 and partial.errors == 0
            results.add(f"live partial under load ({args.load_connections} connections, {partial.tool})",
                        f"{partial.rps:.0f} req/s, p95 {partial.p95_ms:.0f} ms, {partial.errors} errors",
                        f"full page: {full.rps:.0f} req/s, p95 {full.p95_ms:.0f} ms, {full.errors} errors",
                        ">= 200 req/s, p95 <= 250 ms, 0 errors", ok)
        except Exception as exc:
            results.failed("live partial under load", exc, ">= 200 req/s, p95 <= 250 ms, 0 errors")

    if "click" not in args.skip:
        # ---- a click to the node
        print("== click to node", flush=True)
        try:
            refresh(cycles, all_ids, results)
            lat = click_to_node(client, sim, described, args)
            results.add(f"click to node (POST vm-action -> fleetsim got the RPC), n={len(lat)}",
                        f"median {ms(statistics.median(lat))}, max {ms(max(lat))}", "", "<= 100 ms median",
                        statistics.median(lat) <= 0.100)
        except Exception as exc:
            results.failed("click to node", exc, "<= 100 ms median")

    # ---- memory
    print("== memory", flush=True)
    celery_hwm = cycles.peak_rss_kb()
    results.add("peak RSS of a Celery worker process (VmHWM)", f"{celery_hwm / 1024:.0f} MB", "", "<= 150 MB",
                0 < celery_hwm <= 150 * 1024)
    if web is not None:
        kids = web.tree()[1:] or web.tree()
        web_hwm = max((status_kb(p, "VmHWM") for p in kids), default=0)
        results.add("peak RSS of a gunicorn web worker (VmHWM)", f"{web_hwm / 1024:.0f} MB", "", "<= 150 MB",
                    0 < web_hwm <= 150 * 1024)

    if "retention" not in args.skip:
        # ---- retention
        print("== retention (prune_history)", flush=True)
        try:
            retention_check(results, nodes, manager)
        except Exception as exc:
            results.failed("retention: prune_history", exc, "bounded")


def _median(runs: list[dict[str, Any]]) -> dict[str, Any]:
    return sorted(runs, key=lambda c: c["wall"])[len(runs) // 2]


def refresh(cycles: Cycles, node_ids: list[int], results: Results) -> None:
    """One poll cycle, so the pages that follow show a live fleet (health is derived from poll age)."""
    try:
        cycles.cycle(node_ids, timeout=120)
    except Exception as exc:
        results.note(f"refresh poll before a measurement failed: {exc}")


def _page_urls(node: Any, args: argparse.Namespace) -> dict[str, tuple[str, dict[str, str]]]:
    from django.urls import reverse

    return {
        "fleet overview": (reverse("fleet-overview"), {}),
        "VM list, filtered and paged": (f"{reverse('vm-list')}?{args.vm_list_query}", {}),
        "node detail": (reverse("node-detail", args=[node.pk]), {}),
        "activity log": (f"{reverse('activity')}{('?' + args.activity_query) if args.activity_query else ''}", {}),
    }


def start_gunicorn(procs: Processes, env: dict[str, str], args: argparse.Namespace) -> tuple[Managed, int]:
    """gunicorn as deployed: the repository's gunicorn.conf.py (read from the working directory),
    unless --web-workers/--web-threads say otherwise; bound to 127.0.0.1 on a free port."""
    port = free_port()
    argv = [sys.executable, "-m", "gunicorn", "fleetui.wsgi:application", "--bind", f"127.0.0.1:{port}",
            "--access-logfile", "-" if args.access_log else "/dev/null", "--log-level", "warning"]
    if args.web_workers:
        argv += ["--workers", str(args.web_workers)]
    if args.web_threads:
        argv += ["--threads", str(args.web_threads), "--worker-class", "gthread"]
    web = procs.add(Managed("gunicorn", argv, env=env, cwd=ROOT, log_dir=VAR))
    wait_for_port(port, timeout=30, what="gunicorn to listen")
    return web, port


def gunicorn_config(web: Managed) -> str:
    """How many workers gunicorn really started (children of the master), and its arguments."""
    wait_for(lambda: len(web.tree()) > 1, timeout=20, what="gunicorn workers")
    time.sleep(0.5)
    workers = len(web.tree()) - 1
    given = " ".join(a for a in web.argv[4:] if not a.startswith("127.0.0.1")) or "defaults"
    conf = "gunicorn.conf.py" if (ROOT / "gunicorn.conf.py").exists() else "no gunicorn.conf.py"
    return f"{workers} worker processes ({conf}; {given})"


def run_load(port: int, path: str, headers: dict[str, str], args: argparse.Namespace) -> Any:
    import http.client

    from _load import have_wrk, run_threads, run_wrk

    def check() -> None:
        # Generous timeout: after a run the server may still be working off the backlog it queued.
        deadline = time.monotonic() + 60
        while True:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                conn.request("GET", path, headers=headers)
                response = conn.getresponse()
                response.read()
                conn.close()
                break
            except (OSError, http.client.HTTPException):
                if time.monotonic() > deadline:
                    raise BenchError(f"gunicorn did not answer GET {path} within 60 s") from None
                time.sleep(1)
        if not 200 <= response.status < 300:
            raise BenchError(f"GET {path} through gunicorn answered {response.status}, not 2xx")

    check()
    if have_wrk():
        result = run_wrk(f"http://127.0.0.1:{port}{path}", headers=headers, connections=args.load_connections,
                         seconds=args.load_seconds, threads=2, workdir=VAR)
    else:
        result = run_threads("127.0.0.1", port, path, headers=headers, connections=args.load_connections,
                             seconds=args.load_seconds)
    check()
    return result


def click_to_node(client: Any, sim: Managed, described: list[dict], args: argparse.Namespace) -> list[float]:
    """POST stop on a running VM (or start on a stopped one, where the node has room) of distinct
    nodes, and time until fleetsim has the StopVM/StartVM RPC in its `received` log."""
    from django.urls import reverse
    from django.utils import timezone

    from fleetui.activity.models import Operation
    from fleetui.nodes.models import Node
    from fleetui.vms.models import VM

    since = timezone.now()
    index_of = {d["name"]: i for i, d in enumerate(described)}
    latencies: list[float] = []
    nodes = list(Node.objects.order_by("pk")[: args.clicks * 3])
    for node in nodes:
        if len(latencies) >= args.clicks:
            break
        vms = list(VM.objects.filter(node=node, gone_at__isnull=True))
        running = [v for v in vms if v.state == "running"]
        if running:
            vm, action, rpc = running[0], "stop", "StopVM"
        else:
            stopped = [v for v in vms if v.state == "stopped"]
            if not stopped:
                continue
            vm, action, rpc = stopped[0], "start", "StartVM"
        url = reverse("vm-action", args=[vm.pk, action])
        t0 = time.time()
        response = client.post(url)
        if response.status_code >= 400 or not Operation.objects.filter(vm=vm, created_at__gte=since).exists():
            text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.content.decode(errors="replace")))
            raise BenchError(f"POST {url} answered {response.status_code} and recorded no operation: "
                             f"{text.strip()[:160]}")
        deadline = time.monotonic() + 10
        got = None
        while time.monotonic() < deadline:
            seen = [t for t, m in sim_received(sim, index_of[node.name], t0) if m == rpc]
            if seen:
                got = seen[0]
                break
            time.sleep(0.005)
        if got is None:
            raise BenchError(f"fleetsim never received {rpc} for {vm.name} within 10 s of the click")
        latencies.append(got - t0)
        time.sleep(0.05)
    if not latencies:
        raise BenchError("no VM to click on")
    return latencies


def retention_check(results: Results, nodes: list[Any], manager: Any) -> None:
    from _seed import seed_events, seed_stats_history
    from django.conf import settings
    from django.utils import timezone

    from fleetui.activity.models import FleetEvent
    from fleetui.nodes.models import NodeStatsSample

    try:
        from fleetui.nodes.tasks import prune_history
    except ImportError:
        raise BenchError("fleetui.nodes.tasks.prune_history does not exist") from None
    stats_days = settings.STATS_RETENTION_DAYS
    events_days = settings.EVENTS_RETENTION_DAYS
    # Old history: one sample per hour per node over the last 2 x retention, events past their expiry.
    seed_stats_history(nodes=nodes, per_node=stats_days * 2 * 24, spacing=timedelta(hours=1),
                       start_age=timedelta(hours=2), seed=9)
    seed_events(count=20000, source=manager, node_names=[n.name for n in nodes[:50]],
                oldest=timedelta(days=events_days * 2), seed=10, prefix="old")
    now = timezone.now()
    before_stats = NodeStatsSample.objects.count()
    before_events = FleetEvent.objects.count()
    t = time.perf_counter()
    prune_history()
    took = time.perf_counter() - t
    after_stats = NodeStatsSample.objects.count()
    after_events = FleetEvent.objects.count()
    old_stats = NodeStatsSample.objects.filter(at__lt=now - timedelta(days=stats_days)).count()
    old_events = FleetEvent.objects.filter(timestamp__lt=now - timedelta(days=events_days)).count()
    day_ago = NodeStatsSample.objects.filter(at__lt=now - timedelta(days=1)).count()
    results.add(
        "retention: prune_history once",
        f"{took:.1f} s; stats samples {before_stats} -> {after_stats} ({old_stats} older than {stats_days} d, "
        f"{day_ago} older than 1 d); events {before_events} -> {after_events} ({old_events} older than "
        f"{events_days} d)",
        "", "bounded: nothing past retention", old_stats == 0 and old_events == 0,
    )


def _git_commit() -> str:
    import subprocess

    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                             timeout=5, check=False)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                               capture_output=True, text=True, timeout=5, check=False)
        return out.stdout.strip() + ("+local changes" if dirty.stdout.strip() else "") or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--nodes", type=int, default=500)
    p.add_argument("--vms-per-node", type=int, default=20)
    p.add_argument("--seed", type=int, default=6)
    p.add_argument("--pool", default="prefork", choices=["threads", "prefork", "solo"],
                   help="Celery pool of the bench workers (default prefork, as docker-compose.yml runs them)")
    p.add_argument("--concurrency", type=int, default=4, help="Celery worker concurrency (default 4, as deployed)")
    p.add_argument("--scale-concurrency", type=int, default=1,
                   help="concurrency of each worker in the one-vs-two-workers comparison (default 1: on a 2-core "
                        "machine one such worker is one core, as one machine's worker would be one machine)")
    p.add_argument("--cycle-repeats", type=int, default=3, help="steady cycles at full size; the median counts")
    p.add_argument("--cycle-timeout", type=float, default=120.0)
    p.add_argument("--naive-budget", type=float, default=240.0, help="seconds allowed per naive poll")
    p.add_argument("--poll-interval", type=int, default=10)
    p.add_argument("--requests", type=int, default=200, help="requests per page at full size")
    p.add_argument("--small-requests", type=int, default=50, help="requests per page at 100 VMs")
    p.add_argument("--vm-list-query", default="state=stopped&page=3")
    p.add_argument("--activity-query", default="")
    p.add_argument("--events", type=int, default=80000)
    p.add_argument("--operations", type=int, default=20000)
    p.add_argument("--stats-per-node", type=int, default=60)
    p.add_argument("--web-workers", type=int, default=0, help="gunicorn workers (default: gunicorn.conf.py)")
    p.add_argument("--web-threads", type=int, default=0, help="gunicorn threads (default: gunicorn.conf.py)")
    p.add_argument("--load-connections", type=int, default=16)
    p.add_argument("--load-seconds", type=int, default=10)
    p.add_argument("--access-log", action="store_true")
    p.add_argument("--clicks", type=int, default=20)
    p.add_argument("--skip", default="", help="comma-separated parts to leave out: scale, naive, pages, load, "
                   "click, retention (for quick iterations; the full table needs none)")
    p.add_argument("--output", default=str(VAR / "last.txt"))
    args = p.parse_args(argv)
    args.skip = {part.strip() for part in args.skip.split(",") if part.strip()}
    if not 1 <= args.nodes <= 2000 or not 0 <= args.vms_per_node <= 200:
        p.error("--nodes must be 1..2000 and --vms-per-node 0..200")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    procs = Processes()
    results = Results()
    started = time.perf_counter()
    code = 0
    try:
        run(args, procs, results)
    except KeyboardInterrupt:
        results.note("interrupted")
        code = 130
    except Exception as exc:
        traceback.print_exc()
        results.note(f"stopped early: {type(exc).__name__}: {exc}")
        code = 1
    finally:
        procs.stop_all()
        if os.environ.get("REDIS_URL") and not os.environ.get("BENCH_REDIS_URL"):
            try:
                release_redis_db(os.environ["REDIS_URL"])
            except Exception as exc:  # the table still gets printed
                print(f"bench: could not release the Redis database: {exc}")
    results.note(f"benchmark ran {time.perf_counter() - started:.0f} s; logs of the child processes in {VAR}")
    table = results.render()
    print("\n" + table)
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(table + "\n")
    print(f"\n(saved to {out})")
    return code


if __name__ == "__main__":
    sys.exit(main())
