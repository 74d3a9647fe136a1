"""Load figures for fleetsim: start N nodes x K VMs in one process, then ListVMs on every node.

    .venv/bin/python bench/fleetsim_load.py [--nodes 500] [--vms 20] [--rounds 20] [--threads 16]

Prints the startup time, then req/s of ListVMs over keep-alive sessions (one requests.Session per
node) driven from a thread pool. The client runs in this same process by default (the GIL is shared
with the server loop: a pessimistic figure); --subprocess runs fleetsim as `python -m fleetsim` so the
client and the server each get a core.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import requests


def drive(nodes: list[dict], rounds: int, threads: int) -> tuple[int, float, int]:
    sessions = [requests.Session() for _ in nodes]

    def one(i: int) -> int:
        n = nodes[i % len(nodes)]
        r = sessions[i % len(nodes)].post(f"http://{n['host']}:{n['port']}/rpc/ListVMs",
                                          json={"apiToken": n["apiToken"]}, timeout=10)
        r.raise_for_status()
        return len(r.json()["vms"])

    # Warm-up: open every keep-alive connection once.
    with ThreadPoolExecutor(threads) as pool:
        total_vms = sum(pool.map(one, range(len(nodes))))
        t0 = time.perf_counter()
        count = len(nodes) * rounds
        list(pool.map(one, range(count), chunksize=64))
        elapsed = time.perf_counter() - t0
    for s in sessions:
        s.close()
    return count, elapsed, total_vms


def _drive_part(args: tuple[list[dict], int, int]) -> tuple[int, float, int]:
    return drive(*args)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--nodes", type=int, default=500)
    ap.add_argument("--vms", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--threads", type=int, default=16)
    ap.add_argument("--subprocess", action="store_true", help="run fleetsim in its own process")
    ap.add_argument("--client-procs", type=int, default=1,
                    help="client processes (each with --threads threads over its share of the nodes)")
    args = ap.parse_args()
    proc = None
    fleet = None
    t0 = time.perf_counter()
    if args.subprocess:
        proc = subprocess.Popen([sys.executable, "-m", "fleetsim", "--nodes", str(args.nodes), "--port", "0",
                                 "--vms-per-node", str(args.vms)], stdout=subprocess.PIPE, text=True)
        assert proc.stdout is not None
        nodes = [json.loads(proc.stdout.readline()) for _ in range(args.nodes)]
    else:
        from fleetsim import SimFleet

        fleet = SimFleet(nodes=args.nodes, vms_per_node=args.vms).start()
        nodes = [n.describe() for n in fleet.nodes]
    startup = time.perf_counter() - t0
    try:
        if args.client_procs > 1:
            from multiprocessing import Pool

            parts = [(nodes[i::args.client_procs], args.rounds, args.threads) for i in range(args.client_procs)]
            t1 = time.perf_counter()
            with Pool(args.client_procs) as pool:
                results = pool.map(_drive_part, parts)
            wall = time.perf_counter() - t1
            count = sum(r[0] for r in results)
            total_vms = sum(r[2] for r in results)
            # Wall time of the measured phase: the slowest process's, not the pool's start-up.
            elapsed = max(r[1] for r in results) if wall > 0 else wall
        else:
            count, elapsed, total_vms = drive(nodes, args.rounds, args.threads)
    finally:
        if fleet is not None:
            fleet.stop()
        if proc is not None:
            proc.terminate()
            proc.wait(10)
    where = "separate process" if args.subprocess else "same process as the client"
    print(f"fleetsim ({where}): {args.nodes} nodes x {args.vms} VMs = {total_vms} VMs")
    print(f"startup: {startup:.2f} s")
    print(f"ListVMs: {count} requests in {elapsed:.2f} s = {count / elapsed:.0f} req/s "
          f"({args.client_procs} client process(es) x {args.threads} threads, one keep-alive session per node)")


if __name__ == "__main__":
    main()
