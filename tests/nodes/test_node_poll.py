"""Polling against fleetsim over HTTP: what a poll writes, what it does not, and how failures show."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from ciderstack import FleetClient
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from fleetsim import SimFleet

from fleetui.activity.models import FleetEvent
from fleetui.images.models import IPSW, NodeTask, OCIImage, TaskStatus
from fleetui.nodes.locks import node_poll_lock
from fleetui.nodes.models import Health, Node, NodeStatsSample
from fleetui.nodes.services import BREAKER_THRESHOLD, node_poll
from fleetui.vms.models import VM

pytestmark = pytest.mark.django_db


def _client(sim: Any) -> FleetClient:
    return FleetClient(sim.host, api_token=sim.api_token, port=sim.port, timeout=5)


def _writes_to(queries: CaptureQueriesContext, table: str) -> list[str]:
    return [q["sql"] for q in queries.captured_queries
            if q["sql"].split()[0].upper() in ("INSERT", "UPDATE", "DELETE") and f'"{table}"' in q["sql"]]


def test_a_poll_records_info_stats_vms_images_and_resources(fleet: SimFleet, registered: list[Node]) -> None:
    node = registered[1]
    sim = fleet.nodes[1]

    outcome = node_poll(node_id=node.pk)

    assert outcome.ok, outcome.error
    node.refresh_from_db()
    assert node.health() == Health.ONLINE
    assert node.role == Node.Role.WORKER
    assert node.cpu_usage_percent is not None and node.memory_total_gb == float(sim.state.total_memory_gb)
    assert node.total_vm_count == 4 and node.stats_at is not None
    assert node.last_poll_duration_ms is not None and node.consecutive_failures == 0
    assert node.resources.get("maxVMs") == 2 and node.resources_at is not None
    assert NodeStatsSample.objects.filter(node=node).count() == 1
    vms = {vm.remote_id: vm for vm in VM.objects.filter(node=node)}
    assert set(vms) == set(sim.state.vms)
    for remote_id, remote in sim.state.vms.items():
        assert vms[remote_id].name == remote.name
        assert vms[remote_id].state == remote.state
        assert vms[remote_id].memory_mb == remote.memory_mb
    assert set(OCIImage.objects.filter(node=node).values_list("reference", flat=True)) == {
        i["reference"] for i in sim.state.images
    }
    assert IPSW.objects.filter(node=node).count() == len(sim.state.ipsws)
    assert node.images_at is not None
    assert not node.fleet_overview  # a worker has none


def test_a_second_poll_of_an_unchanged_node_writes_no_vm_task_image_or_event_rows(
    fleet: SimFleet, registered: list[Node]
) -> None:
    manager = registered[0]
    assert node_poll(node_id=manager.pk).ok

    with CaptureQueriesContext(connection) as queries:
        outcome = node_poll(node_id=manager.pk)

    assert outcome.ok
    assert outcome.writes["vms_created"] == outcome.writes["vms_updated"] == outcome.writes["vms_gone"] == 0
    assert outcome.writes["tasks_created"] == outcome.writes["tasks_updated"] == 0
    assert outcome.writes.get("events_created", 0) == 0
    assert "images_written" not in outcome.writes  # images are listed every minute, not every poll
    for table in ("vms_vm", "images_nodetask", "images_ociimage", "images_ipsw", "activity_fleetevent"):
        assert _writes_to(queries, table) == [], table
    # What a poll always writes: its node row and one stats sample.
    assert len(_writes_to(queries, "nodes_node")) == 1
    assert len(_writes_to(queries, "nodes_nodestatssample")) == 1


def test_a_changed_vm_is_the_only_row_written(fleet: SimFleet, registered: list[Node]) -> None:
    node, sim = registered[2], fleet.nodes[2]
    node_poll(node_id=node.pk)
    target = next(iter(sim.state.vms.values()))
    changed_before = VM.objects.get(remote_id=target.id, node=node).changed_at
    with _client(sim) as client:
        client.rename_vm(target.id, "renamed-by-test")

    outcome = node_poll(node_id=node.pk)

    assert outcome.writes["vms_updated"] == 1 and outcome.writes["vms_created"] == 0
    row = VM.objects.get(remote_id=target.id, node=node)
    assert row.name == "renamed-by-test" and row.changed_at > changed_before
    others = VM.objects.filter(node=node).exclude(pk=row.pk)
    assert all(vm.changed_at <= changed_before for vm in others)


def test_vms_gone_from_the_node_are_marked_gone_and_new_ones_created(
    fleet: SimFleet, registered: list[Node]
) -> None:
    node, sim = registered[1], fleet.nodes[1]
    node_poll(node_id=node.pk)
    stopped = next(v for v in sim.state.vms.values() if v.state == "stopped")
    with _client(sim) as client:
        clone = client.clone_vm(stopped.id, "the-clone")
        client.delete_vm(stopped.id)

    outcome = node_poll(node_id=node.pk)

    assert outcome.writes["vms_gone"] == 1 and outcome.writes["vms_created"] == 1
    assert VM.objects.get(node=node, remote_id=stopped.id).gone_at is not None
    assert VM.objects.get(node=node, remote_id=clone.id).name == "the-clone"
    assert node_poll(node_id=node.pk).writes["vms_gone"] == 0  # marked once


def test_tasks_are_recorded_with_progress_and_completed_ones_kept(
    fleet: SimFleet, registered: list[Node], wait_for: Callable[..., Any]
) -> None:
    node, sim = registered[1], fleet.nodes[1]
    node_poll(node_id=node.pk)
    with _client(sim) as client:
        client.pull_oci_image("ghcr.io/example/macos-test:1.0")

    node_poll(node_id=node.pk)
    task = NodeTask.objects.get(node=node)
    assert task.type == "oci_pull" and task.is_active and 0 <= task.progress < 100

    outcomes = []

    def finished() -> bool:
        outcomes.append(node_poll(node_id=node.pk))
        return NodeTask.objects.get(pk=task.pk).status == TaskStatus.COMPLETED

    wait_for(finished, timeout=5, interval=0.2, message="the pull to finish")
    outcome = outcomes[-1]
    task.refresh_from_db()
    assert task.status == TaskStatus.COMPLETED and task.progress == 100 and task.completed_at is not None
    # A finished task makes the poll list the images again: the pulled one is there.
    assert "images_written" in outcome.writes
    assert OCIImage.objects.filter(node=node, reference="ghcr.io/example/macos-test:1.0").exists()
    assert node_poll(node_id=node.pk).writes["tasks_updated"] == 0


def test_a_manager_poll_records_the_overview_and_new_events_once(
    fleet: SimFleet, registered: list[Node]
) -> None:
    manager, sim = registered[0], fleet.nodes[0]
    outcome = node_poll(node_id=manager.pk)
    manager.refresh_from_db()
    assert manager.role == Node.Role.MANAGER
    assert manager.fleet_overview["stats"]["totalNodes"] == 3
    assert "vms" not in manager.fleet_overview and manager.fleet_overview["vmCount"] == 12
    assert manager.fleet_overview_at is not None
    first = FleetEvent.objects.count()
    assert outcome.writes.get("events_created", 0) == first

    worker_vm = next(v for v in fleet.nodes[1].state.vms.values() if v.state == "stopped")
    with _client(fleet.nodes[1]) as client:
        client.rename_vm(worker_vm.id, "renamed-for-an-event")
    outcome = node_poll(node_id=manager.pk)
    assert outcome.writes["events_created"] == 1
    event = FleetEvent.objects.get(event_type="vm_renamed")
    assert event.vm_remote_id == worker_vm.id and "renamed-for-an-event" in event.message
    assert event.source_node_id == manager.pk and event.node_name == fleet.nodes[1].name
    assert node_poll(node_id=manager.pk).writes["events_created"] == 0
    assert FleetEvent.objects.count() == first + 1
    # Workers do not answer fleet questions: no events from them.
    node_poll(node_id=registered[1].pk)
    assert not FleetEvent.objects.filter(source_node=registered[1]).exists()
    assert sim.state.role == "manager"


def test_events_without_ids_are_deduplicated_by_their_content(registered: list[Node]) -> None:
    from fleetui.activity.services import fleet_events_record

    now = timezone.now()
    started = {"eventType": "vm_started", "nodeName": "a", "message": "VM 'x' is running",
               "timestamp": "2026-12-01T10:00:00Z"}
    stopped = {"eventType": "vm_stopped", "nodeName": "a", "message": "VM 'x' stopped",
               "timestamp": "2026-12-01T10:05:00Z"}
    events = [started, dict(started), stopped, "not an event"]
    assert fleet_events_record(node_id=registered[0].pk, events=events, now=now) == 2
    assert fleet_events_record(node_id=registered[0].pk, events=events, now=now) == 0
    assert FleetEvent.objects.filter(remote_id__startswith="sha256:").count() == 2


def test_health_is_derived_from_the_poll_times(registered: list[Node], settings: Any) -> None:
    settings.POLL_INTERVAL = 10
    node = registered[1]
    assert Node.objects.get(pk=node.pk).health() == Health.PENDING
    node_poll(node_id=node.pk)
    node.refresh_from_db()
    now = timezone.now()
    assert node.health(now) == Health.ONLINE
    assert node.health(now + timedelta(seconds=25)) == Health.ONLINE
    assert node.health(now + timedelta(seconds=45)) == Health.STALE
    assert node.health(now + timedelta(seconds=65)) == Health.OFFLINE


def test_a_node_going_down_mid_run_and_coming_back(fleet: SimFleet, registered: list[Node]) -> None:
    node, sim = registered[1], fleet.nodes[1]
    assert node_poll(node_id=node.pk).ok
    vms_before = VM.objects.filter(node=node, gone_at__isnull=True).count()

    sim.set_faults("down")
    outcome = node_poll(node_id=node.pk)
    assert not outcome.ok
    node.refresh_from_db()
    assert node.last_error == "cannot reach the node: connection refused"
    assert node.consecutive_failures == 1 and node.health() == Health.STALE
    # Nothing seen is thrown away while the node is down.
    assert VM.objects.filter(node=node, gone_at__isnull=True).count() == vms_before
    # The other nodes are polled as usual in the same cycle.
    assert node_poll(node_id=registered[2].pk).ok

    sim.clear_faults()
    assert node_poll(node_id=node.pk).ok
    node.refresh_from_db()
    assert node.last_error == "" and node.consecutive_failures == 0 and node.health() == Health.ONLINE
    assert node.last_error_at is not None and node.last_success_at > node.last_error_at


@pytest.mark.parametrize(
    ("mode", "words"),
    [
        ("http_500", "the node answered HTTP 500: Internal server error (simulated)"),
        ("http_503", "the node answered HTTP 503"),
        ("http_403", "the node rejected the token: Access denied (simulated fault)"),
        ("garbage", "the node's answer could not be read (answer is not JSON"),
        ("wrong_shape", "the node's answer could not be read"),
        ("truncated", "cannot reach the node"),
        ("hang", "timed out: the node did not answer within 2 s"),
    ],
)
def test_each_node_fault_becomes_a_plain_last_error(
    fleet: SimFleet, registered: list[Node], mode: str, words: str
) -> None:
    node, sim = registered[2], fleet.nodes[2]
    sim.set_faults(mode)
    outcome = node_poll(node_id=node.pk)
    assert not outcome.ok
    node.refresh_from_db()
    assert node.last_error.startswith(words), node.last_error
    assert node.last_error_at is not None and node.consecutive_failures == 1
    assert sim.api_token not in node.last_error


def test_an_undecryptable_token_says_to_re_enter_it(registered: list[Node]) -> None:
    node = registered[1]
    Node.objects.filter(pk=node.pk).update(api_token_enc="gAAAAA-garbage")
    outcome = node_poll(node_id=node.pk)
    assert not outcome.ok and "re-enter the token" in outcome.error
    assert "re-enter the token" in Node.objects.get(pk=node.pk).last_error


def test_the_circuit_breaker_backs_off_then_probes_and_resets(fleet: SimFleet, registered: list[Node]) -> None:
    node, sim = registered[1], fleet.nodes[1]
    sim.set_faults("down")
    for attempt in range(1, BREAKER_THRESHOLD + 1):
        node_poll(node_id=node.pk, scheduled=True)
        node.refresh_from_db()
        assert node.consecutive_failures == attempt
    assert node.backoff_until is not None and node.circuit_open
    first_backoff = node.backoff_until

    skipped = node_poll(node_id=node.pk, scheduled=True)
    assert skipped.skipped and not skipped.ok
    assert Node.objects.get(pk=node.pk).consecutive_failures == BREAKER_THRESHOLD

    # A forced poll (an operator asking) still tries; the backoff grows with each failure.
    node_poll(node_id=node.pk, force=True)
    node.refresh_from_db()
    assert node.backoff_until > first_backoff

    # When the backoff has run out, the next scheduled poll is the probe; success closes the circuit.
    Node.objects.filter(pk=node.pk).update(backoff_until=timezone.now() - timedelta(seconds=1))
    sim.clear_faults()
    assert node_poll(node_id=node.pk, scheduled=True).ok
    node.refresh_from_db()
    assert node.backoff_until is None and node.consecutive_failures == 0


def test_backoff_is_capped(registered: list[Node], settings: Any) -> None:
    from fleetui.nodes.services import BREAKER_MAX_SECONDS, _backoff_seconds

    settings.POLL_INTERVAL = 10
    assert _backoff_seconds(BREAKER_THRESHOLD - 1) == 0
    assert _backoff_seconds(BREAKER_THRESHOLD) == 10
    assert _backoff_seconds(BREAKER_THRESHOLD + 1) == 20
    assert _backoff_seconds(BREAKER_THRESHOLD + 20) == BREAKER_MAX_SECONDS


def test_a_scheduled_poll_skips_a_node_another_poll_holds(registered: list[Node]) -> None:
    node = registered[1]
    with node_poll_lock(node.pk) as acquired:
        assert acquired
        outcome = node_poll(node_id=node.pk, scheduled=True)
        assert outcome.skipped == "another poll of this node is running"
        waited = node_poll(node_id=node.pk, lock_wait=0.2)
        assert waited.skipped
    assert node_poll(node_id=node.pk, scheduled=True).ok
    assert Node.objects.get(pk=node.pk).consecutive_failures == 0


def test_a_poll_of_a_removed_node_is_skipped(db: Any) -> None:
    outcome = node_poll(node_id=987654)
    assert outcome.skipped == "the node was removed" and not outcome.error


def test_prune_history_thins_stats_samples(registered: list[Node], settings: Any) -> None:
    from fleetui.nodes.services import history_prune

    settings.STATS_RETENTION_DAYS = 7
    node = registered[1]
    now = timezone.now().replace(minute=30, second=0, microsecond=0)
    values = {"cpu_usage_percent": 1.0, "memory_used_gb": 1.0, "memory_total_gb": 8.0, "disk_used_gb": 1.0,
              "disk_total_gb": 10.0, "running_vm_count": 0, "total_vm_count": 0}
    ages = (
        [timedelta(seconds=10 * i) for i in range(1, 300)]  # the last ~50 minutes: all kept
        + [timedelta(hours=3, seconds=10 * i) for i in range(60)]  # 10 minutes 3 h ago: 2-3 kept
        + [timedelta(days=2, minutes=m) for m in range(0, 120, 5)]  # 2 hours 2 days ago: 2-3 kept
        + [timedelta(days=8)]  # past retention: deleted
    )
    NodeStatsSample.objects.bulk_create([NodeStatsSample(node=node, at=now - age, **values) for age in ages])

    counts = history_prune(now=now)

    kept = NodeStatsSample.objects.filter(node=node)
    assert kept.filter(at__gt=now - timedelta(hours=1)).count() == 299
    three_hours = kept.filter(at__lt=now - timedelta(hours=2), at__gt=now - timedelta(hours=4)).count()
    assert 2 <= three_hours <= 3
    two_days = kept.filter(at__lt=now - timedelta(days=1, hours=12)).count()
    assert 2 <= two_days <= 3
    assert counts["stats_samples"] == len(ages) - 299 - three_hours - two_days
    assert history_prune(now=now)["stats_samples"] == 0


def test_prune_history_expires_old_events_and_long_gone_vms(registered: list[Node], settings: Any) -> None:
    from fleetui.nodes.services import history_prune

    node = registered[1]
    node_poll(node_id=node.pk)
    old = timezone.now() - timedelta(days=settings.EVENTS_RETENTION_DAYS + 1)
    FleetEvent.objects.create(source_node=node, remote_id="old", event_type="x", timestamp=old)
    FleetEvent.objects.create(source_node=node, remote_id="new", event_type="x", timestamp=timezone.now())
    vm = VM.objects.filter(node=node).first()
    VM.objects.filter(pk=vm.pk).update(gone_at=timezone.now() - timedelta(days=settings.STATS_RETENTION_DAYS + 1))

    counts = history_prune()

    assert counts["events"] == 1 and counts["vms"] == 1
    assert list(FleetEvent.objects.values_list("remote_id", flat=True)) == ["new"]
    assert not VM.objects.filter(pk=vm.pk).exists()
