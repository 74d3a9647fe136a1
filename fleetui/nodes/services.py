"""Writes for nodes: registration (probing the node first), edit, removal, and the poll.

A poll asks the node for its stats, VMs and tasks every time; its info, images and free resources
every few polls; a manager's fleet overview and events every time. It writes only what changed
(VM, task, image and event rows), plus one Node row update and one stats sample. Any failure
becomes the node's last_error in plain words; after BREAKER_THRESHOLD failures in a row the node
is backed off (scheduled polls skip it until backoff_until, then probe it once).
"""

from __future__ import annotations

import ipaddress
import logging
import re
import socket
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import redis
from ciderstack import FleetClient
from ciderstack.errors import FleetError, FleetNodeError, FleetProtocolError
from ciderstack.types import VM as RemoteVM
from ciderstack.types import NodeInfo, NodeStats
from ciderstack.types import Task as RemoteTask
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, InterfaceError, OperationalError, connection, transaction
from django.db.models import F, Value
from django.db.models.functions import ExtractMinute, Floor, TruncHour
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from fleetui.alerts.hooks import alerts_evaluate_node
from fleetui.core.crypto import CredentialUnreadable, decrypt, encrypt
from fleetui.nodes.client import client_for, describe_error, describe_probe_error, probe_node
from fleetui.nodes.locks import node_poll_lock
from fleetui.nodes.models import Node, NodeStatsSample

logger = logging.getLogger(__name__)

# Circuit breaker: after this many failed polls in a row, back off exponentially up to the cap.
BREAKER_THRESHOLD = 3
BREAKER_MAX_SECONDS = 300
# What is not asked on every poll, and how often it is.
INFO_REFRESH_SECONDS = 300
IMAGES_REFRESH_SECONDS = 60
RESOURCES_REFRESH_SECONDS = 30
EVENTS_FETCH_LIMIT = 200
# Stats history: every sample for an hour, then one per 5 minutes up to a day, then one per hour.
KEEP_ALL_SAMPLES = timedelta(hours=1)
KEEP_5_MINUTE_SAMPLES = timedelta(days=1)

# Failures of our own parts that a retry may fix.
TRANSIENT_ERRORS = (OperationalError, InterfaceError, redis.RedisError)

TOKEN_PREFIX_LENGTH = 12
MAX_TOKEN_LENGTH = 512
_TOKEN = re.compile(r"^csk_[\x21-\x7e]+$")
_HOSTNAME = re.compile(
    r"^(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$"
)
# Cloud metadata services (AWS, ECS, GCP, Azure, Alibaba, Oracle); link-local ones are refused anyway.
_METADATA_ADDRESSES = {
    ipaddress.ip_address(a)
    for a in ("169.254.169.254", "169.254.170.2", "fd00:ec2::254", "100.100.100.200", "192.0.0.192")
}
_METADATA_NAMES = {"metadata", "metadata.google.internal", "metadata.goog", "instance-data",
                   "instance-data.ec2.internal", "metadata.azure.com"}


class NodeError(Exception):
    """A node could not be registered or changed; `.message` says why in plain words."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


# ---------------------------------------------------------------- validation


def _address_problem(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    """Why this address cannot be a node's, or ""."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip in _METADATA_ADDRESSES:
        return "is a cloud metadata address"
    if ip.is_unspecified:
        return "is the unspecified address"
    if ip.is_multicast:
        return "is a multicast address"
    if ip.is_link_local:
        return "is a link-local address"
    if isinstance(ip, ipaddress.IPv4Address) and ip == ipaddress.IPv4Address("255.255.255.255"):
        return "is the broadcast address"
    if ip.is_loopback and not settings.ALLOW_LOOPBACK_NODES:
        return "is a loopback address (allowed only when FLEETUI_ALLOW_LOOPBACK_NODES is on)"
    if ip.is_reserved and not ip.is_loopback:
        return "is a reserved address"
    return ""


