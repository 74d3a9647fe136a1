"""fleetsim for the benchmark, in its own process: SimFleet on 127.0.0.1, plus a line protocol on
stdin/stdout so the benchmark can read `node.received` (when a node got which RPC).

    python bench/simserver.py --nodes 500 --vms-per-node 20 --seed 6

Prints one JSON line per node (fleetsim's own `describe()`), then the line READY. Then reads one
JSON command per line on stdin and answers one JSON line:
    {"cmd": "received", "node": 3, "since": 1712345678.5}  -> [[time, "StartVM"], ...]
    {"cmd": "stop"}                                         -> stops
It also stops when stdin closes, so it never outlives the benchmark.
"""

from __future__ import annotations

import argparse
import json
import sys

from fleetsim import SimFleet


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--nodes", type=int, required=True)
    parser.add_argument("--port", type=int, default=0, help="node i on PORT+i; 0 = ephemeral ports")
    parser.add_argument("--vms-per-node", type=int, default=20)
    parser.add_argument("--seed", type=int, default=6)
    parser.add_argument("--transition-seconds", type=float, default=0.2)
    parser.add_argument("--task-seconds", type=float, default=5.0)
    args = parser.parse_args()

    fleet = SimFleet(nodes=args.nodes, host="127.0.0.1", port=args.port, vms_per_node=args.vms_per_node,
                     seed=args.seed, transition_seconds=args.transition_seconds, task_seconds=args.task_seconds)
    fleet.start()
    try:
        for node in fleet.nodes:
            sys.stdout.write(json.dumps(node.describe()) + "\n")
        sys.stdout.write("READY\n")
        sys.stdout.flush()
        for line in sys.stdin:
            try:
                command = json.loads(line)
            except ValueError:
                sys.stdout.write(json.dumps({"error": "not JSON"}) + "\n")
                sys.stdout.flush()
                continue
            if command.get("cmd") == "stop":
                break
            if command.get("cmd") == "received":
                node = fleet.nodes[int(command["node"])]
                since = float(command.get("since", 0))
                seen = [[t, m] for t, m in list(node.received) if t >= since]
                sys.stdout.write(json.dumps(seen) + "\n")
            else:
                sys.stdout.write(json.dumps({"error": "unknown command"}) + "\n")
            sys.stdout.flush()
    finally:
        fleet.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
