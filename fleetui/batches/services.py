"""Writes for batches: plan what each selected VM gets, record one Operation per VM, cancel.

Each VM's Operation is the ordinary one (same kinds, handlers and worker as a single click), so a
failure on one VM is recorded on its Operation and never stops the others. Cancelling marks the
batch's pending Operations cancelled with a conditional UPDATE (pending -> cancelled): the worker's
own claim is the same kind of UPDATE (pending -> running), so each Operation is either claimed and
run to its end, or cancelled and skipped by the worker; never both.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import redis
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from fleetui.activity.models import Operation, OperationStatus
from fleetui.activity.secrets import secrets_discard
from fleetui.activity.services import OperationError, operation_create
from fleetui.batches.models import Batch, BatchAction, BatchItem
from fleetui.batches.selectors import MAX_BATCH_VMS, too_many, vms_for_batch
from fleetui.vms.models import VM, VMState
from fleetui.vms.selectors import vm_blocker

logger = logging.getLogger(__name__)

CANCELLED_ERROR = "Cancelled with its batch before a worker started it; nothing was sent to the node."


class BatchError(ValueError):
    """A batch that cannot be made; `.message` says why in plain words. Nothing was recorded."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass
class PlannedVM:
    vm: VM
    kind: str = ""
    reason: str = ""  # why it is skipped ("" when it runs)


@dataclass
class Plan:
    action: str
    entries: list[PlannedVM] = field(default_factory=list)

    @property
    def to_run(self) -> list[PlannedVM]:
        return [e for e in self.entries if e.kind]

    @property
    def skipped(self) -> list[PlannedVM]:
        return [e for e in self.entries if not e.kind]


def _state(vm: VM) -> str:
    return vm.get_state_display().lower()


def _kind_for(action: str, vm: VM) -> tuple[str, str]:
    """(operation kind, "") when the VM's state allows the action, else ("", why not)."""
    state = vm.state
    if action == BatchAction.START:
        if state in (VMState.STOPPED, VMState.ERROR):
            return "vm.start", ""
        if state == VMState.PAUSED:
            return "vm.resume", ""  # a paused VM starts by resuming
        if state in (VMState.RUNNING, VMState.STARTING):
            return "", f"Already {_state(vm)}."
    elif action == BatchAction.STOP:
        if state in (VMState.RUNNING, VMState.PAUSED, VMState.ERROR):
            return "vm.stop", ""
        if state in (VMState.STOPPED, VMState.STOPPING):
            return "", f"Already {_state(vm)}."
    elif action == BatchAction.SUSPEND:
        if state == VMState.RUNNING:
            return "vm.suspend", ""
        if state == VMState.PAUSED:
            return "", "Already suspended."
        return "", f"Only a running VM can be suspended (it is {_state(vm)})."
    elif action == BatchAction.SNAPSHOT:
        if state in (VMState.STOPPED, VMState.RUNNING, VMState.PAUSED, VMState.ERROR):
            return "snapshot.create", ""
        return "", f"A snapshot waits until the VM has settled (it is {_state(vm)})."
    elif action == BatchAction.TTL_SET:
        return "vm.lease_set", ""
    elif action == BatchAction.TTL_EXTEND:
        if vm.expires_at is None:
            return "", "It has no lease to extend; set one first."
        return "vm.lease_extend", ""
    elif action == BatchAction.DELETE:
        if state in (VMState.STOPPED, VMState.ERROR):
            return "vm.delete", ""
        return "", f"Stop it before deleting it (it is {_state(vm)})."
    elif action == BatchAction.EXEC:
        if state == VMState.RUNNING:
            return "vm.exec", ""
        return "", f"Commands run only on a running VM (it is {_state(vm)})."
    else:
        return "", "Unknown action."
    label = BatchAction(action).label.lower()
    return "", f"A VM that is {_state(vm)} cannot {label}."


def batch_plan(*, action: str, vms: list[VM]) -> Plan:
    """What each VM gets: an operation kind, or the reason it is skipped (gone, node offline or
    read-only, an operation still running on it, or a state that does not allow the action).
    `vms` come from selectors.vms_for_batch (node joined, `busy` annotated)."""
    plan = Plan(action=action)
    now = timezone.now()
    for vm in vms:
        blocker = vm_blocker(vm, can_operate=True, busy=bool(getattr(vm, "busy", False)), now=now)
        if blocker:
            plan.entries.append(PlannedVM(vm, reason=blocker))
            continue
        kind, reason = _kind_for(action, vm)
        plan.entries.append(PlannedVM(vm, kind=kind, reason=reason))
    return plan


