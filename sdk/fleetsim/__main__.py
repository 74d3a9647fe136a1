"""python -m fleetsim: run simulated Fleet nodes until SIGINT/SIGTERM (see README.md)."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from types import FrameType

from .server import SimFleet


def _pairing_code(value: str) -> str:
    if len(value) != 6 or not value.isdigit():
        raise argparse.ArgumentTypeError("must be 6 digits")
    return value


def _non_negative(value: str) -> float:
    f = float(value)
    if f < 0:
        raise argparse.ArgumentTypeError("must be >= 0")
    return f


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m fleetsim", description="Simulated CiderStack Fleet nodes.")
    p.add_argument("--nodes", type=int, default=1, help="number of nodes; node 0 is the manager (default 1)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=9473, help="node i listens on PORT+i; 0 = ephemeral (default 9473)")
    p.add_argument("--api-token", default=None, help="fullAccess token of every node (default: seeded, per node)")
    p.add_argument("--readonly-token", default=None, help="readOnly token of every node (default: seeded)")
    p.add_argument("--pairing-code", type=_pairing_code, default=None, help="initial 6-digit pairing code")
    p.add_argument("--vms-per-node", type=int, default=4, help="VMs each node starts with (default 4)")
    p.add_argument("--latency-ms", type=_non_negative, default=0.0, help="added latency per request")
    p.add_argument("--seed", type=int, default=1, help="same seed, same fleet (default 1)")
    p.add_argument("--transition-seconds", type=_non_negative, default=1.0, help="starting/stopping duration")
    p.add_argument("--task-seconds", type=_non_negative, default=10.0, help="how long a task takes")
    p.add_argument("--control-port", type=int, default=None,
                   help="also serve the fleet-wide control endpoint (/_sim/...) on this port")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.nodes < 1:
        print("fleetsim: --nodes must be at least 1", file=sys.stderr)
        return 2
    if args.vms_per_node < 0:
        print("fleetsim: --vms-per-node must be >= 0", file=sys.stderr)
        return 2
    fleet = SimFleet(nodes=args.nodes, host=args.host, port=args.port, vms_per_node=args.vms_per_node,
                     api_token=args.api_token, readonly_token=args.readonly_token,
                     pairing_code=args.pairing_code, latency_ms=args.latency_ms, seed=args.seed,
                     transition_seconds=args.transition_seconds, task_seconds=args.task_seconds,
                     control_port=args.control_port)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        fleet.start()
    except OSError as exc:
        print(f"fleetsim: cannot listen: {exc}", file=sys.stderr)
        return 1
    for node in fleet.nodes:
        sys.stdout.write(json.dumps(node.describe()) + "\n")
    if fleet.control_port is not None:
        sys.stderr.write(f"fleetsim: control endpoint on http://{args.host}:{fleet.control_port}/_sim/\n")
    sys.stdout.flush()
    while not stop.wait(0.5):
        pass
    fleet.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