def validate_node_host(host: str) -> str:
    """The host, normalised (IP literal compressed, name lower-cased); ValidationError in plain words
    for what cannot be a node: link-local and cloud-metadata addresses, multicast, unspecified,
    broadcast and reserved ones, and loopback unless settings.ALLOW_LOOPBACK_NODES."""
    if not isinstance(host, str):
        raise ValidationError("Enter the node's IP address or host name.")
    value = host.strip()
    if value.startswith("[") and value.endswith("]"):
        value = value[1:-1]
    if not value:
        raise ValidationError("Enter the node's IP address or host name.")
    if len(value) > 253:
        raise ValidationError("A host name has at most 253 characters.")
    try:
        ip = ipaddress.ip_address(value)
    except ValueError:
        ip = None
    if ip is not None:
        problem = _address_problem(ip)
        if problem:
            raise ValidationError(f"{ip} {problem}, not a node's address.")
        return ip.compressed
    if "%" in value:
        raise ValidationError("Scoped (link-local) IPv6 addresses cannot be nodes.")
    name = value.lower().rstrip(".")
    if not _HOSTNAME.match(name):
        raise ValidationError("Enter an IP address or a host name (letters, digits, hyphens and dots).")
    if name in _METADATA_NAMES:
        raise ValidationError(f"{name} is a cloud metadata service, not a node.")
    if (name == "localhost" or name.endswith(".localhost")) and not settings.ALLOW_LOOPBACK_NODES:
        raise ValidationError(
            f"{name} is a loopback address (allowed only when FLEETUI_ALLOW_LOOPBACK_NODES is on)."
        )
    return name


def refused_resolved_address(host: str, port: int) -> tuple[str, str] | None:
    """(address, why) for the first address a host name resolves to that validate_node_host would
    refuse; None for an IP literal (bracketed or not), a name that does not resolve here, or a name
    whose addresses are all allowed. Also used for webhook URLs (fleetui.alerts.urls_safety)."""
    try:
        ipaddress.ip_address(host.strip("[]"))
        return None
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError):
        return None
    for info in infos:
        address = str(info[4][0]).split("%", 1)[0]
        try:
            problem = _address_problem(ipaddress.ip_address(address))
        except ValueError:
            continue
        if problem:
            return address, problem
    return None


def _check_resolved(host: str, port: int) -> None:
    """Refuse a host name that resolves to an address validate_node_host would refuse.

    A name that does not resolve is left to the probe, which then says so.
    """
    refused = refused_resolved_address(host, port)
    if refused is not None:
        address, problem = refused
        raise NodeError(f"{host} resolves to {address}, which {problem}.")


def _clean_name(name: Any) -> str:
    if not isinstance(name, str) or not name.strip():
        raise NodeError("Give the node a name.")
    value = name.strip()
    if len(value) > 100:
        raise NodeError("A node name has at most 100 characters.")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        raise NodeError("Remove the control characters from the node name.")
    return value


def _clean_host(host: Any) -> str:
    try:
        return validate_node_host(host)
    except ValidationError as exc:
        raise NodeError(" ".join(exc.messages)) from None


def _clean_port(port: Any) -> int:
    try:
        value = int(port)
    except (TypeError, ValueError):
        raise NodeError("The port must be a number from 1 to 65535.") from None
    if not 1 <= value <= 65535 or isinstance(port, bool):
        raise NodeError("The port must be a number from 1 to 65535.")
    return value


@sensitive_variables("token", "value")
def _clean_token(token: Any) -> str:
    if not isinstance(token, str) or not token.strip():
        raise NodeError("Enter the node's API token.")
    value = token.strip()
    if len(value) > MAX_TOKEN_LENGTH:
        raise NodeError(f"An API token has at most {MAX_TOKEN_LENGTH} characters.")
    if not _TOKEN.match(value):
        raise NodeError("That is not an API token: they start with csk_ and have no spaces.")
    return value


@sensitive_variables("token")
def _probe(host: str, port: int, token: str) -> tuple[NodeInfo, str]:
    try:
        return probe_node(host=host, port=port, api_token=token)
    except FleetError as exc:
        raise NodeError(describe_probe_error(exc, host=host, port=port)) from None


def _info_fields(info: NodeInfo, now: datetime) -> dict[str, Any]:
    def text(value: Any, limit: int) -> str:
        return str(value or "").replace("\x00", "")[:limit]

    cores = info.cpu_cores if isinstance(info.cpu_cores, int) and 0 <= info.cpu_cores < 2**31 else None
    memory = float(info.total_memory_gb) if isinstance(info.total_memory_gb, int | float) else None
    return {
        "remote_node_id": text(info.node_id, 64),
        "hostname": text(info.hostname, 253),
        "ip_address": text(info.ip_address, 64),
        "machine_model": text(info.machine_model, 64),
        "os_version": text(info.os_version, 64),
        "cpu_cores": cores,
        "total_memory_gb": memory,
        "fleet_version": text(info.fleet_version, 64),
        "info_at": now,
    }


