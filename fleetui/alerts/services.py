"""Alerts: webhooks (writes), incident detection from what polls and operations recorded, and the
delivery of each alert with retries and exponential backoff.

Detection reads state the workers already wrote, so it runs anywhere (a task after each poll and each
operation, and a periodic sweep). Each incident is recorded once: its `dedup_key` is unique, so the
second poll (or a second worker) seeing the same outage finds it there and sends nothing. A node that
comes back resolves its outage with a conditional UPDATE, so exactly one recovery goes out.
"""

from __future__ import annotations

import json
import logging
import socket
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any

import requests
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from fleetui.activity.models import Operation, OperationStatus
from fleetui.alerts.models import (
    SUBSCRIPTION_FIELD,
    Delivery,
    DeliveryEvent,
    DeliveryStatus,
    Incident,
    IncidentKind,
    Webhook,
    WebhookFormat,
)
from fleetui.alerts.urls_safety import masked_url, validate_webhook_url
from fleetui.core.crypto import CredentialUnreadable, decrypt, encrypt
from fleetui.images.models import NodeTask, TaskStatus
from fleetui.nodes.models import Health, Node
from fleetui.vms.models import VM

logger = logging.getLogger(__name__)

# Failed tasks and operations older than this are history, not news (e.g. when alerts are first set up).
LOOKBACK = timedelta(hours=1)
USER_AGENT = "FleetUI-alerts/1"


def _setting(name: str, default: Any) -> Any:
    return getattr(settings, name, default)


def retry_delay_seconds(attempt: int) -> float:
    """Exponential backoff after the `attempt`-th failed attempt: base, 2x base, 4x base..., capped."""
    base = float(_setting("ALERT_RETRY_BASE_MS", 10_000)) / 1000.0
    return min(base * 2 ** max(0, attempt - 1), 3600.0)


