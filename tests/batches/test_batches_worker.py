"""Batches run by a real Celery worker against fleetsim nodes over HTTP: a bulk start across two
nodes where one VM hits the node's two-running-VMs limit and the others still start; a batch
cancelled while it runs (what no worker had started never reaches a node, what had started
finishes); a fan-out command with its per-VM exit codes, the failures filter, the CSV/JSON
downloads, and the SSH password found nowhere in clear (database, Redis, worker log, pages)."""

from __future__ import annotations

import csv
import io
import json
import logging
import sys
from pathlib import Path
from typing import Any

import pytest
import redis
from django.conf import settings
from django.urls import reverse

from fleetui.activity.models import Operation, OperationStatus
from fleetui.batches.models import Batch, BatchItem
from fleetui.nodes.services import node_poll
from fleetui.vms.models import VM

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "security"))
from secretscan import database_leaks, leaks, redis_leaks  # noqa: E402

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

PASSWORD = "Fan0ut-ssh-Pa55word-7f3a"


def _fleet(sim_fleet: Any, register_sim: Any, *, running: dict[int, list[int]], **options: Any) -> list[Any]:
    """Two fleetsim nodes whose VMs are stopped except the ones named in `running` (node -> VM
    indexes), registered and polled; returns the Node rows."""
    fleet = sim_fleet(nodes=2, vms_per_node=3, seed=21, transition_seconds=0.2, **options)
    nodes = []
    for index, sim in enumerate(fleet.nodes):
        for position, vm in enumerate(sorted(sim.state.vms.values(), key=lambda v: v.name)):
            vm.state = "running" if position in running.get(index, []) else "stopped"
        node = register_sim(sim)
        assert node_poll(node_id=node.pk, force=True).ok
        nodes.append(node)
    return nodes


def _vms(node: Any) -> list[VM]:
    return list(VM.objects.filter(node=node).order_by("name"))


def _ops(batch: Batch) -> list[Operation]:
    return list(Operation.objects.filter(batch_item__batch=batch).order_by("batch_item__position"))


def _settled(batch: Batch) -> bool:
    return not Operation.objects.filter(batch_item__batch=batch,
                                        status__in=[OperationStatus.PENDING, OperationStatus.RUNNING]).exists()


def test_a_bulk_start_across_nodes_where_one_vm_fails(celery_worker: Any, sim_fleet: Any, register_sim: Any,
                                                      as_role: Any, wait_for: Any) -> None:
    # Node 0 runs one VM already: of its two others, one starts and one hits the 2-running limit.
    node0, node1 = _fleet(sim_fleet, register_sim, running={0: [0]})
    chosen = _vms(node0)[1:] + _vms(node1)[:2]
    client = as_role("operator")
    response = client.post("/batches/new/", {"action": "start", "vm": [vm.pk for vm in chosen], "confirmed": "1"})
    assert response.status_code == 302
    batch = Batch.objects.get()
    url = reverse("batch-detail", args=[batch.pk])
    wait_for(lambda: _settled(batch), timeout=30, message="every operation of the batch to finish")
    ops = _ops(batch)
    assert [op.kind for op in ops] == ["vm.start"] * 4
    by_node = {node0.name: [], node1.name: []}
    for op in ops:
        by_node[op.node_name].append(op)
    assert sorted(op.status for op in by_node[node0.name]) == ["failed", "succeeded"]
    failed = next(op for op in by_node[node0.name] if op.status == "failed")
    assert "at most 2 macOS VMs running" in failed.error
    assert [op.status for op in by_node[node1.name]] == ["succeeded", "succeeded"]
    # The re-polls saw them start.
    wait_for(lambda: VM.objects.filter(pk__in=[op.vm_id for op in ops if op.status == "succeeded"],
                                       state="running").count() == 3, timeout=10, message="the VMs to run")
    live = client.get(url, headers={"HX-Request": "true"})
    assert live.status_code == 286
    body = live.content.decode()
    assert 'data-count="succeeded">3 succeeded' in body and 'data-count="failed">1 failed' in body
    assert "at most 2 macOS VMs running" in body


def test_a_batch_cancelled_while_it_runs(celery_worker: Any, sim_fleet: Any, register_sim: Any, as_role: Any,
                                         wait_for: Any) -> None:
    # Every call to the nodes takes 150 ms, so the worker's 4 threads are busy while the rest wait.
    nodes = _fleet(sim_fleet, register_sim, running={}, latency_ms=150)
    chosen = _vms(nodes[0]) + _vms(nodes[1])
    client = as_role("operator")
    response = client.post("/batches/new/", {"action": "snapshot", "vm": [vm.pk for vm in chosen],
                                             "confirmed": "1", "snapshot_name": "nightly"})
    assert response.status_code == 302
    batch = Batch.objects.get()
    assert client.post(reverse("batch-cancel", args=[batch.pk])).status_code == 302
    wait_for(lambda: _settled(batch), timeout=40, message="the batch's running operations to finish")
    ops = _ops(batch)
    statuses = [op.status for op in ops]
    cancelled = [op for op in ops if op.status == "cancelled"]
    ran = [op for op in ops if op.status != "cancelled"]
    # At most the worker's 4 threads had claimed one when the cancel came; those finished.
    assert len(cancelled) >= len(ops) - 4 and len(cancelled) > 0, statuses
    assert all(op.status == "succeeded" for op in ran), [(op.status, op.error) for op in ran]
    assert all(op.started_at is None for op in cancelled)
    # What was cancelled never reached a node: each VM that ran has its snapshot, the others none.
    for op in ops:
        vm = VM.objects.get(pk=op.vm_id)
        from fleetui.nodes.client import client_for

        with client_for(vm.node) as node_client:
            names = [s.name for s in node_client.list_snapshots(vm.remote_id)]
        assert names == (["nightly"] if op.status == "succeeded" else []), (op.status, names)
    page = client.get(reverse("batch-detail", args=[batch.pk])).content.decode()
    assert f'data-count="cancelled">{len(cancelled)} cancelled' in page and 'id="batch-cancelled"' in page


