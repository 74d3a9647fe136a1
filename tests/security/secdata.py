"""Test data for the security and hostile-input tests: users of every role, a fleet built with the
ORM that gives every URL pattern something to show, and the walk over every URL pattern.

Pages only read the database, so rows built here are what a worker would have written. `text` is
put in every name and message a node could send (VM names, event messages, command output...), so
the same fleet serves the escaping tests with an HTML payload.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.contrib.auth.models import Group, User
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone

from fleetui.access.models import NodeAPIToken, NodeTokenList
from fleetui.activity.models import FleetEvent, Operation, OperationStatus
from fleetui.catalog.models import SharedFolder, SharedFolderSync, TemplateSync, VMTemplate
from fleetui.core.crypto import encrypt
from fleetui.images.models import IPSW, NodeTask, OCIImage
from fleetui.nodes.models import Node, NodeStatsSample
from fleetui.vms.models import VM, Snapshot

ROLES = ("anonymous", "none", "viewer", "operator", "admin")
RANK = {"anonymous": -1, "none": 0, "viewer": 1, "operator": 2, "admin": 3}
PASSWORD = "x-pass-123-security"
NODE_TOKEN = "csk_secdata_node_token_5f0e1d2c3b4a"
# A Slack-style webhook: the path is the secret.
WEBHOOK_URL = "https://hooks.example.com/services/T0001/B0002/whk5ecretPath9q8r"


def make_users() -> dict[str, User]:
    users = {"none": User.objects.create_user("nobody", password=PASSWORD)}
    for role in ("viewer", "operator", "admin"):
        user = User.objects.create_user(f"{role}1", password=PASSWORD)
        user.groups.add(Group.objects.get(name=role))
        users[role] = user
    return users


@dataclass
class RichFleet:
    nodes: list[Node] = field(default_factory=list)
    vms: list[VM] = field(default_factory=list)
    snapshot: Snapshot | None = None
    template: VMTemplate | None = None
    token: NodeAPIToken | None = None
    operations: dict[str, Operation] = field(default_factory=dict)
    batch: Any = None
    webhook: Any = None


def make_rich_fleet(users: dict[str, User], *, text: str = "plain") -> RichFleet:
    """Two nodes (a paired manager and a worker), VMs in several states with snapshots, settings,
    leases and shared folders, tasks, images, IPSWs, templates, API tokens, events, and an
    Operation of every kind the URL patterns look up (finished, with results)."""
    now = timezone.now()
    fleet = RichFleet()
    for index, role in enumerate((Node.Role.MANAGER, Node.Role.WORKER)):
        node = Node.objects.create(
            name=f"mac-{index}-{text}"[:100], host=f"10.0.0.{index + 1}", port=9473,
            api_token_enc=encrypt(NODE_TOKEN), api_token_prefix=NODE_TOKEN[:12],
            token_permission=Node.Permission.FULL_ACCESS, role=role,
            paired_node_id_enc=encrypt(f"dash-{uuid.uuid4()}") if index == 0 else "",
            pairing_private_key_enc=encrypt("ab" * 32) if index == 0 else "",
            paired_at=now if index == 0 else None,
            remote_node_id=f"remote-{index}", hostname=f"host-{text}"[:253], machine_model=text[:64],
            os_version="15.3", cpu_cores=12, total_memory_gb=64, cpu_usage_percent=30.0, memory_used_gb=20,
            memory_total_gb=64, disk_used_gb=400, disk_total_gb=1000, running_vm_count=1, total_vm_count=3,
            stats_at=now, info_at=now, last_poll_at=now, last_success_at=now - timedelta(seconds=2),
            last_error=f"the node reported: {text}", last_error_at=now - timedelta(seconds=1),
            resources={"availableCPU": 8, "availableMemoryGB": 40, "availableDiskGB": 500},
            fleet_overview={"totalNodes": 2, "onlineNodes": 2, "totalVMs": 6, "runningVMs": 2} if index == 0 else {},
            fleet_overview_at=now if index == 0 else None, images_at=now, resources_at=now,
        )
        fleet.nodes.append(node)
        NodeStatsSample.objects.create(
            node=node, at=now, cpu_usage_percent=30, memory_used_gb=20, memory_total_gb=64, disk_used_gb=400,
            disk_total_gb=1000, running_vm_count=1, total_vm_count=3,
        )
        for state in ("stopped", "running", "paused"):
            fleet.vms.append(VM.objects.create(
                node=node, remote_id=f"vm-{index}-{state}", name=f"{state}-{text}"[:255], state=state,
                cpu_count=4, memory_mb=8192, disk_size_gb=64, os_version=text[:64], ip_address="192.168.64.2",
                intent="disposable", ttl_seconds=3600, expires_at=now + timedelta(hours=1), display_width=1920,
                display_height=1080, settings_at=now, last_seen_at=now, changed_at=now, snapshots_at=now,
            ))
        NodeTask.objects.create(
            node=node, remote_id=f"task-{index}", type="pullImage", title=f"Pull {text}"[:255], status="running",
            progress=40, progress_text=text[:255], started_at=now, vm_name=text[:255], error_message=text,
            last_seen_at=now,
        )
        OCIImage.objects.create(node=node, reference=f"ghcr.io/acme/{index}:15", digest=text[:128],
                                size_bytes=10**10, seen_at=now)
        IPSW.objects.create(node=node, path=f"/ipsw/{index}.ipsw", name=text[:255], version="15.3",
                            size_bytes=10**10, seen_at=now)
        fleet.template = VMTemplate.objects.create(
            node=node, remote_id=f"tpl-{index}", name=f"tpl-{text}"[:255], description=text, macos_version="15",
            category="custom", seen_at=now, created_at=now,
        )
        TemplateSync.objects.create(node=node, synced_at=now, error=text, error_at=now - timedelta(hours=1))
        FleetEvent.objects.create(source_node=fleet.nodes[0], remote_id=f"ev-{index}", event_type="vmStarted",
                                  node_name=text[:255], message=f"VM started: {text}", vm_name=text[:255],
                                  timestamp=now)
    stopped = fleet.vms[0]
    fleet.snapshot = Snapshot.objects.create(vm=stopped, remote_id="snap-1", name=f"snap-{text}"[:255],
                                             description=text, created_at=now, size_bytes=10**9, seen_at=now)
    SharedFolder.objects.create(vm=stopped, name=f"src-{text}"[:255], host_path=f"/Users/ci/{text}"[:1024],
                                mount_tag=text[:255], seen_at=now)
    SharedFolderSync.objects.create(vm=stopped, synced_at=now)
    manager = fleet.nodes[0]
    NodeTokenList.objects.create(node=manager, fetched_at=now)
    fleet.token = NodeAPIToken.objects.create(node=manager, remote_id="tok-1", name=f"ci-{text}"[:255],
                                              token_prefix="csk_abcd", permission="readOnly", created_at=now,
                                              seen_at=now)
    admin = users["admin"]
    results: dict[str, dict[str, Any]] = {
        "vm.exec": {"exit_code": 0, "success": True, "duration": 0.1, "stdout": f"out {text}",
                    "stderr": f"err {text}", "stdout_truncated": False, "stderr_truncated": False},
        "node.cleanup": {"deleted": [text], "skipped": [], "errors": [text]},
        "vm.start": {"message": text},
        "token.generate": {"token_id": "tok-2", "name": text},
        "vm.create": {"vm_id": "vm-new", "message": text},
        "ipsw.download": {"task_id": "task-0"},
    }
    # Parameters as the views record them.
    params: dict[str, dict[str, Any]] = {
        "vm.exec": {"command": f"echo {text}", "ssh_user": "cideradmin", "timeout": 30},
        "node.cleanup": {"force": False},
        "vm.start": {},
        "token.generate": {"name": text, "permission": "readOnly", "adopt": False},
        "vm.create": {"name": text, "cpu_count": 4, "memory_gb": 8, "disk_gb": 64, "source": "image",
                      "oci_image": "ghcr.io/acme/0:15"},
        "ipsw.download": {"url": "https://updates.example.com/x.ipsw", "name": text, "version": "15.3"},
    }
    for kind, result in results.items():
        fleet.operations[kind] = Operation.objects.create(
            kind=kind, status=OperationStatus.SUCCEEDED, user=admin, username=admin.username, node=manager,
            node_name=manager.name, vm=stopped if kind.startswith("vm.") else None,
            vm_name=stopped.name if kind.startswith("vm.") else "",
            vm_remote_id=stopped.remote_id if kind.startswith("vm.") else "",
            params=params[kind],
            result=result, error="", started_at=now, finished_at=now, source_ip="127.0.0.1", request_id="seed",
        )
    fleet.operations["failed"] = Operation.objects.create(
        kind="vm.stop", status=OperationStatus.FAILED, user=admin, username=admin.username, node=manager,
        node_name=manager.name, vm=stopped, vm_name=stopped.name, vm_remote_id=stopped.remote_id,
        error=f"the node reported: {text}", started_at=now, finished_at=now,
    )
    from fleetui.batches.models import Batch, BatchItem

    # A fan-out of the command above: one VM ran it, one was skipped.
    fleet.batch = Batch.objects.create(action="exec", params=params["vm.exec"], user=admin, username=admin.username)
    BatchItem.objects.create(batch=fleet.batch, position=0, vm=stopped, vm_name=stopped.name, node_name=manager.name,
                             operation=fleet.operations["vm.exec"])
    BatchItem.objects.create(batch=fleet.batch, position=1, vm=fleet.vms[1], vm_name=fleet.vms[1].name,
                             node_name=manager.name, skipped_reason=f"skipped: {text}")
    from fleetui.alerts.models import Webhook

    fleet.webhook = Webhook.objects.create(
        name=f"hook-{text}"[:100], url_enc=encrypt(WEBHOOK_URL), url_display="https://hooks.example.com/…",
        created_by=admin,
    )
    return fleet


# ---------------------------------------------------------------- the URL patterns


@dataclass(frozen=True)
class Endpoint:
    name: str
    route: str
    params: tuple[str, ...]


def _route_text(pattern: Any) -> str:
    return str(pattern.pattern)


def all_endpoints() -> list[Endpoint]:
    """Every named URL pattern of the project (Django's own admin left out: it has its own staff
    permissions and is tested on its own), found by walking the resolver."""
    found: list[Endpoint] = []

    def walk(patterns: list[Any], prefix: str, namespace: str | None) -> None:
        for entry in patterns:
            if isinstance(entry, URLResolver):
                if entry.namespace == "admin":
                    continue
                walk(entry.url_patterns, prefix + _route_text(entry), entry.namespace or namespace)
            elif isinstance(entry, URLPattern):
                route = prefix + _route_text(entry)
                params = tuple(re.findall(r"<(?:\w+:)?(\w+)>", route))
                name = entry.name or route
                found.append(Endpoint(f"{namespace}:{name}" if namespace else name, route, params))

    walk(get_resolver().url_patterns, "", None)
    return found


# Endpoints that show an Operation of any kind (the others want one of a given kind).
ANY_OPERATION = {"operation-detail", "vm-exec-result", "vm-operation-follow"}


def auth_headers(endpoint: Endpoint) -> dict[str, str]:
    """What a caller sends besides the session: the scraper's bearer token for /metrics."""
    from django.conf import settings

    return {"Authorization": f"Bearer {settings.METRICS_TOKEN}"} if endpoint.name == "metrics" else {}


