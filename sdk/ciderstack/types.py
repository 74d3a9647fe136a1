"""Enums and dataclasses of the Fleet API, parsed tolerantly.

Every dataclass has ``from_dict(data)`` that never raises on what a node sends:

- a missing field, or a null/odd-typed value where text or a number was expected,
  gets the field's default ("" for text, 0 for numbers, None for optional fields);
- an unknown enum value (a VM state or task status a newer node invented) is kept
  as the raw string, so ``vm.state == "running"`` works for both; use
  :func:`enum_value` to get the plain string of either;
- timestamps accept ISO-8601 with or without ``Z``/offset and with any number of
  fractional digits (naive ones are taken as UTC), and numbers (Unix seconds or
  milliseconds, or Apple reference-date seconds); a missing or unreadable
  required timestamp becomes "now" in UTC (as the published client does, but
  timezone-aware), an optional one becomes None.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import Enum
from typing import Any, TypeVar

__all__ = [
    "VMState",
    "TaskStatus",
    "NodeRole",
    "APITokenPermissions",
    "NodeInfo",
    "NodeStats",
    "VM",
    "Snapshot",
    "ExecResult",
    "Template",
    "APIToken",
    "APITokenSummary",
    "Task",
    "enum_value",
    "parse_datetime",
]


class VMState(str, Enum):  # noqa: UP042 - as the reference; StrEnum changes str()
    """VM state enumeration."""

    STOPPED = "stopped"
    STARTING = "starting"
    RUNNING = "running"
    PAUSED = "paused"
    STOPPING = "stopping"
    ERROR = "error"


class TaskStatus(str, Enum):  # noqa: UP042 - as the reference; StrEnum changes str()
    """Task status enumeration."""

    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


class NodeRole(str, Enum):  # noqa: UP042 - as the reference; StrEnum changes str()
    """Node role enumeration."""

    WORKER = "worker"
    MANAGER = "manager"
    OPERATOR = "operator"


class APITokenPermissions(str, Enum):  # noqa: UP042 - as the reference; StrEnum changes str()
    """API token permission level."""

    READ_ONLY = "readOnly"
    FULL_ACCESS = "fullAccess"


E = TypeVar("E", bound=Enum)

# Swift's default date encoding counts seconds from 2001-01-01; a bare number below
# this bound cannot be a Unix time of this century, so it is read as such.
_APPLE_EPOCH = datetime(2001, 1, 1, tzinfo=UTC)
_UNIX_SECONDS_FLOOR = 1_000_000_000
_UNIX_MILLIS_FLOOR = 100_000_000_000


def enum_value(value: Enum | str) -> str:
    """The plain string of an enum member or of a raw string kept for an unknown value."""
    if isinstance(value, Enum):
        return str(value.value)
    return str(value)


def parse_datetime(value: Any) -> datetime | None:
    """A timezone-aware datetime from what a node sent, or None if it cannot be read."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        if not math.isfinite(value):
            return None
        try:
            if abs(value) >= _UNIX_MILLIS_FLOOR:
                return datetime.fromtimestamp(value / 1000.0, tz=UTC)
            if abs(value) >= _UNIX_SECONDS_FLOOR:
                return datetime.fromtimestamp(value, tz=UTC)
            return _APPLE_EPOCH + timedelta(seconds=value)
        except (OverflowError, OSError, ValueError):
            return None
    if not isinstance(value, str):
        return None
    text = value.strip()
    if not text:
        return None
    if text[-1] in "zZ":
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed


def _mapping(data: Any) -> dict[str, Any]:
    return data if isinstance(data, dict) else {}


def _text(data: dict[str, Any], key: str, default: str = "") -> str:
    value = data.get(key)
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    return default


def _opt_text(data: dict[str, Any], key: str) -> str | None:
    value = data.get(key)
    if value is None or isinstance(value, (dict, list)):
        return None
    return _text(data, key)


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return None
        return number if math.isfinite(number) else None
    return None


def _int(data: dict[str, Any], key: str, default: int = 0) -> int:
    value = data.get(key)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    number = _number(value)
    return int(number) if number is not None else default


def _opt_int(data: dict[str, Any], key: str) -> int | None:
    value = data.get(key)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    number = _number(value)
    return int(number) if number is not None else None


