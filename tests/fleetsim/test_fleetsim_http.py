"""The wire as a raw client sees it: status codes, bodies, keep-alive, and every fault mode."""

from __future__ import annotations

import json
import socket
import time

import pytest
import requests
from fleetsim import FAULT_MODES, SimFleet


def url(node, method: str = "ListVMs") -> str:
    return f"http://{node.host}:{node.port}/rpc/{method}"


def raw_exchange(node, payload: bytes, read_until_closed: bool = False, timeout: float = 2.0) -> bytes:
    with socket.create_connection((node.host, node.port), timeout=timeout) as s:
        s.sendall(payload)
        chunks = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                data = s.recv(65536)
            except TimeoutError:
                break
            if not data:
                break
            chunks.append(data)
            if not read_until_closed and b"".join(chunks).count(b"HTTP/1.1 ") >= payload.count(b"POST "):
                body = b"".join(chunks)
                if body.endswith(b"}") or body.endswith(b"]"):
                    break
        return b"".join(chunks)


def post(token: str, body: dict | None = None) -> dict:
    return {"apiToken": token, **(body or {})}


# ------------------------------------------------------------------ plain HTTP behaviour

def test_unknown_method_is_404_json(node):
    r = requests.post(url(node, "DoesNotExist"), json=post(node.api_token), timeout=5)
    assert r.status_code == 404 and r.json() == {"error": "Unknown method: DoesNotExist"}
    r = requests.get(f"http://{node.host}:{node.port}/elsewhere", timeout=5)
    assert r.status_code == 404 and "error" in r.json()


def test_get_on_an_rpc_is_405(node):
    r = requests.get(url(node), timeout=5)
    assert r.status_code == 405 and "POST" in r.json()["error"]


def test_bad_bodies_get_a_clear_json_error(node):
    r = requests.post(url(node), data=b"{not json", headers={"Content-Type": "application/json"}, timeout=5)
    assert r.status_code == 400 and r.json() == {"success": False, "error": "Request body is not valid JSON"}
    r = requests.post(url(node), json=[1, 2], timeout=5)
    assert r.status_code == 400 and r.json()["success"] is False and "JSON object" in r.json()["error"]


@pytest.mark.parametrize("method, fields, needle", [
    ("StartVM", {}, "Missing required field 'vmID'"),
    ("StartVM", {"vmID": 42}, "Field 'vmID' must be a string"),
    ("StartVM", {"vmID": ["x"]}, "must be a string"),
    ("StartVM", {"vmID": "nope"}, "VM not found"),
    ("RenameVM", {"vmID": "nope"}, "VM not found"),
    ("CloneVM", {"newName": "x"}, "vmID"),
    ("GetTasks", {"includeCompleted": "yes"}, "true or false"),
    ("CleanupVMs", {"force": 1}, "true or false"),
    ("GetTemplate", {}, "templateID or templateName"),
    ("UpdateVMSettings", {"vmID": "nope", "cpuCount": 2}, "VM not found"),
    ("GetIPSWInfo", {"path": 7}, "must be a string"),
    ("PullOCIImageOnNode", {"requestID": "r", "imageReference": "a/b", "credentials": "x"}, "credentials"),
])
def test_wrong_shapes_in_requests_are_success_false_not_a_crash(node, method, fields, needle):
    r = requests.post(url(node, method), json=post(node.api_token, fields), timeout=5)
    assert r.status_code == 200
    body = r.json()
    assert body["success"] is False and needle in body["error"], body


def test_keep_alive_and_pipelining_answer_in_order_on_one_connection(node):
    def req(method: str) -> bytes:
        body = json.dumps(post(node.api_token)).encode()
        return (f"POST /rpc/{method} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n\r\n").encode() + body

    data = raw_exchange(node, req("GetNodeInfo") + req("ListVMs") + req("GetNodeStats"))
    parts = data.split(b"HTTP/1.1 200 OK\r\n")[1:]
    assert len(parts) == 3
    assert b'"fleetVersion"' in parts[0] and b'"vms"' in parts[1] and b'"cpuUsagePercent"' in parts[2]
    assert all(b"Connection: keep-alive" in p for p in parts)


