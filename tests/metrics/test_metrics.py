"""GET /metrics: bearer token from FLEETUI_METRICS_TOKEN (401 otherwise, never a login redirect), the
figures read from what real polls of fleetsim wrote, and a fixed number of queries per scrape."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from fleetui.activity.models import Operation, OperationStatus
from fleetui.images.models import NodeTask, TaskStatus
from fleetui.nodes.models import Node
from fleetui.nodes.services import node_poll
from fleetui.vms.models import VM, VMState

pytestmark = pytest.mark.django_db

TOKEN = "metrics-token-for-tests-0123456789"


@pytest.fixture(autouse=True)
def _token(settings: Any) -> None:
    settings.METRICS_TOKEN = TOKEN


def scrape(client: Client, token: str = TOKEN) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain; version=")
    samples = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: dict, name: str, **labels: str) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


@pytest.mark.parametrize("header", [None, "", "Bearer", "Bearer wrong-token", f"Basic {TOKEN}", f"bearer {TOKEN}x",
                                    f"Token {TOKEN}"])
def test_it_answers_401_without_the_right_bearer_token(client: Client, header: str | None) -> None:
    extra = {} if header is None else {"HTTP_AUTHORIZATION": header}
    response = client.get("/metrics", **extra)
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert b"fleetui_" not in response.content


def test_it_is_closed_when_no_token_is_configured(client: Client, settings: Any) -> None:
    settings.METRICS_TOKEN = ""
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer ").status_code == 401


def test_it_needs_no_login_and_only_answers_get(client: Client) -> None:
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 200  # not a redirect to the login page
    assert client.post("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").status_code == 405
    assert "no-cache" in response["Cache-Control"] or "max-age=0" in response["Cache-Control"]


def test_it_reports_what_the_polls_saw(client: Client, sim_fleet: Callable[..., Any],
                                       register_sim: Callable[..., Any]) -> None:
    fleet = sim_fleet(nodes=2, vms_per_node=3)
    up, down = (register_sim(sim) for sim in fleet.nodes)
    assert node_poll(node_id=up.pk).ok
    fleet.nodes[1].set_faults(mode="down")
    assert not node_poll(node_id=down.pk).ok
    up.refresh_from_db()
    down.refresh_from_db()
    now = timezone.now()
    Operation.objects.create(kind="vm.start", status=OperationStatus.SUCCEEDED, node=up, finished_at=now)
    Operation.objects.create(kind="vm.start", status=OperationStatus.FAILED, node=up, finished_at=now)
    Operation.objects.create(kind="vm.start", status=OperationStatus.FAILED, node=up, finished_at=now)
    Operation.objects.create(kind="vm.stop", status=OperationStatus.RUNNING, node=up)
    NodeTask.objects.create(node=up, remote_id="x", status=TaskStatus.FAILED, last_seen_at=now)

    samples = scrape(client)
    a = {"node": up.name, "node_id": str(up.pk)}
    b = {"node": down.name, "node_id": str(down.pk)}
    assert value(samples, "fleetui_node_up", **a) == 1.0
    assert value(samples, "fleetui_node_up", **b) == 0.0
    assert value(samples, "fleetui_node_health", **a, health="online") == 1.0
    assert value(samples, "fleetui_node_health", **b, health="online") == 0.0
    assert value(samples, "fleetui_node_poll_consecutive_failures", **b) == 1.0
    assert value(samples, "fleetui_node_last_poll_duration_seconds", **a) == up.last_poll_duration_ms / 1000
    assert 0 <= value(samples, "fleetui_node_last_poll_age_seconds", **a) < 60
    assert value(samples, "fleetui_node_cpu_usage_percent", **a) == up.cpu_usage_percent
    assert value(samples, "fleetui_node_memory_total_gigabytes", **a) == up.memory_total_gb
    assert value(samples, "fleetui_node_disk_used_gigabytes", **a) == up.disk_used_gb
    for state in VMState.values:
        expected = VM.objects.filter(node=up, state=state, gone_at__isnull=True).count()
        assert value(samples, "fleetui_vms", **a, state=state) == expected
    assert sum(value(samples, "fleetui_vms", **a, state=s) for s in VMState.values) == 3
    assert value(samples, "fleetui_node_tasks", **a, status="failed") == 1.0
    assert value(samples, "fleetui_operations_total", kind="vm.start", outcome="failed") == 2.0
    assert value(samples, "fleetui_operations_total", kind="vm.start", outcome="succeeded") == 1.0
    assert value(samples, "fleetui_operations_in_flight", kind="vm.stop", status="running") == 1.0
    assert value(samples, "fleetui_alert_incidents_open", kind="node_offline") == 0.0


def test_a_scrape_costs_five_queries_however_big_the_fleet(client: Client) -> None:
    def queries() -> int:
        with CaptureQueriesContext(connection) as ctx:
            scrape(client)
        return len(ctx.captured_queries)

    def add_node(index: int) -> None:
        node = Node.objects.create(name=f"n{index}", host=f"10.1.0.{index}", last_success_at=timezone.now())
        now = timezone.now()
        for v in range(3):
            VM.objects.create(node=node, remote_id=f"v{v}", name=f"vm{index}-{v}", state=VMState.RUNNING,
                              last_seen_at=now, changed_at=now)
        NodeTask.objects.create(node=node, remote_id="t", status=TaskStatus.RUNNING, last_seen_at=now)
        Operation.objects.create(kind=f"kind.{index}", node=node, status=OperationStatus.SUCCEEDED)

    add_node(1)
    # 1 nodes, 2 VMs by node and state, 3 tasks by node and status, 4 operations by kind and status,
    # 5 open incidents by kind. No session or user query: the token is the only credential.
    assert queries() == 5
    for index in range(2, 12):
        add_node(index)
    assert queries() == 5


def test_names_are_escaped_in_labels(client: Client) -> None:
    Node.objects.create(name='evil"} 1\nfleetui_fake 9', host="10.9.9.9")
    samples = scrape(client)
    assert ("fleetui_fake", ()) not in samples
    assert any(dict(labels).get("node") == 'evil"} 1\nfleetui_fake 9' for (name, labels) in samples
               if name == "fleetui_node_up")
