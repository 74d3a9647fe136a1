"""Celery entry points for Operations (queue "actions"). Tasks take ids, never objects or secrets."""

from __future__ import annotations

from celery import shared_task

from fleetui.activity.services import operation_run
from fleetui.alerts.hooks import alerts_operation_finished


@shared_task(
    name="fleetui.activity.tasks.run_operation",
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
    # Never retried: an action that failed or timed out is recorded as such, so it cannot run twice.
    max_retries=0,
)
def run_operation(operation_id: str) -> str:
    outcome = operation_run(operation_id=operation_id)
    alerts_operation_finished(operation_id)  # queues the alerts check (a failed operation); never raises
    return outcome