class WebhookError(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


# ---------------------------------------------------------------- webhooks

WEBHOOK_FIELDS = ("name", "format", "on_node_offline", "on_task_failed", "on_operation_failed", "on_lease_expiring",
                  "lease_window_minutes", "enabled")


@sensitive_variables("url", "data")
def webhook_create(*, data: dict[str, Any], user: Any) -> Webhook:
    """data: the WebhookForm's cleaned data (url, name, format, the event flags, window, enabled)."""
    url = data.get("url") or ""
    try:
        url = validate_webhook_url(url)
    except ValidationError as exc:
        raise WebhookError(" ".join(exc.messages)) from None
    webhook = Webhook(**{f: data[f] for f in WEBHOOK_FIELDS}, url_enc=encrypt(url), url_display=masked_url(url),
                      created_by=user if getattr(user, "pk", None) else None)
    try:
        with transaction.atomic():
            webhook.save()
    except IntegrityError:
        raise WebhookError("A webhook with this name exists already.") from None
    logger.info("webhook %s (%s) created by %s", webhook.pk, webhook.url_display, getattr(user, "username", "-"))
    return webhook


@sensitive_variables("url", "data")
def webhook_update(*, webhook: Webhook, data: dict[str, Any], user: Any) -> Webhook:
    """As webhook_create; an empty url keeps the stored one."""
    url = data.get("url") or ""
    for field in WEBHOOK_FIELDS:
        setattr(webhook, field, data[field])
    if url:
        try:
            url = validate_webhook_url(url)
        except ValidationError as exc:
            raise WebhookError(" ".join(exc.messages)) from None
        webhook.url_enc = encrypt(url)
        webhook.url_display = masked_url(url)
    try:
        with transaction.atomic():
            webhook.save()
    except IntegrityError:
        raise WebhookError("A webhook with this name exists already.") from None
    logger.info("webhook %s updated by %s", webhook.pk, getattr(user, "username", "-"))
    return webhook


def webhook_delete(*, webhook: Webhook, user: Any) -> None:
    logger.info("webhook %s (%s) deleted by %s", webhook.pk, webhook.url_display, getattr(user, "username", "-"))
    webhook.delete()


def webhook_send_test(*, webhook: Webhook, user: Any) -> Delivery:
    now = timezone.now()
    who = getattr(user, "username", "") or "FleetUI"
    summary = f"Test alert from FleetUI, sent by {who}: the webhook {webhook.name} works."
    body = _render(webhook.format, event_name="test", status="test", summary=summary, incident=None, now=now)
    delivery = Delivery.objects.create(webhook=webhook, event=DeliveryEvent.TEST, body=body)
    transaction.on_commit(partial(_enqueue_delivery, delivery.pk))
    return delivery


# ---------------------------------------------------------------- message bodies

_EVENT_NAMES = {
    (IncidentKind.NODE_OFFLINE, DeliveryEvent.ALERT): "node.offline",
    (IncidentKind.NODE_OFFLINE, DeliveryEvent.RECOVERY): "node.online",
    (IncidentKind.TASK_FAILED, DeliveryEvent.ALERT): "node_task.failed",
    (IncidentKind.OPERATION_FAILED, DeliveryEvent.ALERT): "operation.failed",
    (IncidentKind.LEASE_EXPIRING, DeliveryEvent.ALERT): "vm.lease_expiring",
}


def _link(path: str) -> str:
    base = str(_setting("ALERTS_BASE_URL", "") or "").rstrip("/")
    return f"{base}{path}" if base and path else path


def _slack_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _render(fmt: str, *, event_name: str, status: str, summary: str, incident: Incident | None,
            now: datetime) -> str:
    link = _link(incident.path) if incident else _link("/")
    if fmt == WebhookFormat.SLACK:
        icon = {"firing": ":red_circle:", "resolved": ":large_green_circle:"}.get(status, ":information_source:")
        text = f"{icon} FleetUI: {_slack_escape(summary)}"
        if link.startswith(("http://", "https://")):
            text += f" <{link}|Open in FleetUI>"
        return json.dumps({"text": text})
    payload: dict[str, Any] = {
        "source": "fleetui", "event": event_name, "status": status, "summary": summary,
        "created_at": now.isoformat(), "url": link,
    }
    if incident is not None:
        payload["incident"] = {
            "id": incident.pk, "kind": incident.kind, "key": incident.key, "opened_at": incident.opened_at.isoformat(),
            "resolved_at": incident.resolved_at.isoformat() if incident.resolved_at else None,
        }
        payload["node"] = {"id": incident.node_id, "name": incident.node_name} if incident.node_id else None
        payload["vm"] = {"id": incident.vm_id, "name": incident.vm_name} if incident.vm_id else None
        payload["details"] = incident.details
    return json.dumps(payload, default=str)


def _recovery_summary(incident: Incident, now: datetime) -> str:
    seconds = int((now - incident.opened_at).total_seconds())
    minutes, secs = divmod(seconds, 60)
    took = f"{minutes} min {secs} s" if minutes else f"{secs} s"
    return f"Node {incident.node_name} is back online (offline incident open for {took})."


# ---------------------------------------------------------------- incidents and their deliveries


def _enqueue_delivery(delivery_id: int, countdown: float | None = None) -> None:
    from fleetui.alerts.tasks import deliver

    try:
        deliver.apply_async(args=[delivery_id], countdown=countdown, retry=False)
    except Exception:  # noqa: BLE001 - the sweep sends what could not be queued
        logger.warning("could not queue alert delivery %s (is Redis up?); the sweep retries it", delivery_id)


def _subscribers(kind: str) -> list[Webhook]:
    return list(Webhook.objects.filter(enabled=True, **{SUBSCRIPTION_FIELD[IncidentKind(kind)]: True}))


def _queue_deliveries(incident: Incident, event: str, webhooks: Iterable[Webhook], now: datetime,
                      summary: str | None = None) -> list[int]:
    """One delivery per webhook (the unique constraint drops what exists already); sent after commit."""
    event_name = _EVENT_NAMES[(IncidentKind(incident.kind), DeliveryEvent(event))]
    status = "resolved" if event == DeliveryEvent.RECOVERY else "firing"
    created: list[int] = []
    for webhook in webhooks:
        body = _render(webhook.format, event_name=event_name, status=status, summary=summary or incident.summary,
                       incident=incident, now=now)
        try:
            with transaction.atomic():
                delivery = Delivery.objects.create(webhook=webhook, incident=incident, event=event, body=body)
        except IntegrityError:
            continue
        created.append(delivery.pk)
        transaction.on_commit(partial(_enqueue_delivery, delivery.pk))
    return created


def _open_incident(*, kind: str, key: str, summary: str, now: datetime, one_time: bool, path: str = "",
                   node_id: int | None = None, node_name: str = "", vm_id: int | None = None, vm_name: str = "",
                   details: dict[str, Any] | None = None) -> Incident | None:
    """The new incident, or None when it was recorded already (by this or another worker)."""
    try:
        with transaction.atomic():
            return Incident.objects.create(
                kind=kind, key=key, dedup_key=key, summary=summary[:2000], path=path, node_id=node_id,
                node_name=node_name[:100], vm_id=vm_id, vm_name=vm_name[:255], details=details or {},
                opened_at=now, resolved_at=now if one_time else None,
            )
    except IntegrityError:
        return None


def _node_offline_key(node_id: int) -> str:
    return f"node_offline:{node_id}"


def _check_nodes(nodes: list[Node], open_incidents: dict[str, Incident], now: datetime) -> dict[str, int]:
    counts = {"offline": 0, "recovered": 0}
    for node in nodes:
        key = _node_offline_key(node.pk)
        health = node.health(now)
        if health == Health.OFFLINE and key not in open_incidents:
            reason = node.last_error or "no poll has succeeded for 3 poll intervals"
            incident = _open_incident(
                kind=IncidentKind.NODE_OFFLINE, key=key, now=now, one_time=False, node_id=node.pk,
                node_name=node.name, path=reverse("node-detail", args=[node.pk]),
                summary=f"Node {node.name} is offline: {reason}",
                details={"last_error": node.last_error, "address": node.address,
                         "last_success_at": node.last_success_at.isoformat() if node.last_success_at else None,
                         "consecutive_failures": node.consecutive_failures},
            )
            if incident is not None:
                counts["offline"] += 1
                _queue_deliveries(incident, DeliveryEvent.ALERT, _subscribers(IncidentKind.NODE_OFFLINE), now)
        elif health == Health.ONLINE and key in open_incidents:
            counts["recovered"] += _resolve_offline(open_incidents[key], now)
    return counts


def _resolve_offline(incident: Incident, now: datetime) -> int:
    """Resolve a node's outage once (a conditional UPDATE) and send the recovery to the webhooks that
    got its alert."""
    if not Incident.objects.filter(pk=incident.pk, resolved_at__isnull=True).update(resolved_at=now, dedup_key=None):
        return 0
    incident.resolved_at = now
    webhooks = Webhook.objects.filter(enabled=True, on_node_offline=True, deliveries__incident=incident,
                                      deliveries__event=DeliveryEvent.ALERT).distinct()
    _queue_deliveries(incident, DeliveryEvent.RECOVERY, webhooks, now, summary=_recovery_summary(incident, now))
    return 1


def _check_failed_tasks(tasks: Iterable[NodeTask], node_names: dict[int, str], now: datetime) -> int:
    tasks = list(tasks)
    keys = {task.pk: f"task_failed:{task.node_id}:{task.remote_id}" for task in tasks}
    known = set(Incident.objects.filter(dedup_key__in=keys.values()).values_list("dedup_key", flat=True))
    created = 0
    for task in tasks:
        if keys[task.pk] in known:
            continue
        node_name = node_names.get(task.node_id, "")
        what = task.title or task.type or "A task"
        error = task.error_message or "no reason given"
        incident = _open_incident(
            kind=IncidentKind.TASK_FAILED, key=keys[task.pk], now=now, one_time=True, node_id=task.node_id,
            node_name=node_name, path=reverse("task-list"),
            summary=f"Task failed on node {node_name}: {what}: {error}",
            details={"task_id": task.remote_id, "type": task.type, "title": task.title, "error": task.error_message,
                     "vm_name": task.vm_name},
        )
        if incident is not None:
            created += 1
            _queue_deliveries(incident, DeliveryEvent.ALERT, _subscribers(IncidentKind.TASK_FAILED), now)
    return created


def _failed_tasks(now: datetime) -> Q:
    cutoff = now - LOOKBACK
    return Q(status=TaskStatus.FAILED) & (
        Q(completed_at__gte=cutoff) | Q(completed_at__isnull=True, started_at__gte=cutoff)
        | Q(completed_at__isnull=True, started_at__isnull=True, last_seen_at__gte=cutoff)
    )


def alerts_node_check(*, node_id: int, now: datetime | None = None) -> dict[str, int]:
    """After a poll: is the node newly offline, back online, or did one of its tasks fail?"""
    now = now or timezone.now()
    node = Node.objects.filter(pk=node_id).first()
    key = _node_offline_key(node_id)
    open_incident = Incident.objects.filter(dedup_key=key).first()
    if node is None:
        if open_incident is not None:
            # The node was removed: its outage ends without a recovery message.
            Incident.objects.filter(pk=open_incident.pk).update(resolved_at=now, dedup_key=None)
        return {}
    counts = _check_nodes([node], {key: open_incident} if open_incident else {}, now)
    counts["task_failed"] = _check_failed_tasks(
        NodeTask.objects.filter(_failed_tasks(now), node_id=node_id), {node.pk: node.name}, now
    )
    return counts


def alerts_operation_check(*, operation_id: str, now: datetime | None = None) -> Incident | None:
    """After an operation finished: an incident (and its alerts) when it failed."""
    from fleetui.activity.registry import kind_label

    now = now or timezone.now()
    op = Operation.objects.filter(pk=operation_id, status=OperationStatus.FAILED).first()
    if op is None:
        return None
    target = f"VM {op.vm_name} on {op.node_name}" if op.vm_name else f"node {op.node_name}"
    incident = _open_incident(
        kind=IncidentKind.OPERATION_FAILED, key=f"operation_failed:{op.pk}", now=now, one_time=True,
        node_id=op.node_id, node_name=op.node_name, vm_id=op.vm_id, vm_name=op.vm_name,
        path=reverse("operation-detail", args=[op.pk]),
        summary=f"{kind_label(op.kind)} failed ({target}, asked by {op.username or 'the system'}): {op.error}",
        details={"operation_id": str(op.pk), "kind": op.kind, "user": op.username, "error": op.error},
    )
    if incident is not None:
        _queue_deliveries(incident, DeliveryEvent.ALERT, _subscribers(IncidentKind.OPERATION_FAILED), now)
    return incident


def _lease_key(vm: VM) -> str:
    assert vm.expires_at is not None
    return f"lease_expiring:{vm.pk}:{int(vm.expires_at.timestamp())}"


def _check_leases(now: datetime) -> dict[str, int]:
    counts = {"lease_incidents": 0, "lease_alerts": 0, "lease_resolved": 0}
    # Leases that ended, moved or whose VM is gone close their incident (quietly).
    open_leases = list(Incident.objects.filter(kind=IncidentKind.LEASE_EXPIRING, resolved_at__isnull=True))
    current = VM.objects.only("expires_at", "gone_at").in_bulk([i.vm_id for i in open_leases if i.vm_id])
    for incident in open_leases:
        vm = current.get(incident.vm_id)
        expires = incident.details.get("expires_at")
        if vm is None or vm.gone_at is not None or vm.expires_at is None or vm.expires_at <= now \
                or vm.expires_at.isoformat() != expires:
            counts["lease_resolved"] += Incident.objects.filter(pk=incident.pk).update(resolved_at=now)
    webhooks = list(Webhook.objects.filter(enabled=True, on_lease_expiring=True))
    if not webhooks:
        return counts
    widest = max(w.lease_window_minutes for w in webhooks)
    vms = list(VM.objects.filter(gone_at__isnull=True, expires_at__gt=now,
                                 expires_at__lte=now + timedelta(minutes=widest)).select_related("node"))
    if not vms:
        return counts
    keys = {vm.pk: _lease_key(vm) for vm in vms}
    incidents = {i.dedup_key: i for i in Incident.objects.filter(dedup_key__in=keys.values())}
    sent = set(Delivery.objects.filter(incident__in=incidents.values(), event=DeliveryEvent.ALERT)
               .values_list("webhook_id", "incident_id"))
    for vm in vms:
        incident = incidents.get(keys[vm.pk])
        if incident is None:
            incident = _open_incident(
                kind=IncidentKind.LEASE_EXPIRING, key=keys[vm.pk], now=now, one_time=False, node_id=vm.node_id,
                node_name=vm.node.name, vm_id=vm.pk, vm_name=vm.name, path=reverse("vm-detail", args=[vm.pk]),
                summary=f"The lease of VM {vm.name} on {vm.node.name} ends at {vm.expires_at:%Y-%m-%d %H:%M} UTC.",
                details={"expires_at": vm.expires_at.isoformat(), "ttl_seconds": vm.ttl_seconds},
            )
            if incident is None:
                continue
            counts["lease_incidents"] += 1
        left = max(0, int((vm.expires_at - now).total_seconds() // 60))
        due = [w for w in webhooks if (w.pk, incident.pk) not in sent
               and vm.expires_at <= now + timedelta(minutes=w.lease_window_minutes)]
        if due:
            summary = (f"The lease of VM {vm.name} on {vm.node.name} ends in {left} min "
                       f"({vm.expires_at:%Y-%m-%d %H:%M} UTC); it is deleted or stopped then.")
            counts["lease_alerts"] += len(_queue_deliveries(incident, DeliveryEvent.ALERT, due, now, summary=summary))
    return counts


def alerts_sweep(*, now: datetime | None = None) -> dict[str, int]:
    """Periodic (beat): leases ending soon; nodes whose health changed without a poll to notice (their
    polls stopped or are backed off); failed tasks and operations a hook missed; deliveries that could
    not be queued."""
    now = now or timezone.now()
    nodes = list(Node.objects.all())
    open_offline = {i.dedup_key: i for i in Incident.objects.filter(kind=IncidentKind.NODE_OFFLINE,
                                                                     resolved_at__isnull=True)}
    counts = _check_nodes(nodes, open_offline, now)
    # Outages of nodes removed since end without a recovery message.
    removed = [i.pk for i in open_offline.values() if i.node_id not in {n.pk for n in nodes}]
    if removed:
        Incident.objects.filter(pk__in=removed).update(resolved_at=now, dedup_key=None)
    counts["task_failed"] = _check_failed_tasks(NodeTask.objects.filter(_failed_tasks(now)),
                                                {n.pk: n.name for n in nodes}, now)
    alerted = Incident.objects.filter(kind=IncidentKind.OPERATION_FAILED, opened_at__gte=now - 2 * LOOKBACK)
    failed_ops = (Operation.objects.filter(status=OperationStatus.FAILED, finished_at__gte=now - LOOKBACK)
                  .exclude(pk__in=[k.split(":", 1)[1] for k in alerted.values_list("key", flat=True)])
                  .values_list("pk", flat=True)[:200])
    counts["operation_failed"] = sum(1 for pk in failed_ops if alerts_operation_check(operation_id=str(pk), now=now))
    counts.update(_check_leases(now))
    counts["requeued"] = _requeue_lost_deliveries(now)
    return counts


def _requeue_lost_deliveries(now: datetime) -> int:
    """Deliveries whose task was lost (Redis down when queued, a worker gone): queue them again."""
    grace = timedelta(seconds=120)
    lost = Delivery.objects.filter(
        Q(status=DeliveryStatus.PENDING, created_at__lt=now - grace)
        | Q(status=DeliveryStatus.RETRYING, next_attempt_at__lt=now - grace)
    ).values_list("pk", flat=True)[:100]
    count = 0
    for pk in lost:
        _enqueue_delivery(pk)
        count += 1
    return count


# ---------------------------------------------------------------- sending


@dataclass
class AttemptOutcome:
    status: str  # "delivered", "retry", "failed" or "skipped"
    retry_in: float | None = None


def _connection_problem(exc: BaseException) -> str:
    """Plain words for a failed connection, from the exception chain's types (the message would quote
    the URL, whose path is a secret)."""
    seen: BaseException | None = exc
    for _ in range(10):
        if seen is None:
            break
        if isinstance(seen, socket.gaierror):
            return "could not resolve the webhook's host name"
        if isinstance(seen, ConnectionRefusedError):
            return "connection refused"
        if isinstance(seen, ConnectionResetError):
            return "the connection was reset"
        if isinstance(seen, requests.exceptions.SSLError):
            return "TLS error (the webhook's certificate was not accepted)"
        nested = seen.args[0] if seen.args and isinstance(seen.args[0], BaseException) else None
        seen = getattr(seen, "reason", None) or nested or seen.__cause__ or seen.__context__
    if isinstance(exc, requests.exceptions.SSLError):
        return "TLS error (the webhook's certificate was not accepted)"
    return "could not connect to the webhook"


@sensitive_variables("url")
def _post(webhook: Webhook, body: str) -> tuple[int | None, str, bool]:
    """(status code, error or "", worth retrying)."""
    try:
        url = decrypt(webhook.url_enc)
    except CredentialUnreadable:
        return None, "The stored URL cannot be decrypted with the configured keys: enter it again.", False
    try:
        validate_webhook_url(url)
    except ValidationError as exc:
        return None, " ".join(exc.messages), False
    connect = float(_setting("ALERT_CONNECT_TIMEOUT", 3))
    read = float(_setting("ALERT_READ_TIMEOUT", 5))
    try:
        response = requests.post(url, data=body.encode(), timeout=(connect, read), allow_redirects=False,
                                 stream=True, headers={"Content-Type": "application/json", "User-Agent": USER_AGENT})
    except requests.exceptions.Timeout:
        return None, f"timed out (no answer within {read:g} s)", True
    except requests.exceptions.ConnectionError as exc:
        return None, _connection_problem(exc), True
    except requests.exceptions.RequestException as exc:
        return None, f"the request failed ({type(exc).__name__})", False
    code = response.status_code
    response.close()  # the answer's body is not read: only its status matters
    if 200 <= code < 300:
        return code, "", False
    if 300 <= code < 400:
        return code, f"HTTP {code}: a redirect, which is not followed (enter the URL it points to)", False
    if code in (408, 425, 429) or code >= 500:
        return code, f"HTTP {code} from the webhook", True
    return code, f"HTTP {code} from the webhook (not retried)", False


def delivery_attempt(*, delivery_id: int) -> AttemptOutcome:
    """Send one delivery once; the caller retries after `retry_in` seconds when asked to."""
    now = timezone.now()
    stale = now - timedelta(seconds=float(_setting("ALERT_READ_TIMEOUT", 5)) * 4 + 60)
    # Claim it (one sender at a time); a delivery left "sending" by a lost worker can be claimed again.
    claimed = Delivery.objects.filter(
        Q(status__in=(DeliveryStatus.PENDING, DeliveryStatus.RETRYING))
        | Q(status=DeliveryStatus.SENDING, last_attempt_at__lt=stale),
        pk=delivery_id,
    ).update(status=DeliveryStatus.SENDING, attempts=F("attempts") + 1, last_attempt_at=now, next_attempt_at=None)
    if not claimed:
        return AttemptOutcome("skipped")
    delivery = Delivery.objects.select_related("webhook").get(pk=delivery_id)
    webhook = delivery.webhook
    if not webhook.enabled and delivery.event != DeliveryEvent.TEST:
        Delivery.objects.filter(pk=delivery_id).update(status=DeliveryStatus.FAILED,
                                                       error="The webhook was disabled before this was sent.")
        return AttemptOutcome("failed")
    started = time.monotonic()
    code, error, retryable = _post(webhook, delivery.body)
    duration_ms = int((time.monotonic() - started) * 1000)
    common = {"status_code": code, "error": error, "duration_ms": duration_ms}
    if not error:
        Delivery.objects.filter(pk=delivery_id).update(status=DeliveryStatus.DELIVERED, delivered_at=timezone.now(),
                                                       **common)
        logger.info("alert delivery %s to webhook %s: HTTP %s", delivery_id, webhook.pk, code)
        return AttemptOutcome("delivered")
    max_attempts = int(_setting("ALERT_MAX_ATTEMPTS", 6))
    if retryable and delivery.attempts < max_attempts:
        delay = retry_delay_seconds(delivery.attempts)
        Delivery.objects.filter(pk=delivery_id).update(
            status=DeliveryStatus.RETRYING, next_attempt_at=timezone.now() + timedelta(seconds=delay), **common
        )
        logger.warning("alert delivery %s to webhook %s (%s) failed: %s; retry %s in %.1f s", delivery_id,
                       webhook.pk, webhook.url_display, error, delivery.attempts + 1, delay)
        return AttemptOutcome("retry", retry_in=delay)
    if retryable:
        common["error"] = f"{error}; gave up after {delivery.attempts} attempts"
    Delivery.objects.filter(pk=delivery_id).update(status=DeliveryStatus.FAILED, **common)
    logger.warning("alert delivery %s to webhook %s (%s) failed: %s", delivery_id, webhook.pk, webhook.url_display,
                   common["error"])
    return AttemptOutcome("failed")
