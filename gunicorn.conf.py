"""gunicorn settings for FleetUI, read from the working directory (the Dockerfile's /app, the repo for
`make run --server gunicorn`); flags on the command line win.

Pages read the database and render templates: CPU-bound Python. One worker process per core uses
every core past the GIL; a few threads per worker overlap the waits on the database and Redis (on
2 cores, 2 workers x 4 threads served the fleet page's live partial at ~420 req/s in
bench/fleet_bench.py, against ~250 for 4 single-threaded workers).
"""

import os


def _count(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or int(raw) < 1:
        raise SystemExit(f"{name} must be a whole number of at least 1, got {raw!r}")
    return int(raw)


workers = _count("WEB_CONCURRENCY", os.cpu_count() or 1)  # gunicorn's own variable for this
threads = _count("FLEETUI_WEB_THREADS", 4)
worker_class = "gthread"
# A worker is replaced after this many requests (spread so they never all restart at once), so no
# slow leak in a dependency can grow a worker's memory for weeks.
max_requests = 5000
max_requests_jitter = 500
timeout = 60
graceful_timeout = 30
keepalive = 5
