"""Writes for the activity log: Operations (record, queue, run) and the fleet events managers report.

An Operation is recorded with who, what, which node and VM and its parameters (never secrets),
queued after commit, and run exactly once by a worker: run_operation claims the row with a
conditional UPDATE (pending -> running), so a redelivered task finds it taken and never calls the
node a second time.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import logging
import re
import uuid
from datetime import datetime, timedelta
from typing import Any

import redis
from ciderstack.errors import FleetError, FleetTimeoutError
from ciderstack.types import parse_datetime
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from fleetui.activity.liveness import (
    HEARTBEAT_TTL_SECONDS,
    heartbeat_claim,
    heartbeat_drop,
    operation_alive,
    operation_heartbeat,
)
from fleetui.activity.models import FleetEvent, Operation, OperationStatus
from fleetui.activity.registry import OperationKind, get_kind
from fleetui.activity.secrets import SECRETS_TTL_SECONDS, secrets_discard, secrets_put, secrets_take
from fleetui.core.broker import broker_reachable
from fleetui.core.crypto import CredentialUnreadable
from fleetui.nodes.models import Node
from fleetui.vms.models import VM, VMState

logger = logging.getLogger(__name__)

_SECRET_LIKE = re.compile(r"pass|secret|token|credential|private", re.IGNORECASE)
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
# How long re-polls keep following a VM that is starting or stopping, and how often.
FOLLOW_UP_POLLS = 10
FOLLOW_UP_SECONDS = 1.5
EVENTS_FETCH_LIMIT = 200


class OperationError(ValueError):
    """An Operation that cannot be recorded; `.message` says why in plain words."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _source_ip(request: HttpRequest | None) -> str | None:
    if request is None:
        return None
    raw = request.META.get("REMOTE_ADDR", "")
    try:
        return str(ipaddress.ip_address(raw))
    except ValueError:
        return None


def _request_id(request: HttpRequest | None) -> str:
    if request is not None:
        for candidate in (getattr(request, "request_id", None), request.META.get("HTTP_X_REQUEST_ID")):
            if isinstance(candidate, str) and _REQUEST_ID.match(candidate):
                return candidate
    return uuid.uuid4().hex


@sensitive_variables("secrets", "secret_values")
def operation_create(
    *,
    kind: str,
    user: Any,
    node: Node,
    vm: VM | None = None,
    params: dict[str, Any] | None = None,
    secrets: dict[str, str] | None = None,
    request: HttpRequest | None = None,
) -> Operation:
    """Record an Operation and queue it for a worker once the transaction commits.

    Raises OperationError (a ValueError) in plain words, changing nothing, when the kind is unknown,
    the target is wrong, the node's token is read-only, or the parameters do not validate.
    """
    spec = get_kind(kind)
    if spec is None:
        raise OperationError(f"Unknown operation {kind!r}.")
    if node is None:
        raise OperationError(f"{spec.label} needs a node.")
    if spec.needs_vm and vm is None:
        raise OperationError(f"{spec.label} needs a VM.")
    if vm is not None:
        if vm.node_id != node.pk:
            raise OperationError("That VM is not on that node.")
        if vm.is_gone:
            raise OperationError(f"VM {vm.name} is no longer on its node.")
    if spec.mutating and node.is_read_only:
        raise OperationError(f"Node {node.name} has a read-only API token, so it accepts no changes.")
    clean = dict(params or {})
    if spec.validate is not None:
        try:
            clean = spec.validate(clean, vm)
        except ValidationError as exc:
            raise OperationError(" ".join(exc.messages)) from None
    for key in clean:
        if _SECRET_LIKE.search(key):
            raise OperationError(f"Parameter {key!r} looks like a secret: pass it in `secrets`, never in params.")
    try:
        json.dumps(clean)
    except (TypeError, ValueError):
        raise OperationError("The operation's parameters must be plain JSON values.") from None
    secret_values = {str(k): str(v) for k, v in (secrets or {}).items() if v}
    if secret_values:
        # Which secrets came with it (names only), for the audit trail and the handler.
        clean["secrets_given"] = sorted(secret_values)

    if not broker_reachable(max_age=1.0):
        # Refused before anything is recorded: an operation that cannot be queued would only fail (and
        # one re-queued minutes later would surprise whoever clicked).
        raise OperationError(
            "The task queue (Redis) cannot be reached, so nothing can be sent to the node now. Nothing was "
            "recorded or done; try again when the warning at the top of the page is gone."
        )

    authenticated = bool(getattr(user, "is_authenticated", False))
    with transaction.atomic():
        op = Operation.objects.create(
            kind=kind,
            user=user if authenticated else None,
            username=(user.get_username() if authenticated else "")[:150],
            node=node,
            node_name=node.name,
            vm=vm,
            vm_name=vm.name if vm else "",
            vm_remote_id=vm.remote_id if vm else "",
            params=clean,
            source_ip=_source_ip(request),
            request_id=_request_id(request),
        )
        if secret_values:
            try:
                secrets_put(op.id, secret_values)
            except redis.RedisError:
                raise OperationError(
                    "Could not hand the credentials to the workers (Redis is unreachable); nothing was done. "
                    "Try again in a moment."
                ) from None
        operation_id = op.id
        transaction.on_commit(lambda: operation_enqueue(operation_id=operation_id))
    logger.info("operation %s %s recorded by %s on node %s", op.id, kind, op.username or "-", node.pk)
    return op


