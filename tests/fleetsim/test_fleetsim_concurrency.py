"""Many clients at once, with the Python control API called from another thread meanwhile."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import requests
from fleetsim import MAX_ALIVE_VMS


def test_concurrent_starts_never_break_the_two_vm_limit_or_the_server(sim_fleet):
    fleet = sim_fleet(nodes=2, vms_per_node=8, transition_seconds=0.05)
    node = fleet.nodes[1]
    base = f"http://{node.host}:{node.port}/rpc/"
    vm_ids = [v["id"] for v in requests.post(base + "ListVMs", json={"apiToken": node.api_token}, timeout=5)
              .json()["vms"]]
    stop = threading.Event()
    statuses: list[int] = []
    worst_alive: list[int] = []

    def client(k: int) -> None:
        with requests.Session() as s:
            i = k
            while not stop.is_set():
                vm_id = vm_ids[i % len(vm_ids)]
                method = ("StartVM", "StopVM", "ListVMs", "SuspendVM")[i % 4]
                r = s.post(base + method, json={"apiToken": node.api_token, "vmID": vm_id}, timeout=5)
                statuses.append(r.status_code)
                i += 3

    def controller() -> None:
        while not stop.is_set():
            node.set_faults(latency_ms=1)
            with fleet.lock:
                worst_alive.append(node.state.alive_count())
            node.clear_faults()

    with ThreadPoolExecutor(7) as pool:
        futures = [pool.submit(client, k) for k in range(6)] + [pool.submit(controller)]
        time.sleep(1.0)
        stop.set()
        for f in futures:
            f.result()
    assert statuses and set(statuses) == {200}
    assert max(worst_alive) <= MAX_ALIVE_VMS
    final = requests.post(base + "ListVMs", json={"apiToken": node.api_token}, timeout=5).json()["vms"]
    assert sum(v["state"] in ("starting", "running", "paused") for v in final) <= MAX_ALIVE_VMS