def _float(data: dict[str, Any], key: str, default: float = 0.0) -> float:
    number = _number(data.get(key))
    return number if number is not None else default


def _bool(data: dict[str, Any], key: str, default: bool = False) -> bool:
    value = data.get(key)
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return value != 0
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in ("true", "yes", "1"):
            return True
        if lowered in ("false", "no", "0"):
            return False
    return default


def _enum(enum_cls: type[E], value: Any, default: E) -> E | str:
    if value is None or value == "":
        return default
    if isinstance(value, enum_cls):
        return value
    try:
        return enum_cls(value)
    except ValueError:
        # A value this SDK does not know (a newer node): keep it rather than lose the item.
        return value if isinstance(value, str) else str(value)


def _required_dt(data: dict[str, Any], key: str) -> datetime:
    return parse_datetime(data.get(key)) or datetime.now(UTC)


def _opt_dt(data: dict[str, Any], key: str) -> datetime | None:
    return parse_datetime(data.get(key))


def _redacted(secret: str, keep: int = 8) -> str:
    if not secret:
        return ""
    return secret[:keep] + "…" if len(secret) > keep else "…"


@dataclass
class NodeInfo:
    """Information about a Fleet node."""

    node_id: str
    name: str
    hostname: str
    ip_address: str
    port: int
    machine_model: str
    os_version: str
    cpu_cores: int
    total_memory_gb: int
    fleet_version: str

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> NodeInfo:
        data = _mapping(data)
        return cls(
            node_id=_text(data, "nodeID"),
            name=_text(data, "name"),
            hostname=_text(data, "hostname"),
            ip_address=_text(data, "ipAddress"),
            port=_int(data, "port", 9473),
            machine_model=_text(data, "machineModel"),
            os_version=_text(data, "osVersion"),
            cpu_cores=_int(data, "cpuCores"),
            total_memory_gb=_int(data, "totalMemoryGB"),
            fleet_version=_text(data, "fleetVersion"),
        )


@dataclass
class NodeStats:
    """Real-time statistics for a node."""

    node_id: str
    timestamp: datetime
    cpu_usage_percent: float
    memory_used_gb: float
    memory_total_gb: float
    disk_used_gb: float
    disk_total_gb: float
    running_vm_count: int
    total_vm_count: int

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> NodeStats:
        data = _mapping(data)
        return cls(
            node_id=_text(data, "nodeID"),
            timestamp=_required_dt(data, "timestamp"),
            cpu_usage_percent=_float(data, "cpuUsagePercent"),
            memory_used_gb=_float(data, "memoryUsedGB"),
            memory_total_gb=_float(data, "memoryTotalGB"),
            disk_used_gb=_float(data, "diskUsedGB"),
            disk_total_gb=_float(data, "diskTotalGB"),
            running_vm_count=_int(data, "runningVMCount"),
            total_vm_count=_int(data, "totalVMCount"),
        )


@dataclass
class VM:
    """A virtual machine. ``state`` is a VMState, or the raw string of a state this SDK does not know."""

    id: str
    name: str
    state: VMState | str
    cpu_count: int
    memory_mb: int
    disk_size_gb: int | None
    os_version: str | None
    ip_address: str | None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> VM:
        data = _mapping(data)
        return cls(
            id=_text(data, "id"),
            name=_text(data, "name"),
            state=_enum(VMState, data.get("state"), VMState.STOPPED),
            cpu_count=_int(data, "cpuCount"),
            memory_mb=_int(data, "memoryMB"),
            disk_size_gb=_opt_int(data, "diskSizeGB"),
            os_version=_opt_text(data, "osVersion"),
            ip_address=_opt_text(data, "ipAddress"),
        )


@dataclass
class Snapshot:
    """A VM snapshot."""

    id: str
    name: str
    description: str | None
    created_at: datetime
    size_bytes: int

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Snapshot:
        data = _mapping(data)
        return cls(
            id=_text(data, "id"),
            name=_text(data, "name"),
            description=_opt_text(data, "description"),
            created_at=_required_dt(data, "createdAt"),
            size_bytes=_int(data, "sizeBytes"),
        )