def operation_enqueue(*, operation_id: uuid.UUID | str) -> bool:
    """Send the operation to the "actions" queue; when the broker is down, fail it in plain words."""
    from fleetui.activity.tasks import run_operation

    try:
        run_operation.apply_async(
            args=[str(operation_id)],
            retry=True,
            retry_policy={"max_retries": 2, "interval_start": 0.1, "interval_step": 0.3, "interval_max": 0.5},
        )
    except Exception as exc:  # noqa: BLE001 - kombu raises many kinds of connection errors
        logger.error("could not queue operation %s: %s", operation_id, type(exc).__name__)
        Operation.objects.filter(pk=operation_id, status=OperationStatus.PENDING).update(
            status=OperationStatus.FAILED,
            error="Could not queue the operation: the task queue (Redis) is unreachable. Nothing was sent to "
            "the node; try again when the queue is back.",
            finished_at=timezone.now(),
        )
        try:
            secrets_discard(operation_id)
        except redis.RedisError:
            pass
        return False
    return True


def _action_timeout(spec: OperationKind) -> float:
    default = getattr(settings, "NODE_ACTION_TIMEOUT", None) or settings.NODE_READ_TIMEOUT * 3
    return float(spec.timeout or default)


@sensitive_variables("secrets")
def _execute(op: Operation, spec: OperationKind | None, secrets: dict[str, str]) -> tuple[dict[str, Any], str]:
    """Run the handler; (result, error) with error "" on success. Never raises."""
    from fleetui.nodes.client import client_for, describe_error

    if spec is None:
        return {}, f"Unknown operation {op.kind!r}: this worker has no handler for it."
    node = op.node
    if node is None:
        return {}, "The node was removed before the operation ran."
    if spec.needs_vm and op.vm is None:
        return {}, "The VM is no longer known to the dashboard."
    if spec.mutating and node.is_read_only:
        return {}, f"Node {node.name} has a read-only API token, so it accepts no changes."
    timeout = _action_timeout(spec)
    try:
        with client_for(node, timeout=timeout) as client:
            result = spec.handler(op, client, secrets)
    except FleetTimeoutError as exc:
        if "could not connect" in str(exc):
            # This call never reached the node (an earlier call of the handler may have).
            return {}, describe_error(exc).capitalize() + ". The operation is not retried, so it never runs twice."
        return {}, (
            f"Timed out: the node did not answer within {timeout:g} s. It may still have done it; the node's "
            "state below is what it reports now. The operation is not retried, so it never runs twice."
        )
    except (FleetError, CredentialUnreadable) as exc:
        return {}, describe_error(exc, timeout=timeout)
    except Exception:  # noqa: BLE001 - recorded on the Operation, never raised out of the worker
        logger.exception("operation %s (%s) failed unexpectedly", op.pk, op.kind)
        return {}, "Unexpected error in the worker; see its log."
    try:
        result = json.loads(json.dumps(result or {}, default=str))
    except (TypeError, ValueError):
        result = {}
    return (result if isinstance(result, dict) else {"value": result}), ""


def _after_operation(op: Operation, spec: OperationKind | None) -> None:
    """Re-poll the node at once (and the VM's details when they changed), then keep following a VM
    that is still starting or stopping for a few seconds."""
    from fleetui.nodes.services import node_poll
    from fleetui.vms.services import vm_refresh_details

    if op.node_id is None:
        return
    try:
        node_poll(node_id=op.node_id, lock_wait=settings.NODE_READ_TIMEOUT * 2, force=True)
        if op.vm_id is not None and spec is not None and spec.refresh_vm_details:
            vm_refresh_details(vm_id=op.vm_id)
        if op.vm_id is not None:
            vm_follow_up(vm_id=op.vm_id, node_id=op.node_id, attempt=1)
    except Exception:  # noqa: BLE001 - the outcome is recorded; a failed re-poll must not undo it
        logger.exception("re-poll after operation %s failed", op.pk)


