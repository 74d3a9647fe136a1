"""Reads of the fleet app: the merged activity log, cleanup previews, the managers' view of workers."""

from __future__ import annotations

import heapq
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from fleetui.activity.models import FleetEvent, Operation
from fleetui.activity.registry import kind_label, registered_kinds
from fleetui.nodes.models import Node
from fleetui.vms.models import VM

# ----------------------------------------------------------------------------- activity log

EVENT = "e"
OPERATION = "o"  # sorts after EVENT: at the same instant an operation is listed above an event


def is_operation_kind(value: str) -> bool:
    """Operation kinds are "<thing>.<action>"; node event types are snake_case without dots."""
    return "." in value


@dataclass(frozen=True)
class ActivityFilter:
    node: str = ""
    type: str = ""
    user: str = ""
    source: str = ""  # "", "events" or "operations"
    since: datetime | None = None
    until: datetime | None = None
    # Every name `node` is known by: the name it is registered under here (operations) and the
    # name the Fleet itself gives it (managers' events), when the two differ. See node_aliases().
    node_names: tuple[str, ...] = ()

    @property
    def node_filter(self) -> tuple[str, ...]:
        return self.node_names or ((self.node,) if self.node else ())

    @property
    def wants_events(self) -> bool:
        if self.source == "operations" or self.user:
            return False  # node events have no dashboard user
        return not (self.type and is_operation_kind(self.type))

    @property
    def wants_operations(self) -> bool:
        if self.source == "events":
            return False
        return not (self.type and not is_operation_kind(self.type))


@dataclass(frozen=True)
class Cursor:
    """A position in the merged log: rows are ordered by (at, source, id), newest first."""

    at: datetime
    source: str
    id: str

    def encode(self) -> str:
        return f"{self.at.isoformat()}~{self.source}~{self.id}"

    @classmethod
    def decode(cls, raw: str) -> Cursor | None:
        """None for anything malformed: a bad cursor shows the first page rather than an error."""
        parts = raw.split("~")
        if len(parts) != 3 or parts[1] not in (EVENT, OPERATION):
            return None
        at = parse_datetime(parts[0])
        if at is None or timezone.is_naive(at):
            return None
        try:
            ident = str(int(parts[2])) if parts[1] == EVENT else str(uuid.UUID(parts[2]))
        except ValueError:
            return None
        return cls(at=at, source=parts[1], id=ident)


@dataclass
class ActivityRow:
    source: str
    at: datetime
    id: str
    type: str
    node_name: str
    vm_name: str
    username: str = ""
    message: str = ""
    status: str = ""
    error: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def is_operation(self) -> bool:
        return self.source == OPERATION

    @property
    def cursor(self) -> Cursor:
        return Cursor(at=self.at, source=self.source, id=self.id)

    @property
    def sort_key(self) -> tuple[datetime, str, Any]:
        return (self.at, self.source, int(self.id) if self.source == EVENT else uuid.UUID(self.id))


@dataclass
class ActivityPage:
    rows: list[ActivityRow]
    newer: Cursor | None  # pass as ?after= to see the rows just newer than this page
    older: Cursor | None  # pass as ?before= for the next, older page


def _by_name(qs: QuerySet, names: tuple[str, ...]) -> QuerySet:
    return qs.filter(node_name=names[0]) if len(names) == 1 else qs.filter(node_name__in=names)


def _events(flt: ActivityFilter) -> QuerySet[FleetEvent]:
    qs = FleetEvent.objects.all()
    if flt.node_filter:
        qs = _by_name(qs, flt.node_filter)
    if flt.type:
        qs = qs.filter(event_type=flt.type)
    if flt.since:
        qs = qs.filter(timestamp__gte=flt.since)
    if flt.until:
        qs = qs.filter(timestamp__lte=flt.until)
    return qs


def _operations(flt: ActivityFilter) -> QuerySet[Operation]:
    qs = Operation.objects.all()
    if flt.node_filter:
        qs = _by_name(qs, flt.node_filter)
    if flt.type:
        qs = qs.filter(kind=flt.type)
    if flt.user:
        qs = qs.filter(username=flt.user)
    if flt.since:
        qs = qs.filter(created_at__gte=flt.since)
    if flt.until:
        qs = qs.filter(created_at__lte=flt.until)
    return qs