def test_a_fan_out_command_and_its_results(celery_worker: Any, sim_fleet: Any, register_sim: Any, as_role: Any,
                                           wait_for: Any, caplog: Any) -> None:
    caplog.set_level(logging.DEBUG)
    # VMs sorted by name on each node: build-01, ci-runner-01, dev-01. The first two run.
    node0, node1 = _fleet(sim_fleet, register_sim, running={0: [0, 1], 1: [0, 1]})
    chosen = _vms(node0) + _vms(node1)
    assert [vm.name for vm in chosen] == ["build-01", "ci-runner-01", "dev-01"] * 2
    client = as_role("operator")
    review = client.post("/batches/new/", {"action": "exec", "vm": [vm.pk for vm in chosen]})
    assert "4</strong> of 6 VMs" in review.content.decode()
    response = client.post("/batches/new/", {
        "action": "exec", "vm": [vm.pk for vm in chosen], "confirmed": "1",
        "command": "echo done >&2; hostname | grep build", "ssh_user": "ci", "ssh_password": PASSWORD,
        "timeout": "20"})
    assert response.status_code == 302
    batch = Batch.objects.get()
    conn = redis.Redis.from_url(settings.REDIS_URL)
    found, _ = redis_leaks(conn, {"ssh password": PASSWORD})  # queued messages and the secret store
    assert found == []
    wait_for(lambda: _settled(batch), timeout=30, message="the command to finish on every VM")
    ops = _ops(batch)
    assert [(op.vm_name, op.status) for op in ops] == [("build-01", "succeeded"), ("ci-runner-01", "succeeded")] * 2
    for op in ops:
        assert op.params["ssh_user"] == "ci" and op.params["secrets_given"] == ["password"]
        expected = 0 if op.vm_name == "build-01" else 1
        assert op.result["exit_code"] == expected and op.result["stderr"] == "done\n"
    skipped = BatchItem.objects.filter(batch=batch, operation__isnull=True)
    assert sorted(i.skipped_reason for i in skipped) == ["Commands run only on a running VM (it is stopped)."] * 2

    url = reverse("batch-detail", args=[batch.pk])
    page = client.get(url).content.decode()
    assert page.count('data-exit="0"') == 2 and page.count('data-exit="1"') == 2
    assert page.count("build-01.local") == 2
    only = client.get(url + "?only=failures").content.decode()
    assert only.count('data-vm="ci-runner-01"') == 2 and 'data-vm="build-01"' not in only

    export = reverse("batch-export", args=[batch.pk])
    rows = list(csv.DictReader(io.StringIO(b"".join(client.get(export + "?format=csv").streaming_content).decode())))
    assert [(r["vm"], r["node"], r["status"], r["exit_code"], r["stdout"]) for r in rows] == [
        ("build-01", node0.name, "succeeded", "0", "build-01.local\n"),
        ("ci-runner-01", node0.name, "succeeded", "1", ""),
        ("dev-01", node0.name, "skipped", "", ""),
        ("build-01", node1.name, "succeeded", "0", "build-01.local\n"),
        ("ci-runner-01", node1.name, "succeeded", "1", ""),
        ("dev-01", node1.name, "skipped", "", ""),
    ]
    assert all(float(r["duration_seconds"]) >= 0 for r in rows if r["status"] == "succeeded")
    data = json.loads(b"".join(client.get(export + "?format=json&only=failures").streaming_content))
    assert [(r["vm"], r["node"], r["exit_code"]) for r in data["results"]] == [
        ("ci-runner-01", node0.name, 1), ("ci-runner-01", node1.name, 1)]
    assert data["params"] == {"command": "echo done >&2; hostname | grep build", "ssh_user": "ci", "timeout": 20}

    # The password, used once per VM, is nowhere in clear.
    secrets = {"ssh password": PASSWORD}
    found, rows_read = database_leaks(secrets)
    assert found == [] and rows_read > 0
    found, _ = redis_leaks(conn, secrets)
    assert found == []
    assert leaks([celery_worker.log()], secrets, "worker log") == []
    assert leaks([caplog.text], secrets, "web log") == []
    for text in (page, only, review.content.decode(), client.get("/batches/").content.decode()):
        assert PASSWORD not in text