def test_a_session_reuses_one_connection(node):
    with requests.Session() as s:
        for _ in range(5):
            assert s.post(url(node), json=post(node.api_token), timeout=5).status_code == 200
    # One connection for five calls: the node saw them all on one socket (no new accept in between).
    assert len([m for _, m in node.received if m == "ListVMs"]) == 5


def test_connection_close_and_http10_close_after_the_answer(node):
    body = json.dumps(post(node.api_token)).encode()
    for version, extra in (("HTTP/1.1", "Connection: close\r\n"), ("HTTP/1.0", "")):
        head = f"POST /rpc/ListVMs {version}\r\nContent-Length: {len(body)}\r\n{extra}\r\n".encode()
        data = raw_exchange(node, head + body, read_until_closed=True)
        assert data.startswith(b"HTTP/1.1 200 OK") and b"Connection: close" in data


def test_chunked_bodies_and_garbage_request_lines_are_refused(node):
    data = raw_exchange(node, b"POST /rpc/ListVMs HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
                        read_until_closed=True)
    assert data.startswith(b"HTTP/1.1 411")
    data = raw_exchange(node, b"HELLO\r\n\r\n", read_until_closed=True)
    assert data.startswith(b"HTTP/1.1 400")


def test_expect_100_continue_is_answered(node):
    body = json.dumps(post(node.api_token)).encode()
    with socket.create_connection((node.host, node.port), timeout=2) as s:
        s.sendall(f"POST /rpc/GetNodeInfo HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: {len(body)}\r\n\r\n"
                  .encode())
        assert s.recv(100) == b"HTTP/1.1 100 Continue\r\n\r\n"
        s.sendall(body)
        assert s.recv(65536).startswith(b"HTTP/1.1 200 OK")


def test_received_records_the_rpcs(node):
    requests.post(url(node, "GetNodeInfo"), json=post(node.api_token), timeout=5)
    assert node.received[-1][1] == "GetNodeInfo" and abs(node.received[-1][0] - time.time()) < 5


# ------------------------------------------------------------------ faults

def test_down_refuses_connections_and_coming_back_reopens_the_same_port(node):
    port = node.port
    with requests.Session() as s:
        assert s.post(url(node), json=post(node.api_token), timeout=5).ok
        node.set_faults("down")
        with pytest.raises(requests.exceptions.ConnectionError):
            s.post(url(node), json=post(node.api_token), timeout=2)
        with pytest.raises(requests.exceptions.ConnectionError):
            requests.post(url(node), json=post(node.api_token), timeout=2)
        node.clear_faults()
        assert node.port == port
        assert s.post(url(node), json=post(node.api_token), timeout=5).ok


def test_hang_accepts_and_never_answers(node):
    node.set_faults("hang")
    t0 = time.monotonic()
    with pytest.raises(requests.exceptions.ReadTimeout):
        requests.post(url(node), json=post(node.api_token), timeout=(1, 0.3))
    assert time.monotonic() - t0 < 1.5
    node.clear_faults()
    assert requests.post(url(node), json=post(node.api_token), timeout=5).ok


@pytest.mark.parametrize("mode, status", [("http_500", 500), ("http_502", 502), ("http_503", 503),
                                          ("http_403", 403)])
def test_http_error_faults(node, mode, status, published):
    node.set_faults(mode)
    r = requests.post(url(node), json=post(node.api_token), timeout=5)
    assert r.status_code == status
    if status == 403:
        assert "error" in r.json()
    with pytest.raises(published.FleetError):
        published.FleetClient(node.host, api_token=node.api_token, port=node.port, timeout=5).list_vms()


def test_garbage_is_a_200_that_is_not_json(node):
    node.set_faults("garbage")
    r = requests.post(url(node), json=post(node.api_token), timeout=5)
    assert r.status_code == 200
    with pytest.raises(ValueError):
        r.json()


def test_wrong_shape_is_json_of_the_wrong_shape(node):
    node.set_faults("wrong_shape")
    assert requests.post(url(node), json=post(node.api_token), timeout=5).json() == {"vms": "oops"}
    assert isinstance(requests.post(url(node, "GetNodeInfo"), json=post(node.api_token), timeout=5).json(), list)


def test_truncated_announces_more_than_it_sends_then_closes(node):
    node.set_faults("truncated")
    with pytest.raises(requests.exceptions.RequestException):
        requests.post(url(node), json=post(node.api_token), timeout=5)


