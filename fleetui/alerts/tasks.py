"""Celery entry points for alerts (queue "alerts"): take ids, call services."""

from __future__ import annotations

from celery import shared_task

from fleetui.alerts.services import alerts_node_check, alerts_operation_check, alerts_sweep, delivery_attempt


@shared_task(name="fleetui.alerts.tasks.evaluate_node", ignore_result=True, acks_late=True)
def evaluate_node(node_id: int) -> dict:
    return alerts_node_check(node_id=node_id)


@shared_task(name="fleetui.alerts.tasks.operation_finished", ignore_result=True, acks_late=True)
def operation_finished(operation_id: str) -> bool:
    return alerts_operation_check(operation_id=operation_id) is not None


@shared_task(name="fleetui.alerts.tasks.sweep", ignore_result=True, acks_late=True)
def sweep() -> dict:
    return alerts_sweep()


@shared_task(name="fleetui.alerts.tasks.deliver", bind=True, ignore_result=True, acks_late=True,
             max_retries=None)
def deliver(self, delivery_id: int) -> str:  # noqa: ANN001 - Celery's bound task
    """Send one delivery; on a retryable failure Celery retries it after an exponentially growing delay
    (the attempt count and the cap live on the Delivery row, see delivery_attempt)."""
    outcome = delivery_attempt(delivery_id=delivery_id)
    if outcome.retry_in is not None:
        raise self.retry(countdown=outcome.retry_in)
    return outcome.status
