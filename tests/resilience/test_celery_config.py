"""The Celery settings that make redelivery safe, read from the configured app (not restated):
time limits inside the visibility timeout, longest legitimate work inside the soft limit, late acks,
separate queues, retries only where a task is idempotent and only with backoff."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from ciderstack import FleetClient
from django.conf import settings

from fleetui.celery import app
from fleetui.console.forms import TIMEOUT_MAX as EXEC_TIMEOUT_MAX
from fleetui.nodes.locks import poll_lock_ttl

# The calls one poll can make, each bounded by connect + read timeout: stats, VMs, tasks, info,
# fleet overview, fleet events, free resources, OCI images, IPSWs (fleetui.nodes.services._fetch).
CALLS_PER_POLL = 9

POLL_TASKS = ("fleetui.nodes.tasks.poll_fleet", "fleetui.nodes.tasks.poll_node",
              "fleetui.nodes.tasks.refresh_vm_details", "fleetui.nodes.tasks.prune_history")
ACTION_TASK = "fleetui.activity.tasks.run_operation"


@pytest.fixture(scope="module")
def tasks() -> dict[str, Any]:
    app.loader.import_default_modules()
    return {name: task for name, task in app.tasks.items() if name.startswith("fleetui.")}


def queue_of(name: str) -> str:
    route = app.amqp.router.route({}, name)
    return route["queue"].name


def limits(task: Any) -> tuple[float, float]:
    soft = task.soft_time_limit or app.conf.task_soft_time_limit
    hard = task.time_limit or app.conf.task_time_limit
    return float(soft), float(hard)


def test_time_limits_sit_inside_the_visibility_timeout(tasks: dict[str, Any]) -> None:
    visibility = app.conf.broker_transport_options["visibility_timeout"]
    assert app.conf.task_soft_time_limit and app.conf.task_time_limit
    for name, task in tasks.items():
        soft, hard = limits(task)
        # Redis redelivers an unacked task after the visibility timeout: a task still running then
        # would run twice. The hard limit ends every task before that; the soft limit comes first.
        assert visibility > hard > soft > 0, name


@pytest.fixture(scope="module")
def deployed_timeouts() -> dict[str, float]:
    """The node timeouts a deployment gets without overrides (this test run shortens them)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLEETUI_NODE_")}
    code = ("import django, json; django.setup(); from django.conf import settings as s; "
            "print(json.dumps([s.NODE_CONNECT_TIMEOUT, s.NODE_READ_TIMEOUT]))")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[2]).stdout
    connect, read = json.loads(out.strip().splitlines()[-1])
    return {"connect": float(connect), "read": float(read)}


@pytest.mark.parametrize("which", ["deployed defaults", "this test run"])
def test_the_longest_legitimate_work_fits_under_the_soft_limit(
    tasks: dict[str, Any], deployed_timeouts: dict[str, float], which: str, settings: Any,
) -> None:
    if which == "deployed defaults":
        settings.NODE_CONNECT_TIMEOUT = deployed_timeouts["connect"]
        settings.NODE_READ_TIMEOUT = deployed_timeouts["read"]
    per_call = settings.NODE_CONNECT_TIMEOUT + settings.NODE_READ_TIMEOUT
    worst_poll = CALLS_PER_POLL * per_call
    # A poll never outlives its node lock (else a second poll could start beside it)...
    assert worst_poll < poll_lock_ttl()
    assert poll_lock_ttl() < limits(tasks["fleetui.nodes.tasks.poll_node"])[0]
    # ...and the longest command a user may run (plus the SDK's margin, and the re-poll after it)
    # ends before the soft limit interrupts the operation.
    longest_action = settings.NODE_CONNECT_TIMEOUT + EXEC_TIMEOUT_MAX + FleetClient.EXEC_TIMEOUT_MARGIN + worst_poll
    assert longest_action < limits(tasks[ACTION_TASK])[0]


def deployed_worker_queues() -> list[set[str]]:
    """The queues of each Celery worker docker-compose.yml runs (read as text: no YAML parser here)."""
    compose = (Path(__file__).resolve().parents[2] / "docker-compose.yml").read_text()
    return [set(found.split(",")) for found in re.findall(r'"--queues",\s*"([^"]+)"', compose)]


def test_polls_and_actions_are_on_separate_queues_with_workers_of_their_own(tasks: dict[str, Any]) -> None:
    for name in POLL_TASKS:
        assert queue_of(name) == "polls", name
    assert queue_of(ACTION_TASK) == "actions"
    workers = deployed_worker_queues()
    assert workers, "docker-compose.yml runs no Celery worker"
    consumed = set().union(*workers)
    # Every task lands on a queue some deployed worker reads (else it would never run)...
    assert {queue_of(name) for name in tasks} <= consumed
    assert all(queue_of(entry["task"]) in consumed for entry in settings.CELERY_BEAT_SCHEDULE.values())
    # ...and no worker reads both polls and actions: long actions filling its slots would starve polls.
    assert not [queues for queues in workers if {"polls", "actions"} <= queues]


def test_every_task_acks_late_and_is_given_back_when_its_worker_is_lost(tasks: dict[str, Any]) -> None:
    assert app.conf.worker_prefetch_multiplier == 1  # a worker holds no more than it runs
    for name, task in tasks.items():
        assert task.acks_late, name
        assert task.reject_on_worker_lost, name
        assert task.ignore_result, name  # nothing (and so no secret) lands in a result backend


def test_actions_are_never_retried_and_polls_retry_a_few_times_with_backoff(tasks: dict[str, Any]) -> None:
    action = tasks[ACTION_TASK]
    # An action that failed or timed out may have reached the node: it is recorded, never re-run.
    assert action.max_retries == 0
    assert not getattr(action, "autoretry_for", ())
    poll = tasks["fleetui.nodes.tasks.poll_node"]
    # Polls are idempotent: retried, but only for our own transient failures (see test_redelivery), a few times.
    assert 0 < poll.max_retries <= 5
    assert not getattr(poll, "autoretry_for", ())


def test_delayed_tasks_come_due_well_inside_the_visibility_timeout() -> None:
    from fleetui.activity.services import FOLLOW_UP_SECONDS

    visibility = app.conf.broker_transport_options["visibility_timeout"]
    # With Redis, a task held back by countdown longer than the visibility timeout is delivered twice.
    longest_poll_retry = 10  # fleetui.nodes.tasks.poll_node: countdown=min(10, 2 ** retries)
    assert FOLLOW_UP_SECONDS < visibility and longest_poll_retry < visibility
    assert settings.POLL_INTERVAL < visibility