def _enqueue_poll(node_id: int) -> None:
    from fleetui.nodes.tasks import poll_node

    try:
        poll_node.apply_async(args=[node_id], kwargs={"force": True}, retry=False)
    except Exception:  # noqa: BLE001 - the scheduled polls pick the node up anyway
        logger.warning("could not queue the first poll of node %s (is Redis up?)", node_id)


# ---------------------------------------------------------------- register, edit, remove


@sensitive_variables("api_token", "token")
def node_register(*, name: str, host: str, port: int, api_token: str, user: Any) -> Node:
    """Register a node after asking it for its info with the token; NodeError says why not.

    A read-only token is accepted: the node is then marked read-only (its actions disabled).
    """
    name = _clean_name(name)
    host = _clean_host(host)
    port = _clean_port(port)
    token = _clean_token(api_token)
    if Node.objects.filter(name__iexact=name).exists():
        raise NodeError(f"A node named {name} is already registered.")
    same_address = Node.objects.filter(host__iexact=host, port=port).first()
    if same_address is not None:
        raise NodeError(f"{host}:{port} is already registered as {same_address.name}.")
    _check_resolved(host, port)
    info, permission = _probe(host, port, token)
    same_node = Node.objects.filter(remote_node_id=info.node_id[:64]).first()
    if same_node is not None:
        raise NodeError(f"That node (id {info.node_id}) is already registered as {same_node.name}.")
    now = timezone.now()
    node = Node(
        name=name,
        host=host,
        port=port,
        api_token_enc=encrypt(token),
        api_token_prefix=token[:TOKEN_PREFIX_LENGTH],
        token_permission=permission,
        created_by=user if getattr(user, "is_authenticated", False) else None,
        **_info_fields(info, now),
    )
    try:
        with transaction.atomic():
            node.save()
    except IntegrityError:
        raise NodeError(f"A node named {name} is already registered.") from None
    transaction.on_commit(lambda: _enqueue_poll(node.pk))
    logger.info("node %s (%s) registered at %s:%s with a %s token", node.pk, name, host, port, permission)
    return node


@sensitive_variables("api_token", "token", "new_token")
def node_update(*, node: Node, name: str, host: str, port: int, api_token: str | None, user: Any) -> Node:
    """Change a node's name, address or token. An empty token keeps the stored one. A new address or
    token is probed first (NodeError says why it failed); pointing the node at a different machine
    drops what was seen of the old one."""
    name = _clean_name(name)
    host = _clean_host(host)
    port = _clean_port(port)
    new_token = _clean_token(api_token) if api_token not in (None, "") and str(api_token).strip() else None
    if Node.objects.filter(name__iexact=name).exclude(pk=node.pk).exists():
        raise NodeError(f"A node named {name} is already registered.")
    same_address = Node.objects.filter(host__iexact=host, port=port).exclude(pk=node.pk).first()
    if same_address is not None:
        raise NodeError(f"{host}:{port} is already registered as {same_address.name}.")

    updates: dict[str, Any] = {"name": name}
    if new_token is not None or host != node.host or port != node.port:
        if new_token is None:
            try:
                token = decrypt(node.api_token_enc)
            except CredentialUnreadable:
                raise NodeError(
                    "The stored API token can no longer be decrypted; enter the token again to change the address."
                ) from None
            if not token:
                raise NodeError("No API token is stored for this node; enter one.")
        else:
            token = new_token
        _check_resolved(host, port)
        info, permission = _probe(host, port, token)
        same_node = Node.objects.filter(remote_node_id=info.node_id[:64]).exclude(pk=node.pk).first()
        if same_node is not None:
            raise NodeError(f"That node (id {info.node_id}) is already registered as {same_node.name}.")
        now = timezone.now()
        updates.update(host=host, port=port, token_permission=permission, **_info_fields(info, now))
        if new_token is not None:
            updates.update(api_token_enc=encrypt(new_token), api_token_prefix=new_token[:TOKEN_PREFIX_LENGTH])
        # New credentials or address: start the breaker afresh.
        updates.update(consecutive_failures=0, backoff_until=None, last_error="")
        if node.remote_node_id and info.node_id[:64] != node.remote_node_id:
            _forget_observations(node)
            updates.update(role="", resources={}, fleet_overview={}, stats_at=None, images_at=None,
                           resources_at=None, fleet_overview_at=None, last_success_at=None)
    with transaction.atomic():
        for key, value in updates.items():
            setattr(node, key, value)
        try:
            node.save()
        except IntegrityError:
            raise NodeError(f"A node named {name} is already registered.") from None
    if len(updates) > 1:
        transaction.on_commit(lambda: _enqueue_poll(node.pk))
    logger.info("node %s updated by %s", node.pk, getattr(user, "pk", None))
    return node


