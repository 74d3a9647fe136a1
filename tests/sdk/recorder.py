"""A small recording HTTP server for SDK tests: real sockets, canned valid answers per RPC method.

It records every request (path, headers, decoded JSON body, client port) and answers
with a protocol-valid canned body for the method; a test can override the answer of
a method (status, raw bytes, a delay) to exercise the client's error handling.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

VM_ID = "6F1C2D3E-0000-4000-8000-000000000001"
SNAP_ID = "6F1C2D3E-0000-4000-8000-0000000000A1"
TEMPLATE_ID = "6F1C2D3E-0000-4000-8000-0000000000B1"
NODE_ID = "6F1C2D3E-0000-4000-8000-0000000000C1"
TASK_ID = "6F1C2D3E-0000-4000-8000-0000000000D1"

_VM = {"id": VM_ID, "name": "ci-runner-01", "state": "running", "cpuCount": 4, "memoryMB": 8192,
       "diskSizeGB": 64, "osVersion": "15.1", "ipAddress": "192.168.64.5"}
_SNAPSHOT = {"id": SNAP_ID, "name": "pre-update", "description": "Before update",
             "createdAt": "2025-03-01T10:00:00Z", "sizeBytes": 1234567}
_TEMPLATE = {"id": TEMPLATE_ID, "name": "CI Runner Base", "description": "base", "macOSVersion": "15.1",
             "iconName": "hammer", "category": "cicd", "sourceType": "vm",
             "createdAt": "2025-03-01T10:00:00.123Z", "modifiedAt": "2025-03-02T10:00:00Z",
             "diskSizeBytes": 68719476736, "defaultCPU": 4, "defaultMemoryMB": 8192, "defaultDiskGB": 64}
_TASK = {"id": TASK_ID, "type": "ociPull", "title": "Pull image", "status": "running", "progress": 42.5,
         "progressText": "1.2 of 3 GB", "startedAt": "2025-03-01T10:00:00Z", "vmID": VM_ID,
         "vmName": "ci-runner-01"}

CANNED: dict[str, dict[str, Any]] = {
    "GetNodeInfo": {"nodeID": NODE_ID, "name": "mac-01", "hostname": "mac-01.local", "ipAddress": "10.0.0.1",
                    "port": 9473, "machineModel": "Mac16,1", "osVersion": "15.1", "cpuCores": 10,
                    "totalMemoryGB": 32, "fleetVersion": "1.4.0"},
    "GetNodeStats": {"nodeID": NODE_ID, "timestamp": "2025-03-01T10:00:00Z", "cpuUsagePercent": 12.5,
                     "memoryUsedGB": 10.5, "memoryTotalGB": 32, "diskUsedGB": 200.0, "diskTotalGB": 1000.0,
                     "runningVMCount": 1, "totalVMCount": 2},
    "ListVMs": {"vms": [_VM, dict(_VM, id="6F1C2D3E-0000-4000-8000-000000000002", name="b", state="stopped")]},
    "StartVM": {"success": True, "message": "started"},
    "StopVM": {"success": True},
    "SuspendVM": {"success": True},
    "StartVMRecovery": {"success": True},
    "DeleteVM": {"success": True},
    "CloneVM": {"success": True, "newVM": dict(_VM, id="6F1C2D3E-0000-4000-8000-000000000003",
                                               name="my-clone", state="stopped")},
    "RenameVM": {"success": True},
    "CreateVMOnNode": {"success": True, "vmID": "6F1C2D3E-0000-4000-8000-000000000004"},
    "GetVMSettings": {"success": True, "configuration": {"cpuCount": 4, "memorySize": 8192, "displayWidth": 1920,
                                                         "displayHeight": 1080, "intent": "ci"}},
    "UpdateVMSettings": {"success": True},
    "ListSnapshots": {"snapshots": [_SNAPSHOT]},
    "CreateSnapshot": {"success": True, "snapshot": _SNAPSHOT},
    "RestoreSnapshot": {"success": True},
    "DeleteSnapshot": {"success": True},
    "ExecCommand": {"success": True, "exitCode": 0, "stdout": "Darwin\n", "stderr": "", "duration": 0.25},
    "ListTemplates": {"templates": [_TEMPLATE]},
    "GetTemplate": {"success": True, "template": _TEMPLATE},
    "CreateTemplateFromVM": {"success": True, "template": _TEMPLATE},
    "DeleteTemplate": {"success": True},
    "ListSharedFolders": {"success": True, "folders": [{"name": "src", "hostPath": "/Users/dev/src",
                                                        "readOnly": False, "isEnabled": True}]},
    "AddSharedFolder": {"success": True},
    "RemoveSharedFolder": {"success": True},
    "SetSharedFolderEnabled": {"success": True},
    "ListRemoteIPSWs": {"ipsws": [{"name": "macOS 15.1", "version": "15.1", "path": "/ipsw/15.1.ipsw",
                                   "sizeBytes": 15000000000}]},
    "ListRemoteOCIImages": {"images": [{"reference": "ghcr.io/o/base:latest", "sizeBytes": 30000000000}]},
    "DownloadIPSWOnNode": {"success": True},
    "GetIPSWInfo": {"name": "macOS 15.1", "version": "15.1", "buildVersion": "24B83", "sizeBytes": 15000000000},
    "PullOCIImageOnNode": {"success": True},
    "PushImage": {"success": True, "taskID": TASK_ID},
    "GetTasks": {"tasks": [_TASK]},
    "GetFleetOverview": {"overview": {"stats": {"connectedNodes": 2, "totalNodes": 2, "runningVMs": 1,
                                                "totalVMs": 2, "aggregatedCPUUsage": 12.5},
                                      "managerNode": {"name": "mac-01", "hostname": "mac-01.local"},
                                      "workerNodes": [{"name": "mac-02", "connectionState": "connected"}],
                                      "vms": [{"name": "ci-runner-01", "hostName": "mac-01", "state": "running"}]}},
    "GetFleetEvents": {"events": [{"id": "e1", "eventType": "vm_started", "nodeName": "mac-01",
                                   "message": "started", "timestamp": "2025-03-01T10:00:00Z"}]},
    "GetRemoteResources": {"availableCPU": 6, "availableMemoryGB": 20, "availableDiskGB": 500, "maxVMs": 2,
                           "runningVMs": 1},
    "GenerateAPIToken": {"success": True, "token": {"id": "tok-1", "name": "ci", "token": "csk_" + "n" * 40,
                                                    "permissions": "readOnly",
                                                    "createdAt": "2025-03-01T10:00:00Z"}},
    "RevokeAPIToken": {"revoked": True},
    "ListAPITokens": {"tokens": [{"id": "tok-1", "name": "ci", "tokenPrefix": "csk_nnnn", "permissions": "readOnly",
                                  "createdAt": "2025-03-01T10:00:00Z", "lastUsedAt": "2025-03-02T10:00:00Z"}]},
    "Unpair": {"success": True},
    "CleanupVMs": {"success": True, "cleanedCount": 3},
    "RequestPairing": {"accepted": True, "responderNodeID": {"value": NODE_ID}, "responderName": "mac-01"},
}


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: Any
    client_port: int


@dataclass
class Override:
    status: int = 200
    raw: bytes | None = None
    body: Any = None
    delay: float = 0.0
    close_delimited: bool = False  # no Content-Length: the body ends when the connection closes
    headers: dict[str, str] = field(default_factory=dict)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: RecordingServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body: Any = json.loads(raw)
        except ValueError:
            body = raw
        method = self.path.rsplit("/", 1)[-1]
        self.server.record(Recorded(method, self.path, dict(self.headers.items()), body, self.client_address[1]))
        override = self.server.overrides.get(method) or self.server.overrides.get("*")
        status, headers, payload = 200, {}, None
        if override is not None:
            if override.delay:
                time.sleep(override.delay)
            status, headers = override.status, override.headers
            if override.raw is not None:
                payload = override.raw
            elif override.body is not None:
                payload = json.dumps(override.body).encode()
        if payload is None:
            payload = json.dumps(CANNED.get(method, {"success": False, "error": f"unknown method {method}"})).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            if override is not None and override.close_delimited:
                self.send_header("Connection", "close")
                self.close_connection = True
            elif "Content-Length" not in headers:
                self.send_header("Content-Length", str(len(payload)))
            for key, value in headers.items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True


class RecordingServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.requests: list[Recorded] = []
        self.overrides: dict[str, Override] = {}
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def port(self) -> int:
        return self.server_address[1]

    def record(self, request: Recorded) -> None:
        with self._lock:
            self.requests.append(request)

    def take(self) -> list[Recorded]:
        with self._lock:
            taken, self.requests = self.requests, []
        return taken

    def start(self) -> RecordingServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
        self._thread.join(timeout=5)