def operation_params(action: str, params: dict[str, Any]) -> dict[str, Any]:
    """The parameters each VM's Operation gets (the kinds' own names), from the batch's."""
    if action == BatchAction.SNAPSHOT:
        return {"name": params["name"], "description": params.get("description", "")}
    if action == BatchAction.TTL_SET:
        return {"ttl_seconds": params["seconds"]}
    if action == BatchAction.TTL_EXTEND:
        return {"extend_seconds": params["seconds"]}
    if action == BatchAction.EXEC:
        return {"command": params["command"], "ssh_user": params["ssh_user"], "timeout": params["timeout"]}
    return {}


@sensitive_variables("secrets")
def batch_create(
    *,
    action: str,
    vm_ids: list[int],
    params: dict[str, Any] | None = None,
    secrets: dict[str, str] | None = None,
    user: Any,
    request: HttpRequest | None = None,
) -> Batch:
    """Record a batch and one Operation per VM whose state allows the action (each queued after the
    commit, like a single click); the others are recorded as skipped with the reason.

    Raises BatchError, recording nothing, when nothing is selected, too much is, or no VM can do it.
    `secrets` (a fan-out's SSH password) go to each Operation's encrypted, short-lived secret store,
    never into the batch's or the operations' rows.
    """
    if action not in BatchAction.values:
        raise BatchError("Choose what to do with the selected VMs.")
    ids = list(dict.fromkeys(vm_ids))
    if not ids:
        raise BatchError("Select at least one VM.")
    if len(ids) > MAX_BATCH_VMS:
        raise BatchError(too_many(len(ids)))
    params = dict(params or {})
    op_params = operation_params(action, params)
    authenticated = bool(getattr(user, "is_authenticated", False))
    with transaction.atomic():
        # Lock the rows (in id order, so two batches never deadlock), as a single action does, so a
        # second batch or click cannot pass the "no operation running on it" check for the same VM at
        # the same moment; then read them, and whether each is busy, in a statement that sees the
        # other's committed operations.
        locked = list(VM.objects.select_for_update().filter(pk__in=ids).order_by("pk").values_list("pk", flat=True))
        vms = list(vms_for_batch(locked))
        if not vms:
            raise BatchError("None of the selected VMs exists any more.")
        plan = batch_plan(action=action, vms=vms)
        batch = Batch.objects.create(
            action=action, params=params, user=user if authenticated else None,
            username=(user.get_username() if authenticated else "")[:150],
        )
        items: list[BatchItem] = []
        for position, entry in enumerate(plan.entries):
            vm = entry.vm
            item = BatchItem(batch=batch, position=position, vm=vm, vm_name=vm.name, node_name=vm.node.name,
                             skipped_reason=entry.reason)
            if entry.kind:
                try:
                    item.operation = operation_create(kind=entry.kind, user=user, node=vm.node, vm=vm,
                                                      params=op_params, secrets=secrets, request=request)
                except OperationError as exc:
                    item.skipped_reason = exc.message
            items.append(item)
        created = sum(1 for item in items if item.operation is not None)
        if not created:
            reasons = sorted({item.skipped_reason for item in items if item.skipped_reason})
            raise BatchError("Nothing was done: none of the selected VMs can do this now. "
                             + " ".join(reasons[:3]))
        BatchItem.objects.bulk_create(items, batch_size=500)
    logger.info("batch %s %s recorded by %s: %d operations, %d skipped", batch.pk, action,
                batch.username or "-", created, len(items) - created)
    return batch


def batch_cancel(*, batch: Batch, user: Any) -> int:
    """Cancel the batch's operations no worker has claimed yet; returns how many. Running ones finish."""
    now = timezone.now()
    username = (user.get_username() if getattr(user, "is_authenticated", False) else "")[:150]
    pending = Operation.objects.filter(batch_item__batch=batch, status=OperationStatus.PENDING)
    ids = list(pending.values_list("pk", flat=True))
    if not ids:
        return 0
    # The same condition as the worker's claim: an operation a worker claimed in the meantime is no
    # longer pending and is left to finish.
    cancelled = Operation.objects.filter(pk__in=ids, status=OperationStatus.PENDING).update(
        status=OperationStatus.CANCELLED, error=CANCELLED_ERROR, finished_at=now)
    if cancelled:
        Batch.objects.filter(pk=batch.pk, cancelled_at__isnull=True).update(cancelled_at=now,
                                                                            cancelled_by=username)
    if batch.is_exec and cancelled:
        # Their secrets (a fan-out's password) will never be used: drop them now, not at their TTL.
        # Only those of operations this cancelled: a claimed one's worker still has to take its own.
        for op_id in Operation.objects.filter(pk__in=ids, status=OperationStatus.CANCELLED).values_list("pk",
                                                                                                      flat=True):
            try:
                secrets_discard(op_id)
            except redis.RedisError:
                break
    logger.info("batch %s cancelled by %s: %d operations cancelled", batch.pk, username or "-", cancelled)
    return cancelled