def _forget_observations(node: Node) -> None:
    from fleetui.images.models import IPSW, NodeTask, OCIImage
    from fleetui.vms.models import VM

    for model in (VM, NodeTask, OCIImage, IPSW, NodeStatsSample):
        model.objects.filter(node=node).delete()


def node_remove(*, node: Node, user: Any) -> None:
    """Remove a node with what was seen of it. Operations and fleet events stay (they keep its name)."""
    node_id, name = node.pk, node.name
    node.delete()
    logger.info("node %s (%s) removed by %s", node_id, name, getattr(user, "pk", None))


# ---------------------------------------------------------------- polling


@dataclass
class PollOutcome:
    """What one poll did. `writes` counts rows written, by kind."""

    node_id: int
    ok: bool = False
    skipped: str = ""
    error: str = ""
    duration_ms: int = 0
    writes: dict[str, int] = field(default_factory=dict)
    # The failure was ours (database, Redis), not the node's: worth a retry.
    transient: bool = False

    @property
    def rows_written(self) -> int:
        return sum(self.writes.values())


@dataclass
class _Seen:
    stats: NodeStats
    vms: list[RemoteVM]
    tasks: list[RemoteTask]
    info: NodeInfo | None = None
    role: str | None = None
    resources: dict[str, Any] | None = None
    overview: dict[str, Any] | None = None
    events: list[dict[str, Any]] | None = None
    images: list[dict[str, Any]] | None = None
    ipsws: list[dict[str, Any]] | None = None


def _due(at: datetime | None, seconds: float, now: datetime) -> bool:
    return at is None or (now - at).total_seconds() >= seconds


def _optional(call: Any, *args: Any, **kwargs: Any) -> Any:
    """A call a node may not answer (an older node, a worker asked a manager's question): its
    refusal is skipped; the node being unreachable still fails the poll."""
    try:
        return call(*args, **kwargs)
    except (FleetNodeError, FleetProtocolError) as exc:
        logger.debug("optional call %s skipped: %s", getattr(call, "__name__", call), type(exc).__name__)
        return None


def _overview_summary(answer: dict[str, Any]) -> dict[str, Any]:
    """The manager's overview without its per-VM list (each node's own poll has the VMs)."""
    overview = answer.get("overview") if isinstance(answer.get("overview"), dict) else answer
    summary = {k: v for k, v in overview.items() if k != "vms"}
    vms = overview.get("vms")
    if isinstance(vms, list):
        summary["vmCount"] = len(vms)
    return summary


def _fetch(node: Node, client: FleetClient, now: datetime) -> _Seen:
    """Every call of a poll; no database writes. The first call doubles as the breaker's probe."""
    from fleetui.images.services import tasks_finished_since

    seen = _Seen(stats=client.get_node_stats(), vms=client.list_vms(), tasks=client.get_tasks(include_completed=True))
    info_due = _due(node.info_at, INFO_REFRESH_SECONDS, now)
    if info_due:
        seen.info = client.get_node_info()
    if node.role == Node.Role.MANAGER or not node.role or info_due:
        try:
            overview = client.get_fleet_overview()
        except FleetNodeError:
            seen.role = Node.Role.WORKER
        else:
            seen.role = Node.Role.MANAGER
            seen.overview = _overview_summary(overview)
            seen.events = _optional(client.get_fleet_events, limit=EVENTS_FETCH_LIMIT)
    if _due(node.resources_at, RESOURCES_REFRESH_SECONDS, now):
        seen.resources = _optional(client.get_remote_resources)
    if _due(node.images_at, IMAGES_REFRESH_SECONDS, now) or tasks_finished_since(seen.tasks, node.images_at):
        seen.images = _optional(client.list_oci_images)
        seen.ipsws = _optional(client.list_ipsws)
    return seen


def _number(value: Any, *, integer: bool = False) -> Any:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if integer:
        return int(value) if 0 <= value < 2**31 else None
    return float(value)