@dataclass
class Task:
    """A background task. ``status`` is a TaskStatus, or the raw string of one this SDK does not know."""

    id: str
    type: str
    title: str
    status: TaskStatus | str
    progress: float
    progress_text: str | None
    started_at: datetime
    completed_at: datetime | None
    vm_id: str | None
    vm_name: str | None
    error_message: str | None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Task:
        data = _mapping(data)
        return cls(
            id=_text(data, "id"),
            type=_text(data, "type"),
            title=_text(data, "title"),
            status=_enum(TaskStatus, data.get("status"), TaskStatus.PENDING),
            progress=_float(data, "progress"),
            progress_text=_opt_text(data, "progressText"),
            started_at=_required_dt(data, "startedAt"),
            completed_at=_opt_dt(data, "completedAt"),
            vm_id=_opt_text(data, "vmID"),
            vm_name=_opt_text(data, "vmName"),
            error_message=_opt_text(data, "errorMessage"),
        )


@dataclass
class Template:
    """A VM template."""

    id: str
    name: str
    description: str | None
    macos_version: str | None
    icon_name: str
    category: str
    source_type: str
    created_at: datetime
    modified_at: datetime
    disk_size_bytes: int | None
    default_cpu: int
    default_memory_mb: int
    default_disk_gb: int

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Template:
        data = _mapping(data)
        return cls(
            id=_text(data, "id"),
            name=_text(data, "name"),
            description=_opt_text(data, "description"),
            macos_version=_opt_text(data, "macOSVersion"),
            icon_name=_text(data, "iconName"),
            category=_text(data, "category"),
            source_type=_text(data, "sourceType"),
            created_at=_required_dt(data, "createdAt"),
            modified_at=_required_dt(data, "modifiedAt"),
            disk_size_bytes=_opt_int(data, "diskSizeBytes"),
            default_cpu=_int(data, "defaultCPU"),
            default_memory_mb=_int(data, "defaultMemoryMB"),
            default_disk_gb=_int(data, "defaultDiskGB"),
        )


@dataclass
class APIToken:
    """An API token for SDK/script access, as generated (the only time the full token is shown).

    Its repr shows only the token's prefix, so logging the object does not leak it.
    """

    id: str
    name: str
    token: str
    permissions: APITokenPermissions | str
    created_at: datetime
    last_used_at: datetime | None

    def __repr__(self) -> str:
        return (
            f"APIToken(id={self.id!r}, name={self.name!r}, token={_redacted(self.token)!r}, "
            f"permissions={self.permissions!r}, created_at={self.created_at!r}, "
            f"last_used_at={self.last_used_at!r})"
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> APIToken:
        data = _mapping(data)
        return cls(
            id=_text(data, "id"),
            name=_text(data, "name"),
            token=_text(data, "token"),
            permissions=_enum(APITokenPermissions, data.get("permissions"), APITokenPermissions.FULL_ACCESS),
            created_at=_required_dt(data, "createdAt"),
            last_used_at=_opt_dt(data, "lastUsedAt"),
        )


@dataclass
class APITokenSummary:
    """Summary of an API token (token string redacted by the node)."""

    id: str
    name: str
    token_prefix: str
    permissions: APITokenPermissions | str
    created_at: datetime
    last_used_at: datetime | None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> APITokenSummary:
        data = _mapping(data)
        return cls(
            id=_text(data, "id"),
            name=_text(data, "name"),
            token_prefix=_text(data, "tokenPrefix"),
            permissions=_enum(APITokenPermissions, data.get("permissions"), APITokenPermissions.FULL_ACCESS),
            created_at=_required_dt(data, "createdAt"),
            last_used_at=_opt_dt(data, "lastUsedAt"),
        )


@dataclass
class ExecResult:
    """Result of executing a command on a VM."""

    success: bool
    exit_code: int
    stdout: str
    stderr: str
    duration: float

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ExecResult:
        data = _mapping(data)
        stderr = _text(data, "stderr")
        success = _bool(data, "success", False)
        if not success and not stderr:
            # A node that refused to run the command (VM not running, ...) says why in error/message.
            stderr = _text(data, "error") or _text(data, "message")
        return cls(
            success=success,
            exit_code=_int(data, "exitCode", -1),
            stdout=_text(data, "stdout"),
            stderr=stderr,
            duration=_float(data, "duration"),
        )
