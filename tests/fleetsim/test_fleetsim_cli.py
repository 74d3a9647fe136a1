"""`python -m fleetsim` in a subprocess, and seed determinism."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest
import requests
from fleetsim import SimFleet


def free_port_block(n: int) -> int:
    """A base port P such that P..P+n-1 are free right now (best effort, then the CLI binds them)."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            base = s.getsockname()[1]
        if base + n >= 65535:
            continue
        socks = []
        try:
            for i in range(n):
                t = socket.socket()
                socks.append(t)
                t.bind(("127.0.0.1", base + i))
            return base
        except OSError:
            continue
        finally:
            for t in socks:
                t.close()
    raise RuntimeError("no free port block")


def start_cli(*args: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "0"}
    return subprocess.Popen([sys.executable, "-m", "fleetsim", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_cli_prints_one_json_line_per_node_serves_and_stops_cleanly(sig):
    base = free_port_block(3)
    proc = start_cli("--nodes", "3", "--host", "127.0.0.1", "--port", str(base), "--api-token", "csk_fixedfull",
                     "--readonly-token", "csk_fixedro", "--pairing-code", "123456", "--vms-per-node", "2",
                     "--seed", "5", "--transition-seconds", "0.1", "--task-seconds", "0.5")
    try:
        assert proc.stdout is not None
        lines = [json.loads(proc.stdout.readline()) for _ in range(3)]
        assert [ln["port"] for ln in lines] == [base, base + 1, base + 2]
        assert [ln["role"] for ln in lines] == ["manager", "worker", "worker"]
        for ln in lines:
            assert set(ln) == {"name", "host", "port", "role", "nodeID", "apiToken", "readOnlyToken", "pairingCode"}
            assert (ln["apiToken"], ln["readOnlyToken"], ln["pairingCode"]) == ("csk_fixedfull", "csk_fixedro",
                                                                                "123456")
        r = requests.post(f"http://127.0.0.1:{base + 2}/rpc/ListVMs", json={"apiToken": "csk_fixedfull"}, timeout=5)
        assert r.status_code == 200 and len(r.json()["vms"]) == 2
        r = requests.post(f"http://127.0.0.1:{base}/rpc/StartVM", json={"apiToken": "csk_fixedro", "vmID": "x"},
                          timeout=5)
        assert r.status_code == 403
        proc.send_signal(sig)
        assert proc.wait(timeout=10) == 0
        with pytest.raises(requests.exceptions.ConnectionError):
            requests.post(f"http://127.0.0.1:{base}/rpc/ListVMs", json={"apiToken": "csk_fixedfull"}, timeout=2)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_cli_rejects_bad_arguments():
    r = subprocess.run([sys.executable, "-m", "fleetsim", "--pairing-code", "12ab56"], capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 2 and "6 digits" in r.stderr


def test_cli_reports_a_port_in_use():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        r = subprocess.run([sys.executable, "-m", "fleetsim", "--port", str(port)], capture_output=True, text=True,
                           timeout=30)
    assert r.returncode == 1 and "cannot listen" in r.stderr


def fingerprint(fleet: SimFleet) -> list:
    out = []
    for n in fleet.nodes:
        st = n.state
        out.append((n.name, n.node_id, n.api_token, n.readonly_token, n.pairing_code, st.machine_model,
                    [(v.id, v.name, v.state, v.cpu_count, v.memory_mb, v.intent) for v in st.vms.values()],
                    sorted(t["name"] for t in st.templates.values())))
    return out


def test_the_same_seed_gives_the_same_fleet():
    a = SimFleet(nodes=4, vms_per_node=5, seed=42)
    b = SimFleet(nodes=4, vms_per_node=5, seed=42)
    c = SimFleet(nodes=4, vms_per_node=5, seed=43)
    assert fingerprint(a) == fingerprint(b)
    assert fingerprint(a) != fingerprint(c)
    names = [n.name for n in a.nodes]
    assert len(set(names)) == 4 and len({v for n in a.nodes for v in n.state.vms}) == 20


def test_ports_are_consecutive_from_the_base_port():
    base = free_port_block(3)
    with SimFleet(nodes=3, port=base, vms_per_node=0) as fleet:
        assert [n.port for n in fleet.nodes] == [base, base + 1, base + 2]
        assert all(requests.post(f"http://127.0.0.1:{n.port}/rpc/ListVMs", json={"apiToken": n.api_token},
                                 timeout=5).json() == {"vms": []} for n in fleet.nodes)


def test_a_large_fleet_starts_fast_and_answers_everywhere():
    t0 = time.monotonic()
    with SimFleet(nodes=200, vms_per_node=20) as fleet:
        assert time.monotonic() - t0 < 5
        with requests.Session() as s:
            for n in fleet.nodes[::20]:
                assert len(s.post(f"http://127.0.0.1:{n.port}/rpc/ListVMs", json={"apiToken": n.api_token},
                                  timeout=5).json()["vms"]) == 20
        overview = s.post(f"http://127.0.0.1:{fleet.manager.port}/rpc/GetFleetOverview",
                          json={"apiToken": fleet.manager.api_token}, timeout=10).json()["overview"]
        assert overview["stats"]["totalNodes"] == 200 and overview["stats"]["totalVMs"] == 4000
