"""Writes for node tasks and images, and OCI reference validation."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from ciderstack.types import Task as RemoteTask
from django.core.exceptions import ValidationError
from django.utils import timezone

from fleetui.images.models import IPSW, NodeTask, OCIImage, TaskStatus
from fleetui.images.services import (
    node_images_record,
    node_tasks_record,
    tasks_finished_since,
    validate_oci_reference,
)
from fleetui.nodes.models import Node

pytestmark = pytest.mark.django_db


@pytest.fixture()
def node(db: Any) -> Node:
    return Node.objects.create(name="n1", host="10.0.0.1")


def _task(task_id: str, status: str, progress: float, **extra: Any) -> RemoteTask:
    data = {"id": task_id, "type": "oci_pull", "title": "Pull x", "status": status, "progress": progress,
            "startedAt": "2026-12-01T10:00:00Z"}
    data.update(extra)
    return RemoteTask.from_dict(data)


def test_tasks_are_upserted_changed_only_and_vanished_active_ones_become_unknown(node: Node) -> None:
    now = timezone.now()
    assert node_tasks_record(node_id=node.pk, remote_tasks=[_task("T1", "running", 10), _task("T2", "running", 5)],
                             now=now) == {"tasks_created": 2, "tasks_updated": 0}
    assert node_tasks_record(node_id=node.pk, remote_tasks=[_task("T1", "running", 10), _task("T2", "running", 5)],
                             now=now) == {"tasks_created": 0, "tasks_updated": 0}
    done = _task("T1", "completed", 100, completedAt="2026-12-01T10:01:00Z")
    assert node_tasks_record(node_id=node.pk, remote_tasks=[done], now=now) == {"tasks_created": 0,
                                                                               "tasks_updated": 2}
    t1, t2 = NodeTask.objects.get(remote_id="T1"), NodeTask.objects.get(remote_id="T2")
    assert t1.status == TaskStatus.COMPLETED and t1.progress == 100 and not t1.is_active
    assert t2.status == TaskStatus.UNKNOWN and not t2.is_active and "no longer reported" in t2.progress_text
    # A finished task that disappears stays as it was.
    assert node_tasks_record(node_id=node.pk, remote_tasks=[], now=now) == {"tasks_created": 0, "tasks_updated": 0}


def test_task_values_are_clamped(node: Node) -> None:
    node_tasks_record(node_id=node.pk, remote_tasks=[_task("T", "exploding", 250, title="t" * 400)],
                      now=timezone.now())
    task = NodeTask.objects.get()
    assert task.status == TaskStatus.UNKNOWN and task.progress == 100 and len(task.title) == 255


def test_tasks_finished_since() -> None:
    since = timezone.now() - timedelta(minutes=1)
    running = _task("A", "running", 50)
    old = _task("B", "completed", 100, completedAt=(since - timedelta(minutes=5)).isoformat())
    new = _task("C", "failed", 40, completedAt=timezone.now().isoformat())
    assert not tasks_finished_since([running, old], since)
    assert tasks_finished_since([running, new], since)
    assert tasks_finished_since([old], None)


def test_images_and_ipsws_are_replaced_with_what_the_node_lists(node: Node) -> None:
    now = timezone.now()
    images = [{"reference": "ghcr.io/a/b:1", "digest": "sha256:aa", "sizeBytes": 10,
               "pulledAt": "2026-12-01T10:00:00Z"},
              {"reference": "ghcr.io/a/c:2", "sizeBytes": 20}]
    ipsws = [{"path": "/ipsw/15.1.ipsw", "name": "macOS 15.1", "version": "15.1", "sizeBytes": 5}]
    assert node_images_record(node_id=node.pk, images=images, ipsws=ipsws, now=now) == {"images_written": 3}
    assert node_images_record(node_id=node.pk, images=images, ipsws=ipsws, now=now) == {"images_written": 0}
    images[0]["sizeBytes"] = 11
    assert node_images_record(node_id=node.pk, images=images[:1], ipsws=[], now=now) == {"images_written": 3}
    assert list(OCIImage.objects.values_list("reference", "size_bytes")) == [("ghcr.io/a/b:1", 11)]
    assert not IPSW.objects.exists()


@pytest.mark.parametrize("reference", [
    "ghcr.io/cirruslabs/macos-sequoia-base:latest",
    "registry.example.com:5000/team/image:1.2.3",
    "ubuntu",
    "ghcr.io/a/b@sha256:" + "a" * 64,
])
def test_validate_oci_reference_accepts_references(reference: str) -> None:
    assert validate_oci_reference(f"  {reference} ") == reference


@pytest.mark.parametrize("reference", [
    "", "   ", None, 42, "Upper/Case", "ghcr.io/a b", "https://ghcr.io/a/b", "ghcr.io/a/b:", "a" * 513,
    "ghcr.io/a/b\x00", "ghcr.io/../b",
])
def test_validate_oci_reference_refuses_the_rest(reference: Any) -> None:
    with pytest.raises(ValidationError):
        validate_oci_reference(reference)
