"""State and RPC behaviour of one simulated CiderStack Fleet node.

Everything time-based is computed lazily from timestamps: a VM that is `starting` carries the time
at which it becomes `running`, a task carries its start time and duration. `settle()` applies what
is due before any answer is built, so an idle fleet of 10,000 VMs costs nothing.

All methods here are called with the fleet lock held (see server.py); they never block.
"""

from __future__ import annotations

import base64
import math
import random
import re
import time
import uuid
from bisect import insort
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from . import shell

MAX_ALIVE_VMS = 2  # Apple's licence: at most 2 macOS VMs at once per Mac.
ALIVE_STATES = ("starting", "running", "paused")  # what counts against MAX_ALIVE_VMS
INTENTS = ("interactive", "disposable", "ci", "persistent")
TEMPLATE_CATEGORIES = ("base", "dev", "cicd", "testing", "custom")
MAX_EVENTS = 2000
MANAGER_MAX_EVENTS = 5000
MAX_TASKS_KEPT = 200

MACHINES = [
    ("Mac16,10", 10, 32), ("Mac16,11", 14, 64), ("Mac14,3", 8, 24), ("Mac14,12", 12, 32),
    ("Mac15,14", 16, 64), ("Mac16,1", 10, 32), ("Mac14,13", 12, 96), ("Mac15,10", 12, 36),
]
HOST_OS = [("15.1", "24B83"), ("15.2", "24C101"), ("15.3.1", "24D70"), ("26.0", "25A354")]
GUEST_OS = [("14.7", "23H124"), ("15.0", "24A335"), ("15.1", "24B83"), ("15.2", "24C101"),
            ("15.3.1", "24D70")]
NAME_WORDS = ["cider", "apple", "pear", "quince", "crab", "russet", "gala", "fuji", "pippin", "bramley",
              "jazz", "honeycrisp", "braeburn", "cox", "empire", "jonagold"]
VM_ROLES = ["ci-runner", "dev", "build", "test", "xcode", "staging", "sandbox", "qa", "release", "lab"]

Reply = tuple[int, dict[str, Any]]