def test_huge_streams_a_64_mib_body(node):
    node.set_faults("huge")
    with requests.post(url(node), json=post(node.api_token), timeout=5, stream=True) as r:
        assert r.status_code == 200 and int(r.headers["Content-Length"]) == 64 * 1024 * 1024
        first = r.raw.read(1024 * 1024)
        assert len(first) == 1024 * 1024 and first.startswith(b'{"pad":"')
    node.clear_faults()
    assert requests.post(url(node), json=post(node.api_token), timeout=5).ok


def test_latency_is_added(node):
    node.set_faults(latency_ms=300)
    t0 = time.monotonic()
    assert requests.post(url(node), json=post(node.api_token), timeout=5).ok
    assert time.monotonic() - t0 >= 0.3


def test_rate_affects_a_seeded_share_of_requests(sim_fleet):
    def pattern() -> list[int]:
        fleet = sim_fleet(nodes=1, seed=7)
        n = fleet.nodes[0]
        n.set_faults("http_500", rate=0.5)
        with requests.Session() as s:
            return [s.post(url(n), json=post(n.api_token), timeout=5).status_code for _ in range(40)]

    first, second = pattern(), pattern()
    assert first == second
    assert 8 <= first.count(500) <= 32 and set(first) == {200, 500}


def test_bad_fault_settings_are_refused(node):
    for kwargs in ({"mode": "explode"}, {"mode": "http_500", "rate": 2}, {"latency_ms": -1}):
        with pytest.raises(ValueError):
            node.set_faults(**kwargs)
    assert set(FAULT_MODES) == {"down", "hang", "http_500", "http_502", "http_503", "http_403", "garbage",
                                "wrong_shape", "truncated", "huge"}


# ------------------------------------------------------------------ control endpoint

def test_control_endpoint_sets_shows_and_clears_faults(node):
    base = f"http://{node.host}:{node.port}/_sim"
    r = requests.post(f"{base}/faults", json={"mode": "http_503", "rate": 1.0, "latency_ms": 0}, timeout=5)
    assert r.status_code == 200 and r.json()["faults"]["mode"] == "http_503"
    assert requests.post(url(node), json=post(node.api_token), timeout=5).status_code == 503
    assert requests.get(f"{base}/state", timeout=5).json()["faults"]["mode"] == "http_503"
    assert requests.delete(f"{base}/faults", timeout=5).ok
    assert requests.post(url(node), json=post(node.api_token), timeout=5).ok
    assert requests.post(f"{base}/faults", json={"mode": "bogus"}, timeout=5).status_code == 400


def test_state_endpoint_shows_the_node_without_token_strings(node):
    state = requests.get(f"http://{node.host}:{node.port}/_sim/state", timeout=5).json()
    assert state["name"] == node.name and state["nodeID"] == node.node_id and len(state["vms"]) == 4
    assert state["pairingCode"] == node.pairing_code
    assert node.api_token not in json.dumps(state) and node.readonly_token not in json.dumps(state)


def test_the_control_endpoint_can_take_its_own_node_down(node):
    r = requests.post(f"http://{node.host}:{node.port}/_sim/faults", json={"mode": "down"}, timeout=5)
    assert r.status_code == 200
    time.sleep(0.2)
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.post(url(node), json=post(node.api_token), timeout=2)
    node.clear_faults()
    assert requests.post(url(node), json=post(node.api_token), timeout=5).ok


def test_fleet_control_port_revives_a_down_node():
    with SimFleet(nodes=2, vms_per_node=1, control_port=0) as fleet:
        ctl = f"http://127.0.0.1:{fleet.control_port}/_sim"
        worker = fleet.nodes[1]
        assert requests.post(f"{ctl}/faults", json={"node": 1, "mode": "down"}, timeout=5).ok
        with pytest.raises(requests.exceptions.ConnectionError):
            requests.post(url(worker), json=post(worker.api_token), timeout=2)
        state = requests.get(f"{ctl}/state", timeout=5).json()
        assert [n["connected"] for n in state["nodes"]] == [True, False]
        assert requests.delete(f"{ctl}/faults", params={"node": worker.name}, timeout=5).ok
        assert requests.post(url(worker), json=post(worker.api_token), timeout=5).ok
        assert requests.post(f"{ctl}/faults", json={"node": "nope", "mode": "down"}, timeout=5).status_code == 404
