"""HTTP side of fleetsim: one asyncio event loop, one listening socket per simulated node.

A hand-written HTTP/1.1 parser on asyncio.Protocol (keep-alive, Content-Length bodies, pipelining in
order); each response goes out as one transport.write of headers+body, with TCP_NODELAY set, so a
keep-alive client never waits on Nagle/delayed-ACK. No thread per connection: the loop runs in one
background thread; the Python control API called from other threads takes the fleet lock (state) and
hands socket work to the loop with run_coroutine_threadsafe.
"""

from __future__ import annotations

import asyncio
import collections
import json
import random
import socket
import threading
import time
from collections.abc import Awaitable
from typing import Any
from urllib.parse import parse_qs

from .state import METHODS, Deferred, NodeConfig, NodeState

FAULT_MODES = ("down", "hang", "http_500", "http_502", "http_503", "http_403", "garbage", "wrong_shape",
               "truncated", "huge")
HUGE_BYTES = 64 * 1024 * 1024
MAX_HEADER_BYTES = 64 * 1024
MAX_BODY_BYTES = 16 * 1024 * 1024
RECEIVED_KEPT = 10_000

_REASONS = {200: "OK", 400: "Bad Request", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed",
            411: "Length Required", 413: "Payload Too Large", 431: "Request Header Fields Too Large",
            500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable"}

# What a list-returning method's body key is (for the wrong_shape fault).
_LIST_KEYS = {"ListVMs": "vms", "GetTasks": "tasks", "ListTemplates": "templates", "ListSnapshots": "snapshots",
              "ListRemoteIPSWs": "ipsws", "ListRemoteOCIImages": "images", "GetFleetEvents": "events",
              "ListAPITokens": "tokens", "ListSharedFolders": "folders"}


def _response(status: int, body: bytes, content_type: str = "application/json", keep_alive: bool = True,
              content_length: int | None = None) -> bytes:
    length = len(body) if content_length is None else content_length
    head = (f"HTTP/1.1 {status} {_REASONS.get(status, 'Unknown')}\r\nServer: fleetsim\r\n"
            f"Content-Type: {content_type}\r\nContent-Length: {length}\r\n"
            f"Connection: {'keep-alive' if keep_alive else 'close'}\r\n\r\n")
    return head.encode("latin-1") + body


def _json(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


class Faults:
    def __init__(self, mode: str | None = None, rate: float = 1.0, latency_ms: float = 0.0) -> None:
        self.mode = mode
        self.rate = rate
        self.latency_ms = latency_ms

    def to_dict(self) -> dict[str, Any]:
        return {"mode": self.mode, "rate": self.rate, "latency_ms": self.latency_ms}


def validate_faults(mode: Any, rate: Any, latency_ms: Any) -> tuple[str | None, float, float]:
    if mode is not None and mode not in FAULT_MODES:
        raise ValueError(f"unknown fault mode {mode!r} (expected one of: {', '.join(FAULT_MODES)}, or null)")
    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0.0 <= rate <= 1.0:
        raise ValueError("rate must be a number between 0 and 1")
    if isinstance(latency_ms, bool) or not isinstance(latency_ms, (int, float)) or not 0 <= latency_ms <= 600_000:
        raise ValueError("latency_ms must be a number of milliseconds between 0 and 600000")
    return mode, float(rate), float(latency_ms)


class _Conn(asyncio.Protocol):
    """One client connection. Requests are answered strictly in order."""

    def __init__(self, fleet: SimFleet, node: SimNode | None) -> None:
        self.fleet = fleet
        self.node = node
        self.buf = bytearray()
        self.busy = False
        self.closed = False
        self.continued = False
        self.transport: asyncio.Transport | None = None
        self._writable = asyncio.Event()
        self._writable.set()

    # ---- asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass
        if self.node is not None:
            self.node._conns.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._writable.set()
        if self.node is not None:
            self.node._conns.discard(self)

    def pause_writing(self) -> None:
        self._writable.clear()

    def resume_writing(self) -> None:
        self._writable.set()

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if not self.busy:
            self._process()

    # ---- parsing

    def _close_with(self, status: int, message: str) -> None:
        assert self.transport is not None
        self.transport.write(_response(status, _json({"success": False, "error": message}), keep_alive=False))
        self.transport.close()
        self.closed = True

    def _process(self) -> None:
        while not self.closed and not self.busy:
            idx = self.buf.find(b"\r\n\r\n")
            if idx < 0:
                if len(self.buf) > MAX_HEADER_BYTES:
                    self._close_with(431, "Request headers too large")
                return
            head = bytes(self.buf[:idx]).decode("latin-1")
            lines = head.split("\r\n")
            parts = lines[0].split(" ")
            if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
                self._close_with(400, "Malformed request line")
                return
            verb, target, version = parts
            headers: dict[str, str] = {}
            for line in lines[1:]:
                name, sep, value = line.partition(":")
                if sep:
                    headers[name.strip().lower()] = value.strip()
            if "chunked" in headers.get("transfer-encoding", "").lower():
                self._close_with(411, "Chunked request bodies are not supported; send Content-Length")
                return
            try:
                length = int(headers.get("content-length", "0"))
                if length < 0:
                    raise ValueError
            except ValueError:
                self._close_with(400, "Invalid Content-Length")
                return
            if length > MAX_BODY_BYTES:
                self._close_with(413, "Request body too large")
                return
            end = idx + 4 + length
            if len(self.buf) < end:
                if headers.get("expect", "").lower() == "100-continue" and not self.continued:
                    self.continued = True  # curl waits for this before sending a larger body
                    assert self.transport is not None
                    self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
                return
            self.continued = False
            body = bytes(self.buf[idx + 4:end])
            del self.buf[:end]
            conn_hdr = headers.get("connection", "").lower()
            keep_alive = (conn_hdr != "close") if version == "HTTP/1.1" else (conn_hdr == "keep-alive")
            result = self.fleet._route(self, verb, target, body, keep_alive)
            if isinstance(result, bytes):
                self._write(result, keep_alive)
            else:
                self.busy = True
                asyncio.ensure_future(self._finish(result, keep_alive))

    def _write(self, data: bytes, keep_alive: bool) -> None:
        if self.closed or self.transport is None:
            return
        if not keep_alive:
            data = data.replace(b"Connection: keep-alive\r\n", b"Connection: close\r\n", 1)
        self.transport.write(data)
        if not keep_alive:
            self.transport.close()
            self.closed = True

    async def _finish(self, pending: Awaitable[bytes | None], keep_alive: bool) -> None:
        try:
            data = await pending
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug here must not kill the connection silently
            data = _response(500, _json({"success": False, "error": f"fleetsim internal error: {exc}"}))
        if data is None:  # the handler wrote (or deliberately never writes) the answer itself
            return
        self._write(data, keep_alive)
        self.busy = False
        if not self.closed:
            self._process()

    # ---- streaming (huge fault)

    async def stream(self, head: bytes, total: int) -> None:
        assert self.transport is not None
        self.transport.write(head)
        prefix = b'{"pad":"'
        chunk = b"x" * (1024 * 1024)
        sent = 0
        body_len = total - len(prefix) - 2
        self.transport.write(prefix)
        while sent < body_len and not self.closed:
            n = min(len(chunk), body_len - sent)
            self.transport.write(chunk if n == len(chunk) else chunk[:n])
            sent += n
            await self._writable.wait()
        if not self.closed:
            self.transport.write(b'"}')


class SimNode:
    """One simulated node: its state, its listener, its faults. Attributes per the contract."""

    def __init__(self, fleet: SimFleet, state: NodeState, seed: int) -> None:
        self.fleet = fleet
        self.state = state
        self.host = state.host
        self.port = state.port
        self.received: collections.deque[tuple[float, str]] = collections.deque(maxlen=RECEIVED_KEPT)
        self.faults = Faults()
        self._fault_rng = random.Random(f"fleetsim-faults-{seed}-{state.index}")
        self._server: asyncio.base_events.Server | None = None
        self._conns: set[_Conn] = set()

    @property
    def index(self) -> int:
        return self.state.index

    @property
    def name(self) -> str:
        return self.state.name

    @property
    def role(self) -> str:
        return self.state.role

    @property
    def node_id(self) -> str:
        return self.state.node_id

    @property
    def api_token(self) -> str:
        return self.state.api_token

    @property
    def readonly_token(self) -> str:
        return self.state.readonly_token

    @property
    def pairing_code(self) -> str:
        """The current code; it changes after each accepted pairing (see README)."""
        return self.state.pairing_code

    @property
    def is_down(self) -> bool:
        return self.faults.mode == "down"

    def describe(self) -> dict[str, Any]:
        """The CLI's JSON line for this node (contains the node's secrets: for the operator only)."""
        return {"name": self.name, "host": self.host, "port": self.port, "role": self.role, "nodeID": self.node_id,
                "apiToken": self.api_token, "readOnlyToken": self.readonly_token, "pairingCode": self.pairing_code}

    def __repr__(self) -> str:
        return f"<SimNode {self.name} {self.role} {self.host}:{self.port}>"

    # ---- faults (thread-safe; callable from any thread, including the loop's)

    def set_faults(self, mode: str | None = None, rate: float = 1.0, latency_ms: float = 0) -> None:
        mode, rate, latency_ms = validate_faults(mode, rate, latency_ms)
        self.fleet._call_on_loop(self._apply_faults(Faults(mode, rate, latency_ms)))

    def clear_faults(self) -> None:
        self.set_faults(None)

    async def _apply_faults(self, faults: Faults) -> None:
        was_down = self.faults.mode == "down"
        with self.fleet.lock:
            self.faults = faults
        if faults.mode == "down" and not was_down:
            await self._go_down()
        elif faults.mode != "down" and was_down:
            await self._come_up()

    async def _go_down(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for conn in list(self._conns):
            if conn.transport is not None:
                conn.transport.abort()
        with self.fleet.lock:
            self.state.connected = False
            self.state.disconnected_at = time.time()
            mgr = self.fleet.manager_state
            if mgr is not None and mgr is not self.state:
                mgr.emit("node_disconnected", f"Worker '{self.name}' disconnected", node_name=self.name,
                         node_id=self.node_id)

    async def _come_up(self) -> None:
        await self._listen()
        with self.fleet.lock:
            self.state.connected = True
            mgr = self.fleet.manager_state
            if mgr is not None and mgr is not self.state:
                mgr.emit("node_connected", f"Worker '{self.name}' connected", node_name=self.name,
                         node_id=self.node_id)

    async def _listen(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: _Conn(self.fleet, self), self.host, self.port,
                                                reuse_address=True, backlog=1024)
        if self.port == 0:
            self.port = self.state.port = self._server.sockets[0].getsockname()[1]

    def roll_fault(self) -> str | None:
        f = self.faults
        if f.mode is None or f.mode == "down":
            return None
        if f.rate >= 1.0 or self._fault_rng.random() < f.rate:
            return f.mode
        return None


class SimFleet:
    """A fleet of simulated nodes served from one asyncio loop in a background thread."""

    def __init__(self, nodes: int = 3, host: str = "127.0.0.1", port: int = 0, vms_per_node: int = 4,
                 api_token: str | None = None, readonly_token: str | None = None, pairing_code: str | None = None,
                 latency_ms: float = 0, seed: int = 1, transition_seconds: float = 1.0,
                 task_seconds: float = 10.0, control_port: int | None = None) -> None:
        if nodes < 1:
            raise ValueError("nodes must be at least 1")
        if pairing_code is not None and (len(pairing_code) != 6 or not pairing_code.isdigit()):
            raise ValueError("pairing_code must be 6 digits")
        self.host = host
        self.base_port = port
        self.latency_ms = float(latency_ms)
        self.seed = seed
        self.control_port = control_port
        self.lock = threading.RLock()
        config = NodeConfig(transition_seconds=transition_seconds, task_seconds=task_seconds)
        self.nodes: list[SimNode] = []
        for i in range(nodes):
            st = NodeState(i, seed, config, vms_per_node, api_token, readonly_token, pairing_code, host,
                           port + i if port else 0)
            self.nodes.append(SimNode(self, st, seed))
        states = [n.state for n in self.nodes]
        manager = states[0]
        manager.members = states
        for st in states[1:]:
            st.manager = manager
            manager.emit("node_connected", f"Worker '{st.name}' connected", node_name=st.name,
                         node_id=st.node_id)
        self.manager_state: NodeState | None = manager
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._control_server: asyncio.base_events.Server | None = None
        self._started = False

    # ---- lifecycle

    def start(self) -> SimFleet:
        if self._started:
            return self
        _raise_fd_limit(len(self.nodes) * 3 + 256)
        loop = asyncio.new_event_loop()
        self._loop = loop
        ready: threading.Event = threading.Event()
        error: list[BaseException] = []

        def run() -> None:
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self._listen_all())
            except BaseException as exc:  # reported to start()'s caller
                error.append(exc)
                loop.close()
                ready.set()
                return
            ready.set()
            loop.run_forever()
            # Stopped: cancel whatever is left (hung and streaming answers), then close.
            pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
            for t in pending:
                t.cancel()
            if pending:
                loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.close()

        self._thread = threading.Thread(target=run, name="fleetsim-loop", daemon=True)
        self._thread.start()
        ready.wait()
        if error:
            self._thread.join()
            self._loop = None
            raise error[0]
        self._started = True
        return self

    async def _listen_all(self) -> None:
        try:
            for node in self.nodes:
                if node.faults.mode == "down":
                    continue  # set down before start: it stays closed until its faults are cleared
                await node._listen()
            if self.control_port is not None:
                loop = asyncio.get_running_loop()
                self._control_server = await loop.create_server(lambda: _Conn(self, None), self.host,
                                                                self.control_port, reuse_address=True)
                if self.control_port == 0:
                    self.control_port = self._control_server.sockets[0].getsockname()[1]
        except OSError:
            await self._close_all()
            raise

    async def _close_all(self) -> None:
        for node in self.nodes:
            if node._server is not None:
                node._server.close()
                node._server = None
            for conn in list(node._conns):
                if conn.transport is not None:
                    conn.transport.abort()
        if self._control_server is not None:
            self._control_server.close()
            self._control_server = None

    def stop(self) -> None:
        if not self._started or self._loop is None:
            return
        self._started = False
        loop = self._loop
        try:
            asyncio.run_coroutine_threadsafe(self._close_all(), loop).result(timeout=10)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            if self._thread is not None:
                self._thread.join(timeout=10)
            self._loop = None

    def __enter__(self) -> SimFleet:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def manager(self) -> SimNode:
        return self.nodes[0]

    def node(self, key: int | str) -> SimNode:
        """A node by index, name or node id."""
        if isinstance(key, int):
            return self.nodes[key]
        for n in self.nodes:
            if key in (n.name, n.node_id, str(n.index)):
                return n
        raise KeyError(f"no node {key!r}")

    def _call_on_loop(self, coro: Any) -> None:
        loop = self._loop
        if loop is None or not self._started:
            # Not serving (yet): there are no sockets to open or close, only the setting to keep.
            faults = coro.cr_frame.f_locals["faults"]
            node = coro.cr_frame.f_locals["self"]
            coro.close()
            node.faults = faults
            node.state.connected = faults.mode != "down"
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            asyncio.ensure_future(coro)
        else:
            asyncio.run_coroutine_threadsafe(coro, loop).result(timeout=10)

    # ---- routing

    def _route(self, conn: _Conn, verb: str, target: str, body: bytes,
               keep_alive: bool) -> bytes | Awaitable[bytes | None]:
        path, _, query = target.partition("?")
        node = conn.node
        if path.startswith("/rpc/") and node is not None:
            method = path[5:]
            node.received.append((time.time(), method))
            fault = node.roll_fault()
            latency = (self.latency_ms + node.faults.latency_ms) / 1000.0
            if fault is None and latency <= 0:
                return self._rpc(node, conn, verb, method, body)
            return self._rpc_slow(node, conn, verb, method, body, fault, latency, keep_alive)
        if path.startswith("/_sim/"):
            return self._control(conn, verb, path, query, body)
        return _response(404, _json({"error": f"Not found: {path} (RPCs are POST /rpc/<Method>)"}))

    def _rpc(self, node: SimNode, conn: _Conn, verb: str, method: str, body: bytes) -> bytes | Awaitable[bytes | None]:
        if method not in METHODS:
            return _response(404, _json({"error": f"Unknown method: {method}"}))
        if verb != "POST":
            return _response(405, _json({"error": f"Use POST for /rpc/{method}"}))
        try:
            payload = json.loads(body) if body else {}
        except (ValueError, UnicodeDecodeError):
            return _response(400, _json({"success": False, "error": "Request body is not valid JSON"}))
        if not isinstance(payload, dict):
            return _response(400, _json({"success": False, "error": "Request body must be a JSON object"}))
        with self.lock:
            try:
                result = node.state.handle(method, payload)
            except Exception as exc:  # a simulator bug answers 500 rather than dropping the connection
                return _response(500, _json({"success": False, "error": f"fleetsim internal error: {exc!r}"}))
        if isinstance(result, Deferred):
            return self._deferred(result)
        status, obj = result
        return _response(status, _json(obj))

    async def _deferred(self, d: Deferred) -> bytes:
        await asyncio.sleep(d.seconds)
        return _response(200, _json(d.payload))

    async def _rpc_slow(self, node: SimNode, conn: _Conn, verb: str, method: str, body: bytes, fault: str | None,
                        latency: float, keep_alive: bool) -> bytes | None:
        if latency > 0:
            await asyncio.sleep(latency)
        if fault is None:
            result = self._rpc(node, conn, verb, method, body)
            return result if isinstance(result, bytes) else await result
        if fault == "hang":
            return None  # never answer; the connection stays busy until the client gives up
        if fault in ("http_500", "http_502", "http_503", "http_403"):
            status = int(fault[5:])
            if status in (500, 403):
                text = "Access denied (simulated fault)" if status == 403 else "Internal server error (simulated)"
                return _response(status, _json({"error": text}))
            return _response(status, f"<html><body><h1>{status} {_REASONS[status]}</h1></body></html>".encode(),
                             "text/html")
        if fault == "garbage":
            return _response(200, b"<html>\x00\xff\xfe this is not JSON {{{ \x01 garbage", "application/json")
        if fault == "wrong_shape":
            key = _LIST_KEYS.get(method)
            return _response(200, _json({key: "oops"} if key else ["unexpected", "shape", 42]))
        if fault == "truncated":
            full = _json({"vms": [], "note": "this body is cut short: the connection closes early" * 4})
            data = _response(200, full[: len(full) // 2], content_length=len(full), keep_alive=False)
            conn._write(data, keep_alive=False)
            return None
        if fault == "huge":
            head = _response(200, b"", content_length=HUGE_BYTES)
            await conn.stream(head, HUGE_BYTES)
            return b""
        raise AssertionError(fault)

    # ---- control endpoint

    def _control(self, conn: _Conn, verb: str, path: str, query: str, body: bytes) -> bytes | Awaitable[bytes]:
        try:
            payload = json.loads(body) if body else {}
        except ValueError:
            return _response(400, _json({"error": "body is not valid JSON"}))
        if not isinstance(payload, dict):
            return _response(400, _json({"error": "body must be a JSON object"}))
        params = {k: v[-1] for k, v in parse_qs(query).items()}
        target: list[SimNode]
        if conn.node is not None:
            target = [conn.node]
        else:
            key = payload.get("node", params.get("node"))
            if key is None or key == "all":
                target = list(self.nodes)
            else:
                try:
                    target = [self.node(int(key) if isinstance(key, int) or str(key).isdigit() else str(key))]
                except (KeyError, IndexError):
                    return _response(404, _json({"error": f"no such node: {key}"}))
        if path == "/_sim/state":
            if verb != "GET":
                return _response(405, _json({"error": "use GET"}))
            with self.lock:
                states = [dict(n.state.snapshot_state(), faults=n.faults.to_dict()) for n in target]
            return _response(200, _json(states[0] if conn.node is not None else {"nodes": states}))
        if path == "/_sim/faults":
            if verb == "GET":
                return _response(200, _json({n.name: n.faults.to_dict() for n in target}))
            if verb == "DELETE":
                mode, rate, latency = None, 1.0, 0.0
            elif verb == "POST":
                try:
                    mode, rate, latency = validate_faults(payload.get("mode"), payload.get("rate", 1.0),
                                                          payload.get("latency_ms", 0))
                except ValueError as exc:
                    return _response(400, _json({"error": str(exc)}))
            else:
                return _response(405, _json({"error": "use GET, POST or DELETE"}))
            return self._apply_control_faults(conn, target, Faults(mode, rate, latency))
        return _response(404, _json({"error": f"Not found: {path}"}))

    async def _apply_control_faults(self, conn: _Conn, target: list[SimNode], faults: Faults) -> bytes:
        # Answer first: going down closes this very connection when it is the node's own endpoint.
        answer = _response(200, _json({"ok": True, "nodes": [n.name for n in target], "faults": faults.to_dict()}))
        going_down_self = [n for n in target if faults.mode == "down" and n is conn.node]
        others = [n for n in target if n not in going_down_self]
        for n in others:
            await n._apply_faults(Faults(faults.mode, faults.rate, faults.latency_ms))
        if going_down_self:
            loop = asyncio.get_running_loop()

            def later() -> None:
                for n in going_down_self:
                    asyncio.ensure_future(n._apply_faults(Faults("down", faults.rate, faults.latency_ms)))

            loop.call_later(0.01, later)
        return answer


def _raise_fd_limit(wanted: int) -> None:
    try:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft != resource.RLIM_INFINITY and soft < wanted:
            new = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
            resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
    except (ImportError, ValueError, OSError):
        pass
