"""HTTP load against the web server on 127.0.0.1: wrk when installed, else a small thread-based generator.

Both report requests/s, p50/p95 latency and errors (connect/read/timeouts and any status that is not
2xx; a 3xx counts as an error too, since a logged-in viewer should never be redirected).
"""

from __future__ import annotations

import http.client
import re
import shutil
import statistics
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

_WRK_LUA = r"""
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "BENCH requests=%d duration_us=%d p50_us=%d p95_us=%d p99_us=%d connect=%d read=%d write=%d status=%d timeout=%d\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(95), latency:percentile(99),
    e.connect, e.read, e.write, e.status, e.timeout))
end
"""
# wrk counts every status >= 400 in errors.status; a 3xx (say, a lost session redirecting to the
# login page) is ruled out by checking the same request once before and once after the run.


@dataclass
class LoadResult:
    tool: str
    requests: int
    seconds: float
    p50_ms: float
    p95_ms: float
    errors: int

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def have_wrk() -> bool:
    return shutil.which("wrk") is not None


def run_wrk(url: str, *, headers: dict[str, str], connections: int, seconds: int, threads: int,
            workdir: Path) -> LoadResult:
    script = workdir / "wrk-report.lua"
    script.write_text(_WRK_LUA)
    argv = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--timeout", "5s", "-s", str(script)]
    for key, value in headers.items():
        argv += ["-H", f"{key}: {value}"]
    argv.append(url)
    out = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 30, check=False)
    match = re.search(r"BENCH (.*)", out.stdout)
    if not match:
        raise RuntimeError(f"wrk gave no report (exit {out.returncode}): {out.stderr.strip()[:300]}")
    fields = dict(item.split("=") for item in match.group(1).split())
    errors = sum(int(fields[k]) for k in ("connect", "read", "write", "status", "timeout"))
    return LoadResult("wrk", int(fields["requests"]), int(fields["duration_us"]) / 1e6,
                      int(fields["p50_us"]) / 1000, int(fields["p95_us"]) / 1000, errors)


def run_threads(host: str, port: int, path: str, *, headers: dict[str, str], connections: int,
                seconds: int) -> LoadResult:
    """Fallback when wrk is missing: `connections` threads, each one keep-alive connection."""
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    stop_at = time.monotonic() + seconds

    def worker() -> None:
        conn = http.client.HTTPConnection(host, port, timeout=5)
        mine: list[float] = []
        bad = 0
        while time.monotonic() < stop_at:
            started = time.perf_counter()
            try:
                conn.request("GET", path, headers=headers)
                response = conn.getresponse()
                response.read()
                if not 200 <= response.status < 300:
                    bad += 1
                else:
                    mine.append(time.perf_counter() - started)
            except (OSError, http.client.HTTPException):
                bad += 1
                conn.close()
                conn = http.client.HTTPConnection(host, port, timeout=5)
        conn.close()
        with lock:
            latencies.extend(mine)
            errors[0] += bad

    started = time.perf_counter()
    threads = [threading.Thread(target=worker, daemon=True) for _ in range(connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=seconds + 10)
    elapsed = time.perf_counter() - started
    if not latencies:
        return LoadResult("python threads", 0, elapsed, 0.0, 0.0, errors[0])
    latencies.sort()
    p95 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.95))]
    return LoadResult("python threads", len(latencies), elapsed, statistics.median(latencies) * 1000,
                      p95 * 1000, errors[0])