def _beyond(cursor: Cursor, side: str, at_field: str, older: bool) -> Q:
    """Rows of one side strictly older (or newer) than `cursor` in the merged (at, source, id) order.

    Written as a range on the time column (at <= cursor, or >=) plus a tie-break, rather than
    "at < c OR (at = c AND ...)", so both SQLite and PostgreSQL seek in the time index.
    """
    lt, le = ("lt", "lte") if older else ("gt", "gte")
    within = Q(**{f"{at_field}__{le}": cursor.at})
    if side == cursor.source:
        ident: Any = int(cursor.id) if side == EVENT else uuid.UUID(cursor.id)
        return within & (Q(**{f"{at_field}__{lt}": cursor.at}) | Q(**{f"id__{lt}": ident}))
    # Same instant, other side: included only if this side sorts beyond the cursor's side.
    side_is_beyond = (side < cursor.source) if older else (side > cursor.source)
    return within if side_is_beyond else Q(**{f"{at_field}__{lt}": cursor.at})


_EVENT_FIELDS = ("id", "timestamp", "event_type", "node_name", "vm_name", "message")
_OPERATION_FIELDS = ("id", "created_at", "kind", "node_name", "vm_name", "username", "status", "error", "result")


def _event_rows(flt: ActivityFilter, cursor: Cursor | None, older: bool, limit: int) -> list[ActivityRow]:
    qs = _events(flt)
    if cursor:
        qs = qs.filter(_beyond(cursor, EVENT, "timestamp", older))
    order = ("-timestamp", "-id") if older else ("timestamp", "id")
    return [
        ActivityRow(source=EVENT, at=r["timestamp"], id=str(r["id"]), type=r["event_type"], node_name=r["node_name"],
                    vm_name=r["vm_name"], message=r["message"])
        for r in qs.order_by(*order).values(*_EVENT_FIELDS)[:limit]
    ]


def _operation_rows(flt: ActivityFilter, cursor: Cursor | None, older: bool, limit: int) -> list[ActivityRow]:
    qs = _operations(flt)
    if cursor:
        qs = qs.filter(_beyond(cursor, OPERATION, "created_at", older))
    order = ("-created_at", "-id") if older else ("created_at", "id")
    return [
        ActivityRow(source=OPERATION, at=r["created_at"], id=str(r["id"]), type=r["kind"], node_name=r["node_name"],
                    vm_name=r["vm_name"], username=r["username"], status=r["status"], error=r["error"],
                    message=operation_summary(r["kind"], r["status"], r["error"], r["result"]), extra=r["result"])
        for r in qs.order_by(*order).values(*_OPERATION_FIELDS)[:limit]
    ]


def operation_summary(kind: str, status: str, error: str, result: Any) -> str:
    """One line saying what an operation did, for the log and the CSV."""
    label = operation_label(kind)
    if status == "failed":
        return f"{label}: failed: {error}" if error else f"{label}: failed"
    if status in ("pending", "running"):
        return f"{label}: {status}"
    if isinstance(result, dict) and isinstance(result.get("message"), str) and result["message"]:
        return f"{label}: {result['message']}"
    return f"{label}: {status}"


def operation_label(kind: str) -> str:
    return kind_label(kind)


def activity_page(flt: ActivityFilter, *, before: Cursor | None = None, after: Cursor | None = None,
                  size: int = 50) -> ActivityPage:
    """One page of the merged log, newest first, by keyset.

    Each side is read in its own time index order, limited to size+1 rows past the cursor, and
    the two short lists are merged here: the work per page stays constant however long the log
    grows (no OFFSET, no sort of the whole union).
    """
    older = after is None
    cursor = after if after is not None else before
    rows: list[ActivityRow] = []
    if flt.wants_events:
        rows += _event_rows(flt, cursor, older, size + 1)
    if flt.wants_operations:
        rows += _operation_rows(flt, cursor, older, size + 1)
    rows.sort(key=lambda r: r.sort_key, reverse=older)
    more = len(rows) > size
    rows = rows[:size]
    if not older:
        rows.reverse()
    if not rows:
        return ActivityPage(rows=[], newer=None, older=None)
    if older:
        has_newer, has_older = cursor is not None, more
    else:
        has_newer, has_older = more, True
    return ActivityPage(
        rows=rows,
        newer=rows[0].cursor if has_newer else None,
        older=rows[-1].cursor if has_older else None,
    )


