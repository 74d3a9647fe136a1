"""Bulk seeding of history for the page and retention measurements (ORM bulk_create, in batches)."""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from fleetui.activity.models import FleetEvent, Operation, OperationStatus
from fleetui.nodes.models import Node, NodeStatsSample
from fleetui.vms.models import VM

BATCH = 2000
EVENT_TYPES = ["vm_started", "vm_stopped", "vm_created", "vm_deleted", "snapshot_created", "image_pulled",
               "task_failed", "node_connected", "node_disconnected"]
OPERATION_KINDS = ["vm.start", "vm.stop", "vm.suspend", "vm.resume", "snapshot.create", "image.pull"]


@contextmanager
def _no_auto_now_add(model: type) -> Iterator[None]:
    """Let bulk_create keep the timestamps we give (auto_now_add would stamp them all 'now')."""
    fields = [f for f in model._meta.concrete_fields if getattr(f, "auto_now_add", False)]
    for f in fields:
        f.auto_now_add = False
    try:
        yield
    finally:
        for f in fields:
            f.auto_now_add = True


def _bulk(model: type, objs: list) -> None:
    with transaction.atomic():
        for i in range(0, len(objs), BATCH):
            model.objects.bulk_create(objs[i : i + BATCH], batch_size=500)


def seed_events(*, count: int, source: Node, node_names: list[str], oldest: timedelta, seed: int = 6,
                prefix: str = "bench") -> int:
    """`count` FleetEvents from the manager `source`, spread evenly over the last `oldest`."""
    rng = random.Random(seed)
    now = timezone.now()
    step = oldest / max(count, 1)
    objs = []
    for i in range(count):
        at = now - step * (i + 1)
        kind = rng.choice(EVENT_TYPES)
        objs.append(FleetEvent(
            source_node=source, remote_id=f"{prefix}-{i}", event_type=kind, node_name=rng.choice(node_names),
            message=f"{kind.replace('_', ' ')} (seeded {i})", vm_remote_id="", vm_name=f"vm-{i % 997}",
            timestamp=at, received_at=at,
        ))
        if len(objs) >= BATCH * 5:
            _bulk_events(objs)
            objs = []
    _bulk_events(objs)
    return count


def _bulk_events(objs: list[FleetEvent]) -> None:
    with _no_auto_now_add(FleetEvent):
        _bulk(FleetEvent, objs)


def seed_operations(*, count: int, user: object, oldest: timedelta, seed: int = 7) -> int:
    """`count` finished Operations over the last `oldest`, against real nodes and VMs of the fleet."""
    rng = random.Random(seed)
    vms = list(VM.objects.select_related("node").order_by("pk").values_list(
        "pk", "name", "remote_id", "node_id", "node__name")[:2000])
    if not vms:
        return 0
    now = timezone.now()
    step = oldest / max(count, 1)
    objs = []
    for i in range(count):
        at: datetime = now - step * (i + 1)
        vm_pk, vm_name, vm_remote, node_pk, node_name = rng.choice(vms)
        failed = rng.random() < 0.05
        objs.append(Operation(
            id=uuid.UUID(int=rng.getrandbits(128), version=4), kind=rng.choice(OPERATION_KINDS),
            status=OperationStatus.FAILED if failed else OperationStatus.SUCCEEDED,
            user=user, username=getattr(user, "username", ""), node_id=node_pk, node_name=node_name,
            vm_id=vm_pk, vm_name=vm_name, vm_remote_id=vm_remote, params={}, result={},
            error="the node refused: at most 2 VMs can run at once" if failed else "",
            created_at=at, started_at=at, finished_at=at + timedelta(milliseconds=rng.randint(20, 900)),
            source_ip="127.0.0.1", request_id=f"bench-{i}",
        ))
    with _no_auto_now_add(Operation):
        _bulk(Operation, objs)
    return count


def seed_stats_history(*, nodes: list[Node], per_node: int, spacing: timedelta, start_age: timedelta,
                       seed: int = 8) -> int:
    """`per_node` samples per node, `spacing` apart, the newest `start_age` old."""
    rng = random.Random(seed)
    now = timezone.now()
    objs = []
    written = 0
    for node in nodes:
        for i in range(per_node):
            objs.append(NodeStatsSample(
                node=node, at=now - start_age - spacing * i, cpu_usage_percent=round(rng.uniform(3, 95), 1),
                memory_used_gb=round(rng.uniform(4, 30), 1), memory_total_gb=32.0,
                disk_used_gb=round(rng.uniform(100, 900), 1), disk_total_gb=1000.0,
                running_vm_count=rng.randint(0, 2), total_vm_count=20,
            ))
        if len(objs) >= BATCH * 5:
            _bulk(NodeStatsSample, objs)
            written += len(objs)
            objs = []
    _bulk(NodeStatsSample, objs)
    return written + len(objs)