def _record(node: Node, seen: _Seen, now: datetime, duration_ms: int) -> dict[str, int]:
    from fleetui.activity.services import fleet_events_record
    from fleetui.images.services import node_images_record, node_tasks_record
    from fleetui.vms.services import vms_record

    stats = seen.stats
    stat_values = {
        "cpu_usage_percent": _number(stats.cpu_usage_percent),
        "memory_used_gb": _number(stats.memory_used_gb),
        "memory_total_gb": _number(stats.memory_total_gb),
        "disk_used_gb": _number(stats.disk_used_gb),
        "disk_total_gb": _number(stats.disk_total_gb),
        "running_vm_count": _number(stats.running_vm_count, integer=True),
        "total_vm_count": _number(stats.total_vm_count, integer=True),
    }
    updates: dict[str, Any] = {
        **stat_values,
        "stats_at": now,
        "last_poll_started_at": now,
        "last_poll_at": now,
        "last_poll_duration_ms": duration_ms,
        "last_success_at": now,
        "last_error": "",
        "consecutive_failures": 0,
        "backoff_until": None,
    }
    if seen.info is not None:
        updates.update(_info_fields(seen.info, now))
    if seen.role is not None:
        updates["role"] = seen.role
    if seen.resources is not None:
        updates.update(resources=seen.resources, resources_at=now)
    if seen.overview is not None:
        updates.update(fleet_overview=seen.overview, fleet_overview_at=now)

    writes: dict[str, int] = {}
    with transaction.atomic():
        _relax_commit()
        writes.update(vms_record(node_id=node.pk, remote_vms=seen.vms, now=now))
        writes.update(node_tasks_record(node_id=node.pk, remote_tasks=seen.tasks, now=now))
        if seen.images is not None or seen.ipsws is not None:
            writes.update(node_images_record(node_id=node.pk, images=seen.images or [], ipsws=seen.ipsws or [],
                                             now=now))
            updates["images_at"] = now
        if seen.events:
            writes["events_created"] = fleet_events_record(node_id=node.pk, events=seen.events, now=now)
        if all(v is not None for v in stat_values.values()):
            NodeStatsSample.objects.create(node_id=node.pk, at=now, **stat_values)
            writes["stats_samples"] = 1
        writes["nodes_updated"] = Node.objects.filter(pk=node.pk).update(**updates)
    return writes


def _relax_commit() -> None:
    """On PostgreSQL, this transaction's commit does not wait for its WAL flush (8 ms each here).

    What a poll writes is read from the node again every interval, so a crash may lose at most the
    last fraction of a second of polls, never consistency; Operations and everything users do
    keep the server's durable default.
    """
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL synchronous_commit TO OFF")


def _backoff_seconds(failures: int) -> float:
    if failures < BREAKER_THRESHOLD:
        return 0.0
    return float(min(BREAKER_MAX_SECONDS, settings.POLL_INTERVAL * 2 ** (failures - BREAKER_THRESHOLD)))


def _record_failure(node: Node, message: str, started: datetime, duration_ms: int) -> None:
    failures = node.consecutive_failures + 1
    backoff = _backoff_seconds(failures)
    now = timezone.now()
    Node.objects.filter(pk=node.pk).update(
        last_poll_started_at=started,
        last_poll_at=now,
        last_poll_duration_ms=duration_ms,
        last_error=message,
        last_error_at=now,
        consecutive_failures=F("consecutive_failures") + 1,
        backoff_until=now + timedelta(seconds=backoff) if backoff else None,
    )


def node_poll(*, node_id: int, scheduled: bool = False, force: bool = False, lock_wait: float | None = None
              ) -> PollOutcome:
    """One full poll of a node, synchronously; records what it saw or why it failed. Never raises.

    scheduled: a beat poll, which skips a node that is backed off (circuit open).
    force: poll even when backed off (a user action, `manage.py poll`).
    lock_wait: seconds to wait when another poll of the node is running (default: 0 for scheduled
    polls, which then skip, and a poll's worst-case duration for the others).
    """
    outcome = PollOutcome(node_id=node_id)
    if lock_wait is None:
        lock_wait = 0.0 if scheduled else float(settings.NODE_CONNECT_TIMEOUT + settings.NODE_READ_TIMEOUT) * 3
    try:
        with node_poll_lock(node_id, wait=lock_wait) as acquired:
            if not acquired:
                outcome.skipped = "another poll of this node is running"
                return outcome
            outcome = _poll_locked(node_id, outcome, scheduled=scheduled, force=force)
        alerts_evaluate_node(node_id)  # queues the alerts check (offline/back online, failed tasks); never raises
        return outcome
    except Exception as exc:  # noqa: BLE001 - a poll never raises; the database may be what failed
        logger.exception("poll of node %s failed outside the node call", node_id)
        outcome.error = f"could not poll ({type(exc).__name__}); see the worker log"
        outcome.transient = isinstance(exc, TRANSIENT_ERRORS)
        return outcome