def iso(ts: float) -> str:
    ms = int((ts - math.floor(ts)) * 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + f".{ms:03d}Z"


class RpcError(Exception):
    """An error the node reports in the body: {"success": false, "error": message}."""


@dataclass
class Deferred:
    """An answer that is due only after `seconds` (ExecCommand's sleep); the server waits."""

    seconds: float
    payload: dict[str, Any]


@dataclass
class VM:
    id: str
    name: str
    state: str
    cpu_count: int
    memory_mb: int
    disk_gb: int
    os_version: str
    build_version: str
    ip_address: str
    created_at: float
    intent: str = "interactive"
    display_width: int = 1920
    display_height: int = 1080
    ttl_seconds: int | None = None
    expires_at: float | None = None
    target: str | None = None  # state reached at `until`
    until: float = 0.0
    recovery: bool = False
    snapshots: list[dict[str, Any]] = field(default_factory=list)
    shared_folders: list[dict[str, Any]] = field(default_factory=list)

    def to_wire(self) -> dict[str, Any]:
        return {
            "id": self.id, "name": self.name, "state": self.state, "cpuCount": self.cpu_count,
            "memoryMB": self.memory_mb, "diskSizeGB": self.disk_gb, "osVersion": self.os_version,
            "ipAddress": self.ip_address if self.state in ("running", "paused") else None,
        }


@dataclass
class Task:
    id: str
    type: str
    title: str
    started: float
    duration: float
    fail_at: float | None = None  # time at which it fails (None: it completes)
    error_message: str | None = None
    vm_id: str | None = None
    vm_name: str | None = None
    on_complete: Callable[[float], None] | None = None
    finalized: bool = False

    def end(self) -> float:
        return self.fail_at if self.fail_at is not None else self.started + self.duration

    def to_wire(self, now: float) -> dict[str, Any]:
        elapsed = now - self.started
        end = self.end()
        if now >= end:
            failed = self.fail_at is not None
            status = "failed" if failed else "completed"
            progress = round(min(100.0, (end - self.started) / self.duration * 100), 1) if failed else 100.0
            text = "Failed" if failed else "Done"
        else:
            progress = round(max(0.0, elapsed / self.duration * 100), 1)
            status = "pending" if elapsed < self.duration * 0.05 else "running"
            text = "Queued" if status == "pending" else f"{progress:.0f}% complete"
        out: dict[str, Any] = {
            "id": self.id, "type": self.type, "title": self.title, "status": status,
            "progress": progress, "progressText": text, "startedAt": iso(self.started),
            "completedAt": iso(end) if now >= end else None,
        }
        if self.vm_id:
            out["vmID"] = self.vm_id
        if self.vm_name:
            out["vmName"] = self.vm_name
        if status == "failed":
            out["errorMessage"] = self.error_message
        return out


@dataclass
class Token:
    id: str
    name: str
    token: str
    permissions: str
    created_at: float
    last_used_at: float | None = None

    def prefix(self) -> str:
        return self.token[:12]

    def summary(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "tokenPrefix": self.prefix(),
                "permissions": self.permissions, "createdAt": iso(self.created_at),
                "lastUsedAt": iso(self.last_used_at) if self.last_used_at else None}


@dataclass
class NodeConfig:
    transition_seconds: float = 1.0
    task_seconds: float = 10.0


# Method name -> (mutating, auth): auth is "any" (apiToken or callerNodeID), "node" (callerNodeID
# only: the token methods) or "none" (RequestPairing).
METHODS: dict[str, tuple[bool, str]] = {
    "GetNodeInfo": (False, "any"), "GetNodeStats": (False, "any"), "ListVMs": (False, "any"),
    "StartVM": (True, "any"), "StopVM": (True, "any"), "SuspendVM": (True, "any"),
    "StartVMRecovery": (True, "any"), "DeleteVM": (True, "any"), "CloneVM": (True, "any"),
    "RenameVM": (True, "any"), "CreateVMOnNode": (True, "any"), "GetVMSettings": (False, "any"),
    "UpdateVMSettings": (True, "any"), "ListSnapshots": (False, "any"), "CreateSnapshot": (True, "any"),
    "RestoreSnapshot": (True, "any"), "DeleteSnapshot": (True, "any"), "ExecCommand": (True, "any"),
    "ListTemplates": (False, "any"), "GetTemplate": (False, "any"), "CreateTemplateFromVM": (True, "any"),
    "DeleteTemplate": (True, "any"), "ListSharedFolders": (False, "any"), "AddSharedFolder": (True, "any"),
    "RemoveSharedFolder": (True, "any"), "SetSharedFolderEnabled": (True, "any"),
    "ListRemoteIPSWs": (False, "any"), "ListRemoteOCIImages": (False, "any"),
    "DownloadIPSWOnNode": (True, "any"), "GetIPSWInfo": (False, "any"), "PullOCIImageOnNode": (True, "any"),
    "PushImage": (True, "any"), "GetTasks": (False, "any"), "GetFleetOverview": (False, "any"),
    "GetFleetEvents": (False, "any"), "GetRemoteResources": (False, "any"),
    "GenerateAPIToken": (True, "node"), "RevokeAPIToken": (True, "node"), "ListAPITokens": (False, "node"),
    "Unpair": (True, "any"), "CleanupVMs": (True, "any"), "RequestPairing": (True, "none"),
}


def task_should_fail(reference: str) -> str | None:
    """The failure rule for pulls, downloads, pushes and OCI-based creation (documented in README).

    A reference or URL fails when it contains "fail" (any case), or when its registry/host ends with
    ".invalid" or contains "nonexistent". Returns the task's errorMessage, or None when it succeeds.
    """
    low = reference.lower()
    host = low.split("://", 1)[-1].split("/", 1)[0]
    if host.endswith(".invalid") or "nonexistent" in host:
        return f"Could not resolve host '{host}': no such registry or server"
    if "fail" in low:
        return f"Transfer of '{reference}' failed: server returned 500 (simulated failure)"
    return None


class _Body:
    """Typed access to the request body; every problem raises RpcError with a clear message."""

    def __init__(self, body: dict[str, Any]) -> None:
        self.body = body

    def str(self, key: str, required: bool = True, empty_ok: bool = False) -> str | None:
        v = self.body.get(key)
        if v is None:
            if required:
                raise RpcError(f"Missing required field '{key}'")
            return None
        if not isinstance(v, str):
            raise RpcError(f"Field '{key}' must be a string")
        if not empty_ok and not v.strip():
            raise RpcError(f"Field '{key}' must not be empty")
        return v

    def req_str(self, key: str) -> str:
        v = self.str(key)
        assert v is not None
        return v

    def int(self, key: str, required: bool = True, lo: int | None = None, hi: int | None = None) -> int | None:
        v = self.body.get(key)
        if v is None:
            if required:
                raise RpcError(f"Missing required field '{key}'")
            return None
        if isinstance(v, bool) or not isinstance(v, (int, float)) or (isinstance(v, float) and not v.is_integer()):
            raise RpcError(f"Field '{key}' must be an integer")
        iv = int(v)
        if lo is not None and iv < lo or hi is not None and iv > hi:
            raise RpcError(f"Field '{key}' must be between {lo} and {hi} (got {iv})")
        return iv

    def bool(self, key: str, default: bool | None = None) -> bool:
        v = self.body.get(key)
        if v is None:
            if default is None:
                raise RpcError(f"Missing required field '{key}'")
            return default
        if not isinstance(v, bool):
            raise RpcError(f"Field '{key}' must be true or false")
        return v


class NodeState:
    def __init__(self, index: int, seed: int, config: NodeConfig, vms_per_node: int,
                 api_token: str | None, readonly_token: str | None, pairing_code: str | None,
                 host: str, port: int) -> None:
        self.index = index
        self.rng = random.Random(f"fleetsim-{seed}-{index}")
        rng = self.rng
        self.config = config
        self.role = "manager" if index == 0 else "worker"
        word = NAME_WORDS[rng.randrange(len(NAME_WORDS))]
        self.name = f"{word}-{index:03d}" if index else f"{word}-manager"
        self.hostname = f"{self.name}.local"
        self.node_id = self._uuid()
        self.host = host
        self.port = port
        self.ip_address = f"10.{(index >> 8) & 255}.{index & 255}.{10 + rng.randrange(200)}"
        self.machine_model, self.cpu_cores, self.total_memory_gb = MACHINES[rng.randrange(len(MACHINES))]
        self.os_version, self.os_build = HOST_OS[rng.randrange(len(HOST_OS))]
        self.disk_total_gb = rng.choice([994.7, 1995.3, 3995.1])
        self.fleet_version = "1.4.2"
        self.disconnected_at = 0.0
        self.connected = True  # False while the node is "down" (the manager then sees it disconnected)
        self.manager: NodeState | None = None  # for workers
        self.members: list[NodeState] = []  # for the manager: every node of the fleet, itself first
        self.events: list[tuple[float, int, dict[str, Any]]] = []
        self._event_seq = 0
        self.vms: dict[str, VM] = {}
        self.tasks: list[Task] = []
        self.create_requests: dict[str, str] = {}  # requestID -> vmID (CreateVMOnNode is idempotent)
        self.task_requests: dict[str, str] = {}  # requestID -> taskID (downloads and pulls)
        self.trusted_nodes: dict[str, dict[str, Any]] = {}  # callerNodeID -> pairing record
        self.pairing_code = pairing_code or self._new_code()
        self.fixed_pairing_code = pairing_code is not None
        now = time.time()
        self.tokens: dict[str, Token] = {}
        self.api_token = api_token or self._new_token()
        self.readonly_token = readonly_token or self._new_token()
        self._add_token("default", self.api_token, "fullAccess", now)
        self._add_token("read-only", self.readonly_token, "readOnly", now)
        self.templates: dict[str, dict[str, Any]] = {}
        for tname, cat, desc in (("macOS 15 Base", "base", "Clean macOS Sequoia"),
                                 ("CI Runner Base", "cicd", "Xcode and CLI tools for CI"),
                                 ("Dev Workstation", "dev", "Developer tools and Homebrew")):
            tid = self._uuid()
            self.templates[tid] = self._template(tid, tname, desc, cat, "ipsw", "15.1", 64, now - 86400 * 30)
        self.ipsws: list[dict[str, Any]] = [
            self._ipsw("UniversalMac_15.1_24B83_Restore.ipsw", "15.1", "24B83", 15_202_345_678, now - 86400 * 20),
            self._ipsw("UniversalMac_15.2_24C101_Restore.ipsw", "15.2", "24C101", 15_489_001_234, now - 86400 * 5),
        ]
        self.images: list[dict[str, Any]] = [
            self._image("ghcr.io/cirruslabs/macos-sequoia-base:latest", 24_576_000_000, now - 86400 * 10),
            self._image("ghcr.io/cirruslabs/macos-sequoia-xcode:16.1", 61_440_000_000, now - 86400 * 3),
        ]
        alive = min(vms_per_node, rng.choice([0, 1, 1, 2]))
        for i in range(vms_per_node):
            os_version, build = GUEST_OS[rng.randrange(len(GUEST_OS))]
            vm = VM(
                id=self._uuid(), name=f"{VM_ROLES[i % len(VM_ROLES)]}-{i // len(VM_ROLES) + 1:02d}",
                state="running" if i < alive else "stopped",
                cpu_count=rng.choice([2, 4, 4, 6, 8]), memory_mb=rng.choice([4096, 8192, 8192, 16384]),
                disk_gb=rng.choice([64, 80, 100, 128]), os_version=os_version, build_version=build,
                ip_address=f"192.168.64.{10 + i}", created_at=now - rng.randrange(86400, 86400 * 90),
                intent=rng.choice(["interactive", "ci", "persistent", "disposable"]),
            )
            self.vms[vm.id] = vm

    # ----------------------------------------------------------------- helpers

    def _uuid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4)).upper()

    def _new_token(self) -> str:
        return "csk_" + "".join(self.rng.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(40))

    def _new_code(self) -> str:
        return f"{self.rng.randrange(1_000_000):06d}"

    def _add_token(self, name: str, token: str, permissions: str, now: float) -> Token:
        t = Token(id=self._uuid(), name=name, token=token, permissions=permissions, created_at=now)
        self.tokens[token] = t
        return t

    def _template(self, tid: str, name: str, desc: str | None, category: str, source: str,
                  macos: str | None, disk_gb: int, ts: float, cpu: int = 4, mem: int = 8192) -> dict[str, Any]:
        return {"id": tid, "name": name, "description": desc, "macOSVersion": macos, "iconName": "desktopcomputer",
                "category": category, "sourceType": source, "createdAt": iso(ts), "modifiedAt": iso(ts),
                "diskSizeBytes": disk_gb * 1_000_000_000 // 3, "defaultCPU": cpu, "defaultMemoryMB": mem,
                "defaultDiskGB": disk_gb}

    def _ipsw(self, fname: str, version: str, build: str, size: int, ts: float) -> dict[str, Any]:
        return {"name": f"macOS {version}", "version": version, "buildVersion": build,
                "path": f"/Users/Shared/CiderStack/IPSW/{fname}", "sizeBytes": size, "downloadedAt": iso(ts)}

    def _image(self, reference: str, size: int, ts: float) -> dict[str, Any]:
        digest = "sha256:" + "".join(self.rng.choice("0123456789abcdef") for _ in range(64))
        return {"reference": reference, "digest": digest, "sizeBytes": size, "pulledAt": iso(ts)}

    def emit(self, event_type: str, message: str, vm: VM | None = None, ts: float | None = None,
             node_name: str | None = None, node_id: str | None = None, extra: dict[str, Any] | None = None) -> None:
        ts = time.time() if ts is None else ts
        self._event_seq += 1
        ev: dict[str, Any] = {"id": self._uuid(), "timestamp": iso(ts), "eventType": event_type,
                              "nodeName": node_name or self.name, "nodeID": node_id or self.node_id, "message": message}
        if vm is not None:
            ev["vmID"] = vm.id
            ev["vmName"] = vm.name
        if extra:
            ev.update(extra)
        # Lazily settled transitions carry their own (earlier) timestamp: keep the log sorted.
        insort(self.events, (ts, self._event_seq, ev), key=lambda e: (e[0], e[1]))
        cap = MANAGER_MAX_EVENTS if self.role == "manager" else MAX_EVENTS
        if len(self.events) > cap + 100:
            del self.events[: len(self.events) - cap]

    def _vm(self, b: _Body) -> VM:
        vm_id = b.req_str("vmID")
        vm = self.vms.get(vm_id) or self.vms.get(vm_id.upper())
        if vm is None:
            raise RpcError(f"VM not found: {vm_id}")
        return vm

    def alive_count(self) -> int:
        return sum(1 for v in self.vms.values() if v.state in ALIVE_STATES)

    def settle(self, now: float | None = None) -> None:
        """Apply every transition, task completion and TTL expiry that is due by `now`."""
        now = time.time() if now is None else now
        for vm in self.vms.values():
            if vm.target is not None and vm.until <= now:
                vm.state, vm.target = vm.target, None
                if vm.state == "running":
                    self.emit("vm_started", f"VM '{vm.name}' is running" + (" (recovery mode)" if vm.recovery
                                                                             else ""), vm, vm.until)
                elif vm.state == "stopped":
                    vm.recovery = False
                    self.emit("vm_stopped", f"VM '{vm.name}' stopped", vm, vm.until)
            if (vm.expires_at is not None and vm.expires_at <= now and vm.intent == "disposable"
                    and vm.state != "stopped" and vm.target != "stopped"):
                vm.state, vm.target, vm.recovery = "stopped", None, False
                self.emit("vm_expired", f"Disposable VM '{vm.name}' reached its TTL and was retired",
                          vm, vm.expires_at)
        for task in self.tasks:
            if not task.finalized and task.end() <= now:
                task.finalized = True
                if task.fail_at is not None:
                    self.emit("task_failed", f"{task.title} failed: {task.error_message}", ts=task.fail_at,
                              extra={"taskID": task.id})
                elif task.on_complete is not None:
                    task.on_complete(task.end())

    def _add_task(self, type_: str, title: str, fail_reason: str | None = None, vm: VM | None = None,
                  on_complete: Callable[[float], None] | None = None, vm_id: str | None = None,
                  vm_name: str | None = None) -> Task:
        now = time.time()
        duration = max(0.01, self.config.task_seconds)
        task = Task(id=self._uuid(), type=type_, title=title, started=now, duration=duration,
                    fail_at=now + duration * 0.5 if fail_reason else None, error_message=fail_reason,
                    vm_id=vm.id if vm else vm_id, vm_name=vm.name if vm else vm_name, on_complete=on_complete)
        self.tasks.append(task)
        if len(self.tasks) > MAX_TASKS_KEPT:
            # Forget the oldest finished tasks; unfinished ones are always kept.
            finished = [t for t in self.tasks if t.finalized]
            drop = {t.id for t in finished[: len(self.tasks) - MAX_TASKS_KEPT]}
            self.tasks = [t for t in self.tasks if t.id not in drop]
        return task

    # ----------------------------------------------------------------- dispatch

    def authenticate(self, method: str, body: dict[str, Any]) -> Reply | None:
        """Return a 403 reply when the caller may not call `method`, else None."""
        mutating, auth = METHODS[method]
        if auth == "none":
            return None
        token = body.get("apiToken")
        caller = body.get("callerNodeID")
        if token is not None and caller is not None:
            return 403, {"error": "Provide either apiToken or callerNodeID, not both"}
        if token is None and caller is None:
            return 403, {"error": "Authentication required: send apiToken or callerNodeID"}
        if token is not None:
            if not isinstance(token, str):
                return 403, {"error": "Invalid API token"}
            t = self.tokens.get(token)
            if t is None:
                return 403, {"error": "Invalid or revoked API token"}
            if auth == "node":
                return 403, {"error": f"{method} requires node-ID authentication (callerNodeID from pairing); "
                             "API tokens cannot manage API tokens"}
            if mutating and t.permissions != "fullAccess":
                return 403, {"error": f"This API token is read-only; {method} needs a fullAccess token"}
            t.last_used_at = time.time()
            return None
        if not isinstance(caller, str) or not self._is_trusted(caller):
            return 403, {"error": "Unknown caller node ID: this node is not paired with the caller"}
        rec = self.trusted_nodes.get(caller.upper())
        if rec is not None:
            rec["lastSeenAt"] = time.time()
        return None

    def _is_trusted(self, node_id: str) -> bool:
        nid = node_id.upper()
        if nid in self.trusted_nodes:
            return True
        # Within a fleet, the manager and the workers trust each other.
        if self.manager is not None and nid == self.manager.node_id:
            return True
        return any(m.node_id == nid for m in self.members)

    def handle(self, method: str, body: dict[str, Any]) -> Reply | Deferred:
        denied = self.authenticate(method, body)
        if denied is not None:
            return denied
        self.settle()
        handler = getattr(self, "rpc_" + method)
        try:
            result = handler(_Body(body))
        except RpcError as exc:
            return 200, {"success": False, "error": str(exc)}
        if isinstance(result, Deferred):
            return result
        return 200, result

    # ----------------------------------------------------------------- node

    def node_info(self) -> dict[str, Any]:
        return {"nodeID": self.node_id, "name": self.name, "hostname": self.hostname,
                "ipAddress": self.ip_address, "port": self.port, "machineModel": self.machine_model,
                "osVersion": self.os_version, "cpuCores": self.cpu_cores, "totalMemoryGB": self.total_memory_gb,
                "fleetVersion": self.fleet_version}

    def rpc_GetNodeInfo(self, b: _Body) -> dict[str, Any]:
        return self.node_info()

    def stats(self, now: float | None = None) -> dict[str, Any]:
        now = time.time() if now is None else now
        running = [v for v in self.vms.values() if v.state in ("running", "starting")]
        paused = [v for v in self.vms.values() if v.state == "paused"]
        # Idle host load, a little jitter that changes every 2 s, and each running guest's share.
        jitter = random.Random(f"{self.node_id}-{int(now / 2)}").uniform(-1.5, 1.5)
        cpu = 3.0 + jitter + sum(v.cpu_count / self.cpu_cores * 35.0 for v in running)
        if any(v.state == "starting" for v in running):
            cpu += 10.0
        mem_used = 5.5 + (jitter + 1.5) * 0.1 + sum(v.memory_mb for v in running + paused) / 1024
        disk_used = 180.0 + sum(v.disk_gb * 0.35 for v in self.vms.values()) \
            + sum(i["sizeBytes"] for i in self.images) / 1e9 + sum(i["sizeBytes"] for i in self.ipsws) / 1e9
        return {"nodeID": self.node_id, "timestamp": iso(now),
                "cpuUsagePercent": round(max(0.5, min(100.0, cpu)), 1),
                "memoryUsedGB": round(min(float(self.total_memory_gb), mem_used), 2),
                "memoryTotalGB": float(self.total_memory_gb),
                "diskUsedGB": round(min(self.disk_total_gb, disk_used), 1), "diskTotalGB": self.disk_total_gb,
                "runningVMCount": sum(1 for v in self.vms.values() if v.state == "running"),
                "totalVMCount": len(self.vms)}

    def rpc_GetNodeStats(self, b: _Body) -> dict[str, Any]:
        return self.stats()

    def rpc_GetRemoteResources(self, b: _Body) -> dict[str, Any]:
        st = self.stats()
        alive = [v for v in self.vms.values() if v.state in ALIVE_STATES]
        return {"success": True, "nodeID": self.node_id, "nodeName": self.name,
                "availableCPU": max(0, self.cpu_cores - sum(v.cpu_count for v in alive)),
                "availableMemoryGB": round(max(0.0, st["memoryTotalGB"] - st["memoryUsedGB"]), 2),
                "availableDiskGB": round(st["diskTotalGB"] - st["diskUsedGB"], 1),
                "maxVMs": MAX_ALIVE_VMS, "runningVMs": len(alive), "totalVMs": len(self.vms),
                "canStartVM": len(alive) < MAX_ALIVE_VMS}

    # ----------------------------------------------------------------- VMs

    def rpc_ListVMs(self, b: _Body) -> dict[str, Any]:
        return {"vms": [v.to_wire() for v in self.vms.values()]}

    def _check_limit(self, vm: VM) -> None:
        if self.alive_count() >= MAX_ALIVE_VMS:
            names = ", ".join(sorted(v.name for v in self.vms.values() if v.state in ALIVE_STATES))
            raise RpcError(f"Cannot start '{vm.name}': macOS allows at most {MAX_ALIVE_VMS} macOS VMs running "
                           f"at once on this host (already running or paused: {names})")

    def _start(self, vm: VM, recovery: bool) -> dict[str, Any]:
        if vm.state == "paused" and not recovery:
            vm.state = "running"
            self.emit("vm_resumed", f"VM '{vm.name}' resumed", vm)
            return {"success": True, "message": f"VM '{vm.name}' resumed"}
        if vm.state != "stopped" and vm.state != "error":
            raise RpcError(f"VM '{vm.name}' cannot be started: it is {vm.state}")
        self._check_limit(vm)
        now = time.time()
        vm.state, vm.target, vm.until, vm.recovery = "starting", "running", now + self.config.transition_seconds, \
            recovery
        self.emit("vm_starting", f"VM '{vm.name}' is starting" + (" in recovery mode" if recovery else ""), vm)
        self.settle(now)
        return {"success": True, "message": f"VM '{vm.name}' is starting" + (" in recovery mode" if recovery else "")}

    def rpc_StartVM(self, b: _Body) -> dict[str, Any]:
        return self._start(self._vm(b), recovery=False)

    def rpc_StartVMRecovery(self, b: _Body) -> dict[str, Any]:
        vm = self._vm(b)
        if vm.state == "paused":
            raise RpcError(f"VM '{vm.name}' is paused; stop it before booting into recovery")
        return self._start(vm, recovery=True)

    def rpc_StopVM(self, b: _Body) -> dict[str, Any]:
        vm = self._vm(b)
        if vm.state not in ("running", "paused", "starting"):
            raise RpcError(f"VM '{vm.name}' cannot be stopped: it is {vm.state}")
        now = time.time()
        vm.state, vm.target, vm.until = "stopping", "stopped", now + self.config.transition_seconds
        self.emit("vm_stopping", f"VM '{vm.name}' is stopping", vm)
        self.settle(now)
        return {"success": True, "message": f"VM '{vm.name}' is stopping"}

    def rpc_SuspendVM(self, b: _Body) -> dict[str, Any]:
        vm = self._vm(b)
        if vm.state != "running":
            raise RpcError(f"VM '{vm.name}' cannot be suspended: it is {vm.state} (only a running VM can)")
        vm.state = "paused"
        self.emit("vm_suspended", f"VM '{vm.name}' suspended", vm)
        return {"success": True, "message": f"VM '{vm.name}' suspended"}

    def _name_free(self, name: str, exclude: VM | None = None) -> None:
        if any(v.name == name and v is not exclude for v in self.vms.values()):
            raise RpcError(f"A VM named '{name}' already exists on this node")

    def rpc_CloneVM(self, b: _Body) -> dict[str, Any]:
        vm = self._vm(b)
        new_name = b.req_str("newName").strip()
        if vm.state != "stopped":
            raise RpcError(f"VM '{vm.name}' must be stopped to be cloned (it is {vm.state})")
        self._name_free(new_name)
        now = time.time()
        clone = VM(id=self._uuid(), name=new_name, state="stopped", cpu_count=vm.cpu_count,
                   memory_mb=vm.memory_mb, disk_gb=vm.disk_gb, os_version=vm.os_version,
                   build_version=vm.build_version, ip_address=f"192.168.64.{10 + len(self.vms) % 240}",
                   created_at=now, intent=vm.intent, display_width=vm.display_width,
                   display_height=vm.display_height, shared_folders=[dict(f) for f in vm.shared_folders])
        self.vms[clone.id] = clone
        self.emit("vm_created", f"VM '{clone.name}' cloned from '{vm.name}'", clone)
        return {"success": True, "message": f"Cloned '{vm.name}' to '{new_name}'", "newVM": clone.to_wire()}

    def rpc_RenameVM(self, b: _Body) -> dict[str, Any]:
        vm = self._vm(b)
        new_name = b.req_str("newName").strip()
        self._name_free(new_name, exclude=vm)
        old, vm.name = vm.name, new_name
        self.emit("vm_renamed", f"VM '{old}' renamed to '{new_name}'", vm)
        return {"success": True, "message": f"Renamed '{old}' to '{new_name}'"}

    def _delete(self, vm: VM, event_type: str = "vm_deleted", why: str = "deleted") -> None:
        del self.vms[vm.id]
        self.emit(event_type, f"VM '{vm.name}' {why}", vm)

    def rpc_DeleteVM(self, b: _Body) -> dict[str, Any]:
        vm = self._vm(b)
        if vm.state not in ("stopped", "error"):
            raise RpcError(f"VM '{vm.name}' must be stopped before it can be deleted (it is {vm.state})")
        self._delete(vm)
        return {"success": True, "message": f"VM '{vm.name}' deleted"}

    def rpc_CreateVMOnNode(self, b: _Body) -> dict[str, Any]:
        request_id = b.req_str("requestID")
        if request_id in self.create_requests:
            return {"success": True, "vmID": self.create_requests[request_id], "message": "Already requested"}
        name = b.req_str("name").strip()
        cpu = b.int("cpuCount", lo=1, hi=self.cpu_cores)
        mem = b.int("memorySizeMB", lo=2048, hi=self.total_memory_gb * 1024)
        disk = b.int("diskSizeGB", lo=20, hi=int(self.disk_total_gb))
        ipsw_path = b.str("ipswPath", required=False)
        oci = b.str("ociImageReference", required=False)
        assert cpu is not None and mem is not None and disk is not None
        if ipsw_path and oci:
            raise RpcError("Give either ipswPath or ociImageReference, not both")
        self._name_free(name)
        if any(t.type == "vm_creation" and t.vm_name == name and not t.finalized for t in self.tasks):
            raise RpcError(f"A VM named '{name}' is already being created on this node")
        os_version, build = self.ipsws[-1]["version"], self.ipsws[-1]["buildVersion"]
        if ipsw_path:
            ipsw = next((i for i in self.ipsws if i["path"] == ipsw_path), None)
            if ipsw is None:
                raise RpcError(f"IPSW not found on this node: {ipsw_path}")
            os_version, build = ipsw["version"], ipsw["buildVersion"]
        vm_id = self._uuid()
        source = oci or ipsw_path or self.ipsws[-1]["path"]
        fail = task_should_fail(oci) if oci else None

        def done(ts: float) -> None:
            vm = VM(id=vm_id, name=name, state="stopped", cpu_count=cpu, memory_mb=mem, disk_gb=disk,
                    os_version=os_version, build_version=build,
                    ip_address=f"192.168.64.{10 + len(self.vms) % 240}", created_at=ts)
            if any(v.name == name for v in self.vms.values()):
                vm.name = f"{name}-{vm_id[:4].lower()}"
            self.vms[vm.id] = vm
            self.emit("vm_created", f"VM '{vm.name}' created from {source}", vm, ts)

        self._add_task("vm_creation", f"Create VM '{name}'", fail, on_complete=done, vm_id=vm_id, vm_name=name)
        self.create_requests[request_id] = vm_id
        return {"success": True, "vmID": vm_id, "message": f"Creating VM '{name}'"}

    def rpc_GetVMSettings(self, b: _Body) -> dict[str, Any]:
        vm = self._vm(b)
        conf: dict[str, Any] = {"cpuCount": vm.cpu_count, "memorySize": vm.memory_mb,
                                "displayWidth": vm.display_width, "displayHeight": vm.display_height,
                                "intent": vm.intent, "diskSizeGB": vm.disk_gb}
        if vm.ttl_seconds is not None:
            conf["ttlSeconds"] = vm.ttl_seconds
        if vm.expires_at is not None:
            conf["expiresAt"] = iso(vm.expires_at)
        return {"success": True, "configuration": conf}

    def rpc_UpdateVMSettings(self, b: _Body) -> dict[str, Any]:
        vm = self._vm(b)
        cpu = b.int("cpuCount", required=False, lo=1, hi=self.cpu_cores)
        mem = b.int("memorySize", required=False, lo=2048, hi=self.total_memory_gb * 1024)
        width = b.int("displayWidth", required=False, lo=640, hi=6144)
        height = b.int("displayHeight", required=False, lo=480, hi=3456)
        intent = b.str("intent", required=False)
        ttl = b.int("ttlSeconds", required=False)
        if intent is not None and intent not in INTENTS:
            raise RpcError(f"Unknown intent '{intent}' (expected one of {', '.join(INTENTS)})")
        if ttl is not None and ttl != -1 and ttl <= 0:
            raise RpcError("Field 'ttlSeconds' must be a positive number of seconds, or -1 to clear the TTL")
        hardware = [k for k, v in (("cpuCount", cpu), ("memorySize", mem), ("displayWidth", width),
                                   ("displayHeight", height)) if v is not None]
        if hardware and vm.state != "stopped":
            raise RpcError(f"VM '{vm.name}' must be stopped to change {', '.join(hardware)} (it is {vm.state})")
        changed = hardware + [k for k, v in (("intent", intent), ("ttlSeconds", ttl)) if v is not None]
        if not changed:
            raise RpcError("No settings given to update")
        if cpu is not None:
            vm.cpu_count = cpu
        if mem is not None:
            vm.memory_mb = mem
        if width is not None:
            vm.display_width = width
        if height is not None:
            vm.display_height = height
        if intent is not None:
            vm.intent = intent
        if ttl == -1:
            vm.ttl_seconds = vm.expires_at = None
        elif ttl is not None:
            vm.ttl_seconds, vm.expires_at = ttl, time.time() + ttl
        self.emit("vm_settings_updated", f"Settings of VM '{vm.name}' updated: {', '.join(changed)}", vm)
        return {"success": True, "message": f"Updated {', '.join(changed)}"}

    def rpc_CleanupVMs(self, b: _Body) -> dict[str, Any]:
        force = b.bool("force", default=False)
        now = time.time()
        doomed = [v for v in self.vms.values()
                  if v.expires_at is not None and v.expires_at <= now and (force or v.intent == "disposable")]
        for vm in doomed:
            self._delete(vm, "vm_deleted", "removed by cleanup (TTL expired)")
        return {"success": True, "cleanedCount": len(doomed),
                "message": f"Cleaned up {len(doomed)} VM(s)"}

    # ----------------------------------------------------------------- snapshots

    def rpc_ListSnapshots(self, b: _Body) -> dict[str, Any]:
        return {"success": True, "snapshots": list(self._vm(b).snapshots)}

    def _snapshot(self, vm: VM, b: _Body) -> dict[str, Any]:
        sid = b.req_str("snapshotID")
        snap = next((s for s in vm.snapshots if s["id"].upper() == sid.upper()), None)
        if snap is None:
            raise RpcError(f"Snapshot not found: {sid}")
        return snap

    def rpc_CreateSnapshot(self, b: _Body) -> dict[str, Any]:
        vm = self._vm(b)
        name = b.req_str("name").strip()
        desc = b.str("snapshotDescription", required=False, empty_ok=True)
        if vm.state in ("starting", "stopping"):
            raise RpcError(f"VM '{vm.name}' is {vm.state}; wait until it has settled to take a snapshot")
        if any(s["name"] == name for s in vm.snapshots):
            raise RpcError(f"VM '{vm.name}' already has a snapshot named '{name}'")
        snap = {"id": self._uuid(), "name": name, "description": desc, "createdAt": iso(time.time()),
                "sizeBytes": int(vm.disk_gb * 1e9 * self.rng.uniform(0.05, 0.3))}
        vm.snapshots.append(snap)
        self.emit("snapshot_created", f"Snapshot '{name}' of VM '{vm.name}' created", vm,
                  extra={"snapshotID": snap["id"]})
        return {"success": True, "message": f"Snapshot '{name}' created", "snapshot": snap}

    def rpc_RestoreSnapshot(self, b: _Body) -> dict[str, Any]:
        vm = self._vm(b)
        snap = self._snapshot(vm, b)
        if vm.state != "stopped":
            raise RpcError(f"VM '{vm.name}' must be stopped to restore a snapshot (it is {vm.state})")
        self.emit("snapshot_restored", f"VM '{vm.name}' restored to snapshot '{snap['name']}'", vm,
                  extra={"snapshotID": snap["id"]})
        return {"success": True, "message": f"Restored snapshot '{snap['name']}'"}

    def rpc_DeleteSnapshot(self, b: _Body) -> dict[str, Any]:
        vm = self._vm(b)
        snap = self._snapshot(vm, b)
        vm.snapshots.remove(snap)
        self.emit("snapshot_deleted", f"Snapshot '{snap['name']}' of VM '{vm.name}' deleted", vm,
                  extra={"snapshotID": snap["id"]})
        return {"success": True, "message": f"Snapshot '{snap['name']}' deleted"}

    # ----------------------------------------------------------------- exec

    def rpc_ExecCommand(self, b: _Body) -> dict[str, Any] | Deferred:
        vm = self._vm(b)
        command = b.req_str("command")
        timeout_v = b.body.get("timeout", 300)
        if isinstance(timeout_v, bool) or not isinstance(timeout_v, (int, float)) or timeout_v <= 0:
            raise RpcError("Field 'timeout' must be a positive number of seconds")
        user = b.str("sshUser", required=False) or "cideradmin"
        b.str("sshPassword", required=False, empty_ok=True)  # accepted and never stored or echoed
        if vm.state != "running":
            msg = f"VM '{vm.name}' is not running (it is {vm.state}); commands run only on a running VM"
            return {"success": False, "error": msg, "exitCode": -1, "stdout": "", "stderr": msg, "duration": 0.0}
        facts = shell.VMFacts(name=vm.name, hostname=f"{vm.name}.local", os_version=vm.os_version,
                              build_version=vm.build_version, user=user, ip_address=vm.ip_address,
                              cpu_count=vm.cpu_count, memory_mb=vm.memory_mb)
        res = shell.run(command, facts)
        self.emit("command_executed", f"Command run on VM '{vm.name}' as {user}", vm)
        base = 0.005 + len(command) * 1e-5
        if res.seconds >= float(timeout_v):
            t = float(timeout_v)
            return Deferred(t, {"success": False, "exitCode": 124, "stdout": res.stdout,
                                "stderr": res.stderr + f"Command timed out after {t:g} seconds\n",
                                "duration": round(t, 3), "timedOut": True,
                                "error": f"Command timed out after {t:g} seconds"})
        payload = {"success": res.exit_code == 0, "exitCode": res.exit_code, "stdout": res.stdout,
                   "stderr": res.stderr, "duration": round(res.seconds + base, 3)}
        if res.seconds > 0:
            return Deferred(res.seconds, payload)
        return payload

    # ----------------------------------------------------------------- templates

    def _find_template(self, b: _Body) -> dict[str, Any] | None:
        tid = b.str("templateID", required=False)
        tname = b.str("templateName", required=False)
        if tid is None and tname is None:
            raise RpcError("Give templateID or templateName")
        if tid is not None:
            return next((t for t in self.templates.values() if t["id"].upper() == tid.upper()), None)
        return next((t for t in self.templates.values() if t["name"] == tname), None)

    def rpc_ListTemplates(self, b: _Body) -> dict[str, Any]:
        return {"templates": list(self.templates.values())}

    def rpc_GetTemplate(self, b: _Body) -> dict[str, Any]:
        t = self._find_template(b)
        if t is None:
            return {"success": False, "error": "Template not found"}
        return {"success": True, "template": t}

    def rpc_CreateTemplateFromVM(self, b: _Body) -> dict[str, Any]:
        vm = self._vm(b)
        name = b.req_str("name").strip()
        desc = b.str("description", required=False, empty_ok=True)
        category = b.str("category", required=False) or "custom"
        keep = b.bool("keepOriginalVM", default=True)
        if category not in TEMPLATE_CATEGORIES:
            raise RpcError(f"Unknown category '{category}' (expected one of {', '.join(TEMPLATE_CATEGORIES)})")
        if vm.state != "stopped":
            raise RpcError(f"VM '{vm.name}' must be stopped to create a template from it (it is {vm.state})")
        if any(t["name"] == name for t in self.templates.values()):
            raise RpcError(f"A template named '{name}' already exists")
        tid = self._uuid()
        t = self._template(tid, name, desc, category, "vm", vm.os_version, vm.disk_gb, time.time(),
                           vm.cpu_count, vm.memory_mb)
        self.templates[tid] = t
        self.emit("template_created", f"Template '{name}' created from VM '{vm.name}'", vm,
                  extra={"templateID": tid})
        if not keep:
            self._delete(vm, "vm_deleted", "deleted after becoming a template")
        return {"success": True, "message": f"Template '{name}' created", "template": t}

    def rpc_DeleteTemplate(self, b: _Body) -> dict[str, Any]:
        tid = b.req_str("templateID")
        t = next((t for t in self.templates.values() if t["id"].upper() == tid.upper()), None)
        if t is None:
            raise RpcError(f"Template not found: {tid}")
        del self.templates[t["id"]]
        self.emit("template_deleted", f"Template '{t['name']}' deleted", extra={"templateID": t["id"]})
        return {"success": True, "message": f"Template '{t['name']}' deleted"}

    # ----------------------------------------------------------------- shared folders

    def _folder(self, vm: VM, b: _Body) -> dict[str, Any]:
        name = b.req_str("name")
        f = next((f for f in vm.shared_folders if f["name"] == name), None)
        if f is None:
            raise RpcError(f"VM '{vm.name}' has no shared folder named '{name}'")
        return f

    def rpc_ListSharedFolders(self, b: _Body) -> dict[str, Any]:
        return {"success": True, "folders": list(self._vm(b).shared_folders)}

    def rpc_AddSharedFolder(self, b: _Body) -> dict[str, Any]:
        vm = self._vm(b)
        name = b.req_str("name").strip()
        host_path = b.req_str("hostPath")
        read_only = b.bool("readOnly", default=False)
        tag = b.str("mountTag", required=False)
        if not host_path.startswith("/"):
            raise RpcError(f"hostPath must be an absolute path (got '{host_path}')")
        if any(f["name"] == name for f in vm.shared_folders):
            raise RpcError(f"VM '{vm.name}' already has a shared folder named '{name}'")
        folder: dict[str, Any] = {"name": name, "hostPath": host_path, "readOnly": read_only, "isEnabled": True}
        if tag:
            folder["mountTag"] = tag
        vm.shared_folders.append(folder)
        self.emit("shared_folder_added", f"Shared folder '{name}' added to VM '{vm.name}'", vm)
        return {"success": True, "message": f"Shared folder '{name}' added"}

    def rpc_RemoveSharedFolder(self, b: _Body) -> dict[str, Any]:
        vm = self._vm(b)
        f = self._folder(vm, b)
        vm.shared_folders.remove(f)
        self.emit("shared_folder_removed", f"Shared folder '{f['name']}' removed from VM '{vm.name}'", vm)
        return {"success": True, "message": f"Shared folder '{f['name']}' removed"}

    def rpc_SetSharedFolderEnabled(self, b: _Body) -> dict[str, Any]:
        vm = self._vm(b)
        f = self._folder(vm, b)
        f["isEnabled"] = b.bool("enabled")
        word = "enabled" if f["isEnabled"] else "disabled"
        self.emit("shared_folder_updated", f"Shared folder '{f['name']}' of VM '{vm.name}' {word}", vm)
        return {"success": True, "message": f"Shared folder '{f['name']}' {word}"}

    # ----------------------------------------------------------------- images and tasks

    def rpc_ListRemoteIPSWs(self, b: _Body) -> dict[str, Any]:
        return {"ipsws": list(self.ipsws)}

    def rpc_ListRemoteOCIImages(self, b: _Body) -> dict[str, Any]:
        return {"images": list(self.images)}

    def rpc_GetIPSWInfo(self, b: _Body) -> dict[str, Any]:
        path = b.req_str("path")
        ipsw = next((i for i in self.ipsws if i["path"] == path), None)
        if ipsw is None:
            raise RpcError(f"IPSW not found on this node: {path}")
        return {"success": True, **ipsw}

    def rpc_DownloadIPSWOnNode(self, b: _Body) -> dict[str, Any]:
        request_id = b.req_str("requestID")
        url = b.req_str("downloadURL")
        name = b.req_str("expectedName")
        version = b.req_str("expectedVersion")
        if request_id in self.task_requests:
            return {"success": True, "taskID": self.task_requests[request_id], "message": "Already requested"}
        if not re.match(r"^https?://[^/\s]+/\S*$", url):
            raise RpcError(f"downloadURL must be an http(s) URL (got '{url}')")
        if not url.lower().endswith(".ipsw"):
            raise RpcError("downloadURL must point to an .ipsw file")
        fname = url.rsplit("/", 1)[-1]

        def done(ts: float) -> None:
            build = f"24X{self.rng.randrange(10, 999)}"
            entry = self._ipsw(fname, version, build, self.rng.randrange(14_000_000_000, 17_000_000_000), ts)
            entry["name"] = name
            self.ipsws = [i for i in self.ipsws if i["path"] != entry["path"]] + [entry]
            self.emit("ipsw_downloaded", f"IPSW '{name}' ({version}) downloaded", ts=ts)

        task = self._add_task("ipsw_download", f"Download {name}", task_should_fail(url), on_complete=done)
        self.task_requests[request_id] = task.id
        return {"success": True, "taskID": task.id, "message": f"Downloading {name}"}

    def rpc_PullOCIImageOnNode(self, b: _Body) -> dict[str, Any]:
        request_id = b.req_str("requestID")
        ref = b.req_str("imageReference").strip()
        creds = b.body.get("credentials")
        if creds is not None and (not isinstance(creds, dict) or not isinstance(creds.get("username"), str)
                                  or not isinstance(creds.get("password"), str)):
            raise RpcError("credentials must be an object with string username and password")
        if request_id in self.task_requests:
            return {"success": True, "taskID": self.task_requests[request_id], "message": "Already requested"}
        if not re.match(r"^[a-z0-9][a-z0-9._:-]*(/[a-z0-9._-]+)+(:[\w][\w.-]*|@sha256:[0-9a-f]{64})?$", ref):
            raise RpcError(f"Invalid image reference '{ref}' (expected registry/repository[:tag])")
        size = self.rng.randrange(20_000_000_000, 60_000_000_000)

        def done(ts: float) -> None:
            entry = self._image(ref, size, ts)
            self.images = [i for i in self.images if i["reference"] != ref] + [entry]
            self.emit("image_pulled", f"Image '{ref}' pulled", ts=ts)

        task = self._add_task("oci_pull", f"Pull {ref}", task_should_fail(ref), on_complete=done)
        self.task_requests[request_id] = task.id
        return {"success": True, "taskID": task.id, "message": f"Pulling {ref}"}

    def rpc_PushImage(self, b: _Body) -> dict[str, Any]:
        vm = self._vm(b)
        image = b.req_str("imageName").strip()
        insecure = b.bool("insecure", default=False)
        if vm.state != "stopped":
            raise RpcError(f"VM '{vm.name}' must be stopped to be pushed as an image (it is {vm.state})")
        if not re.match(r"^[a-z0-9][a-z0-9._:-]*(/[a-z0-9._-]+)+(:[\w][\w.-]*)?$", image):
            raise RpcError(f"Invalid image name '{image}' (expected registry/repository[:tag])")

        def done(ts: float) -> None:
            self.emit("image_pushed", f"VM '{vm.name}' pushed as '{image}'" + (" (insecure)" if insecure else ""),
                      vm, ts)

        task = self._add_task("image_push", f"Push {image}", task_should_fail(image), vm=vm, on_complete=done)
        return {"success": True, "taskID": task.id, "message": f"Pushing '{vm.name}' to {image}"}

    def rpc_GetTasks(self, b: _Body) -> dict[str, Any]:
        include = b.bool("includeCompleted", default=False)
        now = time.time()
        out = [t.to_wire(now) for t in self.tasks]
        if not include:
            out = [t for t in out if t["status"] in ("pending", "running")]
        out.reverse()  # newest first
        return {"tasks": out}

    # ----------------------------------------------------------------- fleet (manager)

    def _not_manager(self, method: str) -> dict[str, Any]:
        mgr = f" (its manager is '{self.manager.name}')" if self.manager is not None else ""
        return {"success": False, "error": f"{method} is only answered by a fleet manager; "
                f"node '{self.name}' is a worker{mgr}"}

    def rpc_GetFleetOverview(self, b: _Body) -> dict[str, Any]:
        if self.role != "manager":
            return self._not_manager("GetFleetOverview")
        now = time.time()
        workers: list[dict[str, Any]] = []
        vms: list[dict[str, Any]] = []
        connected = running = total = 0
        cpu_sum = mem_used = mem_total = 0.0
        manager_node: dict[str, Any] = {}
        for node in self.members:
            node.settle(now)
            st = node.stats(now)
            entry = {**node.node_info(), "role": node.role,
                     "connectionState": "connected" if node.connected else "disconnected",
                     "runningVMs": st["runningVMCount"], "totalVMs": st["totalVMCount"],
                     "cpuUsagePercent": st["cpuUsagePercent"], "memoryUsedGB": st["memoryUsedGB"],
                     "memoryTotalGB": st["memoryTotalGB"], "lastSeen": iso(now if node.connected
                                                                          else node.disconnected_at)}
            if node is self:
                manager_node = entry
            else:
                workers.append(entry)
            if not node.connected:
                continue
            connected += 1
            running += st["runningVMCount"]
            total += st["totalVMCount"]
            cpu_sum += st["cpuUsagePercent"]
            mem_used += st["memoryUsedGB"]
            mem_total += st["memoryTotalGB"]
            for v in node.vms.values():
                vms.append({**v.to_wire(), "hostName": node.name, "hostNodeID": node.node_id})
        stats = {"connectedNodes": connected, "totalNodes": len(self.members), "runningVMs": running,
                 "totalVMs": total, "aggregatedCPUUsage": round(cpu_sum / max(1, connected), 1),
                 "aggregatedMemoryUsedGB": round(mem_used, 1), "aggregatedMemoryTotalGB": round(mem_total, 1),
                 "activeTasks": sum(1 for n in self.members if n.connected for t in n.tasks if not t.finalized)}
        return {"overview": {"stats": stats, "managerNode": manager_node, "workerNodes": workers, "vms": vms}}

    def rpc_GetFleetEvents(self, b: _Body) -> dict[str, Any]:
        limit = b.int("limit", required=False, lo=1, hi=10000) or 100
        event_type = b.str("eventType", required=False)
        if self.role != "manager":
            return self._not_manager("GetFleetEvents")
        now = time.time()
        merged: list[tuple[float, int, dict[str, Any]]] = []
        for node in self.members:
            node.settle(now)
            evs = node.events if event_type is None else [e for e in node.events if e[2]["eventType"] == event_type]
            merged.extend(evs[-limit:])
        merged.sort(key=lambda e: (e[0], e[1]), reverse=True)
        return {"events": [e[2] for e in merged[:limit]]}

    # ----------------------------------------------------------------- tokens and pairing

    def rpc_GenerateAPIToken(self, b: _Body) -> dict[str, Any]:
        name = b.req_str("name").strip()
        perms = b.str("permissions", required=False) or "fullAccess"
        if perms not in ("readOnly", "fullAccess"):
            raise RpcError(f"permissions must be 'readOnly' or 'fullAccess' (got '{perms}')")
        t = self._add_token(name, self._new_token(), perms, time.time())
        self.emit("token_generated", f"API token '{name}' ({perms}) generated", extra={"tokenID": t.id})
        return {"success": True, "token": {"id": t.id, "name": t.name, "token": t.token, "permissions": perms,
                                           "createdAt": iso(t.created_at), "lastUsedAt": None}}

    def rpc_RevokeAPIToken(self, b: _Body) -> dict[str, Any]:
        tid = b.req_str("tokenID")
        t = next((t for t in self.tokens.values() if t.id.upper() == tid.upper()), None)
        if t is None:
            return {"success": False, "revoked": False, "error": f"API token not found: {tid}"}
        del self.tokens[t.token]
        self.emit("token_revoked", f"API token '{t.name}' revoked", extra={"tokenID": t.id})
        return {"success": True, "revoked": True, "message": f"API token '{t.name}' revoked"}

    def rpc_ListAPITokens(self, b: _Body) -> dict[str, Any]:
        return {"success": True, "tokens": [t.summary() for t in self.tokens.values()]}

    def rpc_Unpair(self, b: _Body) -> dict[str, Any]:
        nid = b.req_str("nodeID").upper()
        rec = self.trusted_nodes.pop(nid, None)
        if rec is None:
            raise RpcError(f"Node {nid} is not paired with this node")
        self.emit("node_unpaired", f"Unpaired '{rec['name']}'", extra={"pairedNodeID": nid})
        return {"success": True, "message": f"Unpaired '{rec['name']}'"}

    def rpc_RequestPairing(self, b: _Body) -> dict[str, Any]:
        def refuse(msg: str) -> dict[str, Any]:
            return {"accepted": False, "errorMessage": msg, "responderNodeID": {"value": self.node_id},
                    "responderName": self.name}

        try:
            request_id = b.req_str("requestID")
            requester = b.body.get("requesterNodeID")
            if not isinstance(requester, dict) or not isinstance(requester.get("value"), str):
                raise RpcError("requesterNodeID must be an object {\"value\": \"<UUID>\"}")
            try:
                nid = str(uuid.UUID(requester["value"])).upper()
            except ValueError:
                raise RpcError("requesterNodeID.value must be a UUID") from None
            rname = b.req_str("requesterName").strip()
            b.str("requesterIP", required=False, empty_ok=True)
            key_b64 = b.req_str("publicKey")
            code = b.body.get("code")
            if not isinstance(code, str) or not re.fullmatch(r"\d{6}", code):
                raise RpcError("code must be the 6-digit pairing code, as a string")
        except RpcError as exc:
            return refuse(str(exc))
        try:
            raw = base64.b64decode(key_b64, validate=True)
            from cryptography.hazmat.primitives.asymmetric import ec

            if len(raw) != 65 or raw[0] != 4:
                raise ValueError("not an uncompressed point")
            ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), raw)
        except ValueError:
            return refuse("publicKey must be the base64 of an uncompressed P-256 public key (65 bytes)")
        prior = self.trusted_nodes.get(nid)
        if prior is not None and prior["requestID"] == request_id and prior["publicKey"] == key_b64:
            # A retry of a request that was already accepted (its answer was lost): same answer.
            return {"accepted": True, "responderNodeID": {"value": self.node_id}, "responderName": self.name}
        if code != self.pairing_code:
            self.emit("pairing_refused", f"Pairing request from '{rname}' refused: wrong code")
            return refuse("Invalid pairing code")
        self.trusted_nodes[nid] = {"nodeID": nid, "name": rname, "publicKey": key_b64, "requestID": request_id,
                                   "pairedAt": time.time(), "lastSeenAt": None}
        # The code is good for one pairing: a fresh one replaces it (see README).
        old = self.pairing_code
        while self.pairing_code == old:
            self.pairing_code = self._new_code()
        self.emit("node_paired", f"Paired with '{rname}'", extra={"pairedNodeID": nid})
        return {"accepted": True, "responderNodeID": {"value": self.node_id}, "responderName": self.name}

    # ----------------------------------------------------------------- introspection

    def snapshot_state(self) -> dict[str, Any]:
        """What GET /_sim/state shows (no token strings: prefixes only)."""
        self.settle()
        now = time.time()
        return {"name": self.name, "role": self.role, "nodeID": self.node_id, "host": self.host, "port": self.port,
                "connected": self.connected, "pairingCode": self.pairing_code,
                "tokens": [t.summary() for t in self.tokens.values()],
                "pairedNodes": [{"nodeID": r["nodeID"], "name": r["name"]} for r in self.trusted_nodes.values()],
                "vms": [v.to_wire() for v in self.vms.values()],
                "tasks": [t.to_wire(now) for t in self.tasks], "eventCount": len(self.events)}