def activity_count(flt: ActivityFilter) -> int:
    total = 0
    if flt.wants_events:
        total += _events(flt).count()
    if flt.wants_operations:
        total += _operations(flt).count()
    return total


def _side_iter(fetch: Any, flt: ActivityFilter, chunk: int) -> Iterator[ActivityRow]:
    cursor: Cursor | None = None
    while True:
        rows = fetch(flt, cursor, True, chunk)
        yield from rows
        if len(rows) < chunk:
            return
        cursor = rows[-1].cursor


def activity_iter(flt: ActivityFilter, *, chunk: int = 2000) -> Iterator[ActivityRow]:
    """Every matching row, newest first (for the streaming CSV export).

    Each side is read once, in keyset chunks of its own, and the two streams are merged as they
    go: memory stays at two chunks and no row is fetched twice, however long the log.
    """
    streams = []
    if flt.wants_events:
        streams.append(_side_iter(_event_rows, flt, chunk))
    if flt.wants_operations:
        streams.append(_side_iter(_operation_rows, flt, chunk))
    yield from heapq.merge(*streams, key=lambda r: r.sort_key, reverse=True)


def activity_choices() -> dict[str, list[str]]:
    """What the filter form offers: node names, event types, operation kinds, usernames."""
    from django.contrib.auth import get_user_model

    event_types = list(FleetEvent.objects.order_by("event_type").values_list("event_type", flat=True).distinct())
    kinds = set(Operation.objects.order_by("kind").values_list("kind", flat=True).distinct())
    kinds |= set(registered_kinds())
    return {
        "nodes": list(Node.objects.order_by("name").values_list("name", flat=True)),
        "event_types": event_types,
        "operation_kinds": sorted(kinds),
        "users": list(get_user_model().objects.order_by("username").values_list("username", flat=True)),
    }


def node_aliases(name: str) -> tuple[str, ...]:
    """`name` and the other name the same node goes by, from the managers' overviews.

    A node registered here as "mac-mini-03" may call itself "Build Mac 3" in the Fleet, and the
    managers' events use the Fleet's name: a filter on either name should show both sides.
    """
    names = {name}
    for view in manager_views():
        for entry in [view.manager, *view.workers]:
            if entry is None or entry.registered is None or not entry.name:
                continue
            pair = {entry.registered.name, entry.name}
            if name in pair:
                names |= pair
    return tuple(sorted(names))


# ----------------------------------------------------------------------------- cleanup preview

@dataclass
class CleanupPreview:
    node: Node
    force: bool
    doomed: list[VM]
    # VMs whose settings (intent, TTL) were never read: the node may know them to be expired.
    unknown: list[VM]
    as_of: datetime
    # When the least recently read settings of the node's VMs were read (None: some never were).
    oldest_settings_at: datetime | None = None


def cleanup_preview(node: Node, *, force: bool, now: datetime | None = None) -> CleanupPreview:
    """Exactly which of the node's VMs CleanupVMs would remove, from what the pollers last saw.

    The node's rule (fleetsim follows it): a VM whose TTL has passed (expiresAt <= now) goes if its
    intent is "disposable"; with force, whatever its intent.
    """
    now = now or timezone.now()
    alive = VM.objects.filter(node=node, gone_at__isnull=True)
    expired = alive.filter(expires_at__isnull=False, expires_at__lte=now)
    if not force:
        expired = expired.filter(intent="disposable")
    unknown = alive.filter(settings_at__isnull=True)
    oldest = alive.filter(settings_at__isnull=False).order_by("settings_at").values_list("settings_at", flat=True)
    return CleanupPreview(
        node=node,
        force=force,
        doomed=list(expired.order_by("expires_at", "name")),
        unknown=list(unknown.order_by("name")),
        as_of=now,
        oldest_settings_at=oldest.first(),
    )