def _poll_locked(node_id: int, outcome: PollOutcome, *, scheduled: bool, force: bool) -> PollOutcome:
    node = Node.objects.filter(pk=node_id).first()
    if node is None:
        outcome.skipped = "the node was removed"
        return outcome
    if scheduled and not force and node.circuit_open:
        outcome.skipped = "backed off after repeated failures"
        return outcome
    started = time.monotonic()
    now = timezone.now()
    try:
        with client_for(node) as client:
            seen = _fetch(node, client, now)
    except Exception as exc:  # noqa: BLE001 - every failure becomes the node's last_error
        if not isinstance(exc, FleetError | CredentialUnreadable):
            logger.exception("poll of node %s: unexpected error", node_id)
        outcome.duration_ms = int((time.monotonic() - started) * 1000)
        outcome.error = describe_error(exc, timeout=float(settings.NODE_READ_TIMEOUT))
        _record_failure(node, outcome.error, now, outcome.duration_ms)
        return outcome
    outcome.duration_ms = int((time.monotonic() - started) * 1000)
    try:
        outcome.writes = _record(node, seen, now, outcome.duration_ms)
    except Exception as exc:  # noqa: BLE001
        logger.exception("poll of node %s: could not record what was seen", node_id)
        outcome.error = f"could not record the poll ({type(exc).__name__}); see the worker log"
        outcome.transient = isinstance(exc, TRANSIENT_ERRORS)
        _record_failure(node, outcome.error, now, outcome.duration_ms)
        return outcome
    outcome.ok = True
    return outcome


# ---------------------------------------------------------------- history


def stats_samples_thin(*, now: datetime | None = None) -> int:
    """Thin the stats history: keep every sample of the last hour, the newest per 5 minutes up to a
    day, the newest per hour beyond, nothing past settings.STATS_RETENTION_DAYS. Returns rows deleted."""
    from django.db.models import Window
    from django.db.models.functions import RowNumber

    now = now or timezone.now()
    deleted, _ = NodeStatsSample.objects.filter(
        at__lt=now - timedelta(days=settings.STATS_RETENTION_DAYS)
    ).delete()

    def surplus(start: datetime, end: datetime, partition: list[Any]) -> list[int]:
        ranked = (
            NodeStatsSample.objects.filter(at__gte=start, at__lt=end)
            .annotate(rank=Window(RowNumber(), partition_by=[F("node_id"), *partition], order_by=F("at").desc()))
            .filter(rank__gt=1)
            .values_list("id", flat=True)
        )
        return list(ranked)

    hour = TruncHour("at")
    doomed = surplus(now - KEEP_5_MINUTE_SAMPLES, now - KEEP_ALL_SAMPLES, [hour, Floor(ExtractMinute("at") / Value(5))])
    doomed += surplus(now - timedelta(days=settings.STATS_RETENTION_DAYS), now - KEEP_5_MINUTE_SAMPLES, [hour])
    for start in range(0, len(doomed), 500):
        deleted += NodeStatsSample.objects.filter(id__in=doomed[start : start + 500]).delete()[0]
    return deleted


def history_prune(*, now: datetime | None = None) -> dict[str, int]:
    """Keep the database bounded: thin stats, expire events, drop long-finished tasks and VMs long gone."""
    from fleetui.activity.services import fleet_events_prune
    from fleetui.images.models import ACTIVE_TASK_STATUSES, NodeTask
    from fleetui.vms.models import VM

    now = now or timezone.now()
    retention = now - timedelta(days=settings.EVENTS_RETENTION_DAYS)
    stats_retention = now - timedelta(days=settings.STATS_RETENTION_DAYS)
    return {
        "stats_samples": stats_samples_thin(now=now),
        "events": fleet_events_prune(now=now),
        "tasks": NodeTask.objects.exclude(status__in=ACTIVE_TASK_STATUSES)
        .filter(last_seen_at__lt=retention)
        .delete()[0],
        "vms": VM.objects.filter(gone_at__lt=stats_retention).delete()[0],
    }
