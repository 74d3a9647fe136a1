"""Calls per second of our `ciderstack` client and of the published 0.1.1 client against one fleetsim node.

    .venv/bin/python bench/sdk_throughput.py [--seconds 2] [--rounds 3]

The node (20 VMs, instant transitions) runs in its own process (`python -m fleetsim`), so the server
does not share the GIL with the clients. Both clients talk to the same node in the same run; rounds
alternate between them so that drift hits both alike. Two operations:

- read:  ListVMs of 20 VMs (request, parse into VM objects);
- write: a StartVM + StopVM pair on one stopped VM (two calls; counted as two).

The published client opens a new TCP connection per call (module-level `requests.post`); ours keeps
one pooled keep-alive connection per client, which is most of the difference.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "sdk"))

from ciderstack import FleetClient  # noqa: E402 - after the sys.path line above


def load_published() -> ModuleType:
    spec = importlib.util.spec_from_file_location("_bench_published_loader", ROOT / "tests" / "sdk" / "published.py")
    assert spec is not None and spec.loader is not None
    loader = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(loader)
    return loader.load_published()


def start_node(vms: int) -> tuple[subprocess.Popen[str], dict[str, Any]]:
    env = dict(os.environ, PYTHONPATH=str(ROOT / "sdk") + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.Popen(
        [sys.executable, "-m", "fleetsim", "--nodes", "1", "--host", "127.0.0.1", "--port", "0",
         "--vms-per-node", str(vms), "--transition-seconds", "0", "--task-seconds", "1", "--seed", "11"],
        stdout=subprocess.PIPE, text=True, env=env,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        proc.kill()
        raise SystemExit("fleetsim did not start")
    return proc, json.loads(line)


def rate(call: Callable[[], int], seconds: float) -> float:
    """Calls per second of `call` (which returns how many RPCs it made) over about `seconds`."""
    calls = 0
    started = time.perf_counter()
    deadline = started + seconds
    while time.perf_counter() < deadline:
        calls += call()
    return calls / (time.perf_counter() - started)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="per client, operation and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--vms", type=int, default=20)
    args = parser.parse_args()

    published = load_published()
    proc, node = start_node(args.vms)
    try:
        host, port, token = node["host"], node["port"], node["apiToken"]
        ours = FleetClient(host, api_token=token, port=port, timeout=10)
        theirs = published.FleetClient(host, api_token=token, port=port, timeout=10)
        vms = ours.list_vms()
        assert len(vms) == args.vms, len(vms)
        target = next(vm.id for vm in vms if vm.state.value == "stopped")

        def read(client: Any) -> Callable[[], int]:
            def call() -> int:
                assert len(client.list_vms()) == args.vms
                return 1
            return call

        def write(client: Any) -> Callable[[], int]:
            def call() -> int:
                client.start_vm(target)
                client.stop_vm(target)
                return 2
            return call

        operations = [(f"read:  ListVMs ({args.vms} VMs)", read), ("write: StartVM + StopVM", write)]
        results: dict[str, dict[str, list[float]]] = {}
        for label, make in operations:
            for client in (ours, theirs):  # warm-up
                rate(make(client), 0.2)
            results[label] = {"ours": [], "published": []}
            for _ in range(args.rounds):
                results[label]["ours"].append(rate(make(ours), args.seconds))
                results[label]["published"].append(rate(make(theirs), args.seconds))
        ours.close()

        print(f"fleetsim node on {host}:{port} in a subprocess; {args.rounds} rounds x {args.seconds:g} s "
              f"per client and operation; Python {sys.version.split()[0]}, {os.cpu_count()} CPUs")
        header = f"{'operation':<28} {'ours calls/s':>13} {'published calls/s':>18} {'ratio':>7}"
        print(header)
        print("-" * len(header))
        for label, by_client in results.items():
            mine = sorted(by_client["ours"])[len(by_client["ours"]) // 2]
            pub = sorted(by_client["published"])[len(by_client["published"]) // 2]
            print(f"{label:<28} {mine:>13.0f} {pub:>18.0f} {mine / pub:>6.2f}x")
        print("(median of the rounds; the write row counts each of the two calls)")
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
