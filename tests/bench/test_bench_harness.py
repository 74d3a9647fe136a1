"""The fleet benchmark's own instruments (bench/*.py): they must measure what they claim.

Small and fast: a real database for the write counter, a real fleetsim subprocess for the line
protocol, real child processes for the stop-everything guarantee.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH))

from _proc import Managed, Processes, cpu_seconds, status_kb  # noqa: E402
from _writes import WriteCounter, by_table, total  # noqa: E402
from fleet_bench import Results, discover_live_partial, pct  # noqa: E402


@pytest.mark.django_db
def test_it_counts_rows_written_per_table_and_verb() -> None:
    from django.contrib.auth.models import User

    counter = WriteCounter()
    counter.install()
    try:
        User.objects.bulk_create([User(username=f"bench-{i}") for i in range(5)])
        User.objects.filter(username__startswith="bench-").update(first_name="x")  # 5 rows, one statement
        User.objects.filter(username="nothing-matches").update(first_name="y")  # 0 rows
        User.objects.filter(first_name="x").delete()
        list(User.objects.all())  # reads are not counted
    finally:
        counter.uninstall()
    counts = counter.take()
    assert counts["insert auth_user"] == 5
    assert counts["update auth_user"] == 5
    assert counts["delete auth_user"] == 5
    assert total(counts) == 15
    assert total(counts, prefix="update") == 5
    assert by_table(counts) == "user 15"
    # Uninstalled: later writes are not counted.
    User.objects.create(username="after")
    assert total(counter.take()) == 0


def test_it_finds_the_self_polling_partial_and_the_headers_htmx_sends() -> None:
    html = ('<main><div id="totals" hx-get="/?part=totals&amp;x=1" hx-trigger="load, every 10s" '
            'hx-target="#totals-box"></div></main>')
    url, headers = discover_live_partial(html, "/")
    assert url == "/?part=totals&x=1"
    assert headers["HX-Request"] == "true"
    assert headers["HX-Target"] == "totals-box"
    assert headers["HX-Trigger"] == "totals"
    # No polling element: the page itself, asked as HTMX.
    url, headers = discover_live_partial("<p>static</p>", "/vms/")
    assert url == "/vms/" and headers["HX-Request"] == "true"


def test_it_reports_percentiles_and_a_table_with_misses() -> None:
    values = [i / 100 for i in range(1, 101)]
    assert pct(values, 50) == 0.50
    assert pct(values, 95) == 0.95
    results = Results(header=["title"])
    results.add("page", "p50 10 ms", "at 100 VMs: 9 ms", "<= 100 ms", True)
    results.add("cycle", "7 s", "", "<= 5 s", False)
    table = results.render()
    assert "| page " in table and "MISS" in table and table.startswith("title")


def test_it_stops_every_process_it_started_with_their_children(tmp_path: Path) -> None:
    procs = Processes()
    # A parent that starts a child and both sleep: stopping must end both.
    script = "import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); " \
             "print('up', flush=True); time.sleep(60)"
    proc = procs.add(Managed("sleeper", [sys.executable, "-c", script], env=dict(os.environ), cwd=tmp_path,
                             log_dir=tmp_path))
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and len(proc.tree()) < 2:
        time.sleep(0.05)
    pids = proc.tree()
    assert len(pids) == 2
    assert status_kb(pids[0], "VmHWM") > 0
    assert cpu_seconds(pids[0]) >= 0
    procs.stop_all()
    time.sleep(0.2)
    assert all(not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text()
               for pid in pids)


def test_it_reads_what_fleetsim_received_through_the_line_protocol(tmp_path: Path) -> None:
    import requests

    procs = Processes()
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(BENCH.parent / "sdk"), str(BENCH.parent)])
    sim = procs.add(Managed("sim", [sys.executable, str(BENCH / "simserver.py"), "--nodes", "2",
                                    "--vms-per-node", "2"], env=env, cwd=tmp_path, log_dir=tmp_path,
                            stdin=True, stdout_pipe=True))
    try:
        assert sim.proc.stdout is not None and sim.proc.stdin is not None
        described = []
        for _ in range(3):
            line = sim.proc.stdout.readline().strip()
            if line == "READY":
                break
            described.append(json.loads(line))
        assert len(described) == 2
        before = time.time()
        node = described[1]
        requests.post(f"http://127.0.0.1:{node['port']}/rpc/ListVMs", json={"apiToken": node["apiToken"]},
                      timeout=5).raise_for_status()
        sim.proc.stdin.write(json.dumps({"cmd": "received", "node": 1, "since": before}) + "\n")
        sim.proc.stdin.flush()
        seen = json.loads(sim.proc.stdout.readline())
        assert [m for _, m in seen] == ["ListVMs"]
        assert seen[0][0] >= before
    finally:
        procs.stop_all()
    assert not sim.alive()