def url_for(endpoint: Endpoint, fleet: RichFleet, overrides: dict[str, Any] | None = None) -> str:
    """The endpoint's URL with ids of rows that exist and fit it; `overrides` replaces node_id, vm_id
    or (where any operation fits) operation_id."""
    values: dict[str, Any] = {}
    ops = fleet.operations
    for param in endpoint.params:
        if param == "node_id":
            values[param] = fleet.nodes[0].pk
        elif param == "vm_id":
            values[param] = fleet.vms[0].pk
        elif param == "snapshot_id":
            values[param] = fleet.snapshot.pk
        elif param == "template_id":
            values[param] = fleet.template.pk
        elif param == "token_pk":
            values[param] = fleet.token.pk
        elif param == "batch_id":
            values[param] = fleet.batch.pk
        elif param == "webhook_id":
            values[param] = fleet.webhook.pk
        elif param == "action":
            values[param] = "start"
        elif param == "operation_id":
            kind = {
                "vm-exec-result": "vm.exec", "cleanup-result": "node.cleanup",
                "access-token-generated": "token.generate", "vm-operation-follow": "vm.create",
            }.get(endpoint.name, "vm.start")
            values[param] = ops[kind].pk
        else:
            raise AssertionError(f"no test value for URL parameter {param!r} of {endpoint.name}: add one here")
    for param, value in (overrides or {}).items():
        if param in values and (param != "operation_id" or endpoint.name in ANY_OPERATION):
            values[param] = value
    return reverse(endpoint.name, kwargs=values)