def vm_follow_up(*, vm_id: int, node_id: int, attempt: int) -> bool:
    """Queue another poll of the node shortly when the VM is still in transition; True if queued."""
    if attempt > FOLLOW_UP_POLLS:
        return False
    state = VM.objects.filter(pk=vm_id).values_list("state", flat=True).first()
    if state not in (VMState.STARTING, VMState.STOPPING):
        return False
    from fleetui.nodes.tasks import poll_node

    try:
        poll_node.apply_async(
            args=[node_id],
            kwargs={"force": True, "follow_vm": vm_id, "attempt": attempt},
            countdown=FOLLOW_UP_SECONDS,
            retry=False,
        )
    except Exception:  # noqa: BLE001 - the scheduled polls will see the VM settle anyway
        return False
    return True


@sensitive_variables("secrets")
def operation_run(*, operation_id: str) -> str:
    """Run one Operation exactly once. Returns what happened: "ran", "finished", "interrupted",
    "skipped" or "missing". Never raises."""
    now = timezone.now()
    started_heartbeat = heartbeat_claim(operation_id)
    # started_at is read after the heartbeat was set: a duplicate delivery compares it with its own start.
    claimed = Operation.objects.filter(pk=operation_id, status=OperationStatus.PENDING).update(
        status=OperationStatus.RUNNING, started_at=timezone.now()
    )
    if not claimed:
        outcome = _operation_redelivered(operation_id, delivered_at=now, own_heartbeat=started_heartbeat)
        if started_heartbeat and outcome != "running":
            heartbeat_drop(operation_id)
        return outcome
    # The heartbeat tells a duplicate delivery (or the reaper) that this worker is still at it.
    with operation_heartbeat(operation_id):
        op = Operation.objects.select_related("node", "vm").get(pk=operation_id)
        spec = get_kind(op.kind)
        try:
            secrets = secrets_take(op.id) or {}
        except redis.RedisError:
            secrets = {}
        result, error = _execute(op, spec, secrets)
        secrets.clear()
        # The outcome first (status still running), then the re-poll, then the final status: the page
        # shows the operation finished only once the node's confirmed state is in the database, and a
        # worker lost during the re-poll leaves an outcome the redelivery can finish.
        Operation.objects.filter(pk=op.pk, status=OperationStatus.RUNNING).update(
            result=result, error=error, finished_at=timezone.now()
        )
        _after_operation(op, spec)
        Operation.objects.filter(pk=op.pk, status=OperationStatus.RUNNING).update(
            status=OperationStatus.FAILED if error else OperationStatus.SUCCEEDED
        )
    logger.info("operation %s %s %s", op.pk, op.kind, "failed" if error else "succeeded")
    return "ran"


def _operation_redelivered(operation_id: str, *, delivered_at: datetime, own_heartbeat: bool) -> str:
    op = Operation.objects.filter(pk=operation_id).select_related("node", "vm").first()
    if op is None:
        return "missing"
    if op.status != OperationStatus.RUNNING:
        logger.info("operation %s is %s already; redelivery ignored", op.pk, op.status)
        return "skipped"
    # When this delivery set the heartbeat itself, nobody was beating a moment ago: either the worker
    # that claimed the row died, or another delivery claimed it just after we looked and has not beaten
    # yet. The claim's time tells which (the heartbeat we set then stands in for that worker's own).
    just_claimed = own_heartbeat and op.started_at is not None and op.started_at >= delivered_at
    if just_claimed or (not own_heartbeat and operation_alive(op.pk)):
        # A duplicate delivery while the first is still running (Redis gives unacknowledged tasks
        # back when a worker's connection drops): leave it to that worker.
        logger.info("operation %s is running in another worker; duplicate delivery ignored", op.pk)
        return "running"
    return _operation_recover(op)


