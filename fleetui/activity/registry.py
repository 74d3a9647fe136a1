"""The kinds of Operation a worker can run, and their handlers.

Each app declares its handlers in its own `operations.py`:

    @operation_handler("vm.start", label="Start VM", needs_vm=True, mutating=True)
    def _(op: Operation, client: FleetClient, secrets: dict[str, str]) -> dict: ...

A handler returns the result dict stored on the Operation and raises the SDK's FleetError
subclasses on failure. `validate(params, vm)` (optional) checks and normalises parameters when the
Operation is created; it raises django's ValidationError in plain words.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.utils.module_loading import autodiscover_modules

if TYPE_CHECKING:
    from ciderstack import FleetClient

    from fleetui.activity.models import Operation
    from fleetui.vms.models import VM

Handler = Callable[["Operation", "FleetClient", dict[str, str]], dict[str, Any]]
Validator = Callable[[dict[str, Any], "VM | None"], dict[str, Any]]


@dataclass(frozen=True)
class OperationKind:
    kind: str
    label: str
    handler: Handler
    needs_vm: bool = False
    mutating: bool = True
    validate: Validator | None = None
    # Fetch the VM's snapshots and settings after it ran (snapshot operations change them).
    refresh_vm_details: bool = False
    # Read timeout for the call, when the default (settings.NODE_READ_TIMEOUT x 3) is not enough.
    timeout: float | None = None


_KINDS: dict[str, OperationKind] = {}
_loaded = False
_load_lock = threading.Lock()


def operation_handler(
    kind: str,
    *,
    label: str,
    needs_vm: bool = False,
    mutating: bool = True,
    validate: Validator | None = None,
    refresh_vm_details: bool = False,
    timeout: float | None = None,
) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        if kind in _KINDS and _KINDS[kind].handler is not handler:
            raise RuntimeError(f"operation kind {kind!r} is registered twice")
        _KINDS[kind] = OperationKind(kind, label, handler, needs_vm, mutating, validate, refresh_vm_details, timeout)
        return handler

    return register


def _ensure_loaded() -> None:
    """Import every app's operations.py once (lazily, so the registry never depends on app order)."""
    global _loaded
    if _loaded:
        return
    with _load_lock:
        if not _loaded:
            autodiscover_modules("operations")
            _loaded = True


def get_kind(kind: str) -> OperationKind | None:
    _ensure_loaded()
    return _KINDS.get(kind)


def registered_kinds() -> dict[str, OperationKind]:
    _ensure_loaded()
    return dict(_KINDS)


def kind_label(kind: str) -> str:
    spec = get_kind(kind)
    return spec.label if spec else kind
