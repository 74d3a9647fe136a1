"""Celery wiring: queues, acknowledgement and retry choices of the worker tasks."""

from __future__ import annotations

from django.conf import settings

from fleetui.activity.tasks import run_operation
from fleetui.celery import app
from fleetui.nodes.tasks import poll_fleet, poll_node, prune_history, refresh_vm_details


def _queue(task_name: str) -> str:
    return app.amqp.router.route({}, task_name)["queue"].name


def test_polls_and_actions_have_their_own_queues() -> None:
    for task in (poll_fleet, poll_node, refresh_vm_details, prune_history):
        assert _queue(task.name) == "polls"
    assert _queue(run_operation.name) == "actions"


def test_tasks_are_acknowledged_late_and_actions_never_retried() -> None:
    assert settings.CELERY_TASK_ACKS_LATE and settings.CELERY_TASK_REJECT_ON_WORKER_LOST
    assert poll_node.acks_late and poll_node.reject_on_worker_lost and poll_node.max_retries == 3
    assert run_operation.acks_late and run_operation.reject_on_worker_lost
    assert run_operation.max_retries == 0
    # Redis must not redeliver a task that is still running.
    assert settings.CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"] > settings.CELERY_TASK_TIME_LIMIT


def test_beat_polls_the_fleet_every_interval_and_prunes_hourly() -> None:
    schedule = settings.CELERY_BEAT_SCHEDULE
    assert schedule["poll-fleet"]["task"] == poll_fleet.name
    assert schedule["poll-fleet"]["schedule"] == float(settings.POLL_INTERVAL)
    assert schedule["prune-history"]["task"] == prune_history.name
