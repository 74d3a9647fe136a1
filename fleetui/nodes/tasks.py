"""Celery entry points for polling (queue "polls"). Tasks take ids and call services. A node's failure
is recorded on the node, never raised; only a transient failure of our own parts (database, Redis)
is retried, with backoff."""

from __future__ import annotations

import logging

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from fleetui.nodes.models import Node
from fleetui.nodes.services import history_prune, node_poll

logger = logging.getLogger(__name__)

@shared_task(name="fleetui.nodes.tasks.poll_fleet", ignore_result=True, acks_late=True)
def poll_fleet() -> int:
    """Fan out one poll_node per node (beat, every POLL_INTERVAL s). Nodes backed off are skipped
    until their backoff ends; the poll that follows is the probe. Returns how many were queued.

    Also settles the operations lost workers left running and the queue lost (activity.operations_reap).
    """
    now = timezone.now()
    _reap_operations()
    node_ids = list(
        Node.objects.exclude(backoff_until__gt=now).order_by("pk").values_list("pk", flat=True)
    )
    # A poll that waits longer than an interval in the queue is dropped: the next one is on its way.
    expires = float(settings.POLL_INTERVAL)
    for node_id in node_ids:
        poll_node.apply_async(args=[node_id], kwargs={"scheduled": True}, expires=expires)
    return len(node_ids)


def _reap_operations() -> None:
    from fleetui.activity.services import operations_reap

    try:
        reaped = operations_reap()
    except Exception:  # noqa: BLE001 - the polls go out whatever happened here
        logger.exception("could not settle lost operations")
        return
    if any(reaped.values()):
        logger.warning("lost operations settled: %s", reaped)


@shared_task(
    name="fleetui.nodes.tasks.poll_node",
    bind=True,
    ignore_result=True,
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=3,
)
def poll_node(self, node_id: int, scheduled: bool = False, force: bool = False, follow_vm: int | None = None,
              attempt: int = 0) -> dict:
    """Poll one node (never two polls of a node at once: a Redis lock; a scheduled poll that finds
    it taken skips). follow_vm: keep polling briefly while that VM is starting or stopping."""
    outcome = node_poll(node_id=node_id, scheduled=scheduled, force=force)
    if outcome.transient and self.request.retries < self.max_retries:
        # Our database or Redis failed, not the node: retry with backoff (polls are idempotent).
        raise self.retry(countdown=min(10, 2 ** self.request.retries))
    if follow_vm is not None:
        from fleetui.activity.services import vm_follow_up

        vm_follow_up(vm_id=follow_vm, node_id=node_id, attempt=attempt + 1)
    return {"ok": outcome.ok, "skipped": outcome.skipped, "error": outcome.error, "writes": outcome.writes}


@shared_task(name="fleetui.nodes.tasks.refresh_vm_details", ignore_result=True, acks_late=True)
def refresh_vm_details(vm_id: int) -> str:
    """Fetch one VM's snapshots and settings (asked for by the VM page); "" or what went wrong."""
    from fleetui.vms.services import vm_refresh_details

    return vm_refresh_details(vm_id=vm_id)


@shared_task(name="fleetui.nodes.tasks.prune_history", ignore_result=True, acks_late=True)
def prune_history() -> dict:
    counts = history_prune()
    logger.info("history pruned: %s", counts)
    return counts