def _operation_recover(op: Operation) -> str:
    """Finish an operation whose worker died: "finished" when the node had answered, else "interrupted"."""
    spec = get_kind(op.kind)
    if op.finished_at is not None:
        # The node answered and the outcome was recorded; the worker stopped during the re-poll.
        _after_operation(op, spec)
        Operation.objects.filter(pk=op.pk, status=OperationStatus.RUNNING).update(
            status=OperationStatus.FAILED if op.error else OperationStatus.SUCCEEDED
        )
        return "finished"
    # The worker running it stopped while the call was in flight: we cannot know whether the node
    # did it, and running it again could do it twice. Fail it and show the node's real state.
    Operation.objects.filter(pk=op.pk, status=OperationStatus.RUNNING, finished_at__isnull=True).update(
        status=OperationStatus.FAILED,
        error="Interrupted: the worker running this operation was lost before the node answered. It was not "
        "run again (it might have reached the node); the state shown is what the node reports now.",
        finished_at=timezone.now(),
    )
    try:
        secrets_discard(op.id)
    except redis.RedisError:
        pass
    _after_operation(op, spec)
    return "interrupted"


STALE_PENDING_ERROR = (
    "Never started: no worker picked it up within {minutes} minutes (the task queue may have lost it, e.g. "
    "when Redis restarted). It was not run; start it again if it is still wanted."
)


def operations_reap(*, now: datetime | None = None, limit: int = 20) -> dict[str, int]:
    """Settle what lost workers and a lost queue left behind (run by poll_fleet every poll interval).

    A running operation with no heartbeat lost its worker: recorded as interrupted (never re-run),
    or finished when the node had already answered. A pending one older than the secrets' lifetime
    was lost by the queue: failed, in plain words (run that late, a click would surprise).
    """
    now = now or timezone.now()
    counts = {"interrupted": 0, "finished": 0, "stale_pending": 0}
    running = Operation.objects.filter(
        status=OperationStatus.RUNNING, started_at__lt=now - timedelta(seconds=HEARTBEAT_TTL_SECONDS)
    ).select_related("node", "vm").order_by("started_at")[:limit]
    for op in running:
        if not operation_alive(op.pk):
            outcome = _operation_recover(op)
            counts[outcome] = counts.get(outcome, 0) + 1
    counts["stale_pending"] = Operation.objects.filter(
        status=OperationStatus.PENDING, created_at__lt=now - timedelta(seconds=SECRETS_TTL_SECONDS)
    ).update(
        status=OperationStatus.FAILED,
        error=STALE_PENDING_ERROR.format(minutes=SECRETS_TTL_SECONDS // 60),
        finished_at=now,
    )
    return counts


# ---------------------------------------------------------------- fleet events


def _event_remote_id(event: dict[str, Any]) -> str:
    value = event.get("id")
    if isinstance(value, str | int) and not isinstance(value, bool) and str(value).strip():
        return str(value).strip()[:128]
    # No id: a digest of what the event says, so the same event seen twice is stored once.
    content = json.dumps(
        [event.get(k) for k in ("eventType", "nodeName", "nodeID", "message", "timestamp", "vmID", "vmName")],
        default=str,
    )
    return "sha256:" + hashlib.sha256(content.encode()).hexdigest()


def _text(value: Any, limit: int) -> str:
    if value is None or isinstance(value, dict | list):
        return ""
    return str(value).replace("\x00", "")[:limit]


def fleet_events_record(*, node_id: int, events: list[dict[str, Any]], now: datetime) -> int:
    """Store the manager's events not seen before (deduplicated by event id, or by a digest)."""
    rows: dict[str, FleetEvent] = {}
    for event in events:
        if not isinstance(event, dict):
            continue
        remote_id = _event_remote_id(event)
        if remote_id in rows:
            continue
        rows[remote_id] = FleetEvent(
            source_node_id=node_id,
            remote_id=remote_id,
            event_type=_text(event.get("eventType"), 64) or "unknown",
            node_name=_text(event.get("nodeName"), 255),
            message=_text(event.get("message"), 10_000),
            vm_remote_id=_text(event.get("vmID"), 64),
            vm_name=_text(event.get("vmName"), 255),
            timestamp=parse_datetime(event.get("timestamp")) or now,
        )
    if not rows:
        return 0
    known = set(
        FleetEvent.objects.filter(source_node_id=node_id, remote_id__in=list(rows)).values_list("remote_id", flat=True)
    )
    new = [row for remote_id, row in rows.items() if remote_id not in known]
    if new:
        FleetEvent.objects.bulk_create(new, ignore_conflicts=True, batch_size=500)
    return len(new)


def fleet_events_prune(*, now: datetime | None = None) -> int:
    """Delete events older than settings.EVENTS_RETENTION_DAYS; returns how many."""
    now = now or timezone.now()
    cutoff = now - timedelta(days=settings.EVENTS_RETENTION_DAYS)
    deleted, _ = FleetEvent.objects.filter(timestamp__lt=cutoff).delete()
    return deleted