def expired_vm_counts() -> dict[int, dict[str, int]]:
    """Per node id: VMs that a cleanup would remove now, without and with force."""
    now = timezone.now()
    rows = (
        VM.objects.filter(gone_at__isnull=True, expires_at__isnull=False, expires_at__lte=now)
        .values_list("node_id", "intent")
    )
    counts: dict[int, dict[str, int]] = {}
    for node_id, intent in rows:
        entry = counts.setdefault(node_id, {"normal": 0, "forced": 0})
        entry["forced"] += 1
        if intent == "disposable":
            entry["normal"] += 1
    return counts


# ----------------------------------------------------------------------------- managers' overview

@dataclass
class WorkerView:
    name: str
    node_id: str
    host: str
    port: int | None
    connection_state: str
    running_vms: int | None
    total_vms: int | None
    cpu_usage_percent: float | None
    memory_used_gb: float | None
    memory_total_gb: float | None
    machine_model: str
    last_seen: datetime | None
    registered: Node | None
    is_manager: bool = False


@dataclass
class ManagerView:
    node: Node
    stats: dict[str, Any]
    manager: WorkerView | None
    workers: list[WorkerView]
    as_of: datetime | None

    @property
    def unregistered_count(self) -> int:
        return sum(1 for w in self.workers if w.registered is None)


def _num(value: Any, kind: type = float) -> Any:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        return kind(value)
    except (ValueError, OverflowError):
        return None


def _text(value: Any, limit: int = 253) -> str:
    return value[:limit] if isinstance(value, str) else ""


def _worker(entry: Any, registered: list[Node], is_manager: bool = False) -> WorkerView | None:
    if not isinstance(entry, dict):
        return None
    node_id = _text(entry.get("nodeID"), 64)
    host = _text(entry.get("ipAddress")) or _text(entry.get("hostname")) or _text(entry.get("host"))
    port = _num(entry.get("port"), int)
    if port is not None and not 1 <= port <= 65535:
        port = None
    name = _text(entry.get("name"), 100) or _text(entry.get("hostname"), 100)
    match = None
    for node in registered:
        if node_id and node.remote_node_id and node.remote_node_id.upper() == node_id.upper():
            match = node
            break
    if match is None:
        for node in registered:
            same_host = host and node.host in {host, _text(entry.get("hostname")), _text(entry.get("ipAddress"))}
            if same_host and (port is None or node.port == port):
                match = node
                break
    last_seen = entry.get("lastSeen")
    return WorkerView(
        name=name,
        node_id=node_id,
        host=host,
        port=port,
        connection_state=_text(entry.get("connectionState"), 32) or "unknown",
        running_vms=_num(entry.get("runningVMs"), int),
        total_vms=_num(entry.get("totalVMs"), int),
        cpu_usage_percent=_num(entry.get("cpuUsagePercent")),
        memory_used_gb=_num(entry.get("memoryUsedGB")),
        memory_total_gb=_num(entry.get("memoryTotalGB")),
        machine_model=_text(entry.get("machineModel"), 64),
        last_seen=parse_datetime(last_seen) if isinstance(last_seen, str) else None,
        registered=match,
        is_manager=is_manager,
    )


def manager_views() -> list[ManagerView]:
    """Each manager's fleet overview as last polled, its workers matched to registered nodes.

    A worker is "registered here" when a node's GetNodeInfo nodeID matches, or failing that its
    host (IP or hostname) and port.
    """
    nodes = list(Node.objects.order_by("name"))
    views = []
    for node in nodes:
        if not node.is_manager and not node.fleet_overview:
            continue
        raw = node.fleet_overview if isinstance(node.fleet_overview, dict) else {}
        overview = raw.get("overview", raw)
        overview = overview if isinstance(overview, dict) else {}
        workers_raw = overview.get("workerNodes")
        workers = [w for w in (_worker(e, nodes) for e in (workers_raw if isinstance(workers_raw, list) else [])) if w]
        stats = overview.get("stats") if isinstance(overview.get("stats"), dict) else {}
        views.append(ManagerView(
            node=node,
            stats={k: v for k, v in stats.items() if isinstance(v, int | float | str) and not isinstance(v, bool)},
            manager=_worker(overview.get("managerNode"), nodes, is_manager=True),
            workers=workers,
            as_of=node.fleet_overview_at,
        ))
    return views
