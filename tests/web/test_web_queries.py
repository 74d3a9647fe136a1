"""Query counts pinned on the busiest pages, and shown not to grow with the number of rows."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from fleetui.activity.models import FleetEvent, Operation
from fleetui.nodes.models import Node
from fleetui.vms.models import VM

# Every logged-in page starts with these three:
#   1. the session, 2. the user, 3. the user's groups (their role, once per request)
REQUEST_QUERIES = 3


def _count(client: Client, url: str, **headers: str) -> int:
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url, headers=headers)
    assert response.status_code == 200, url
    return len(ctx)


def _grow(node_factory: Callable[..., Node], vm_factory: Callable[..., VM], nodes: int, vms_per_node: int) -> None:
    for i in range(nodes):
        node = node_factory(f"extra-{i:02d}", samples=20)
        for j in range(vms_per_node):
            vm_factory(node, f"vm-{i:02d}-{j:02d}", "running" if j % 2 else "stopped")
        Operation.objects.create(kind="vm.start", node=node, node_name=node.name, username="x")
        FleetEvent.objects.create(source_node=node, remote_id=f"e{i}", event_type="vm_started",
                                  timestamp=node.stats_at)


def test_it_reads_the_fleet_overview_in_fixed_queries(as_role: Callable[[str], Client], fleet: Any,
                                                      node_factory: Any, vm_factory: Any) -> None:
    client = as_role("viewer")
    # 4. nodes with their VM counts and active-task counts (one annotated SELECT)
    # 5. the last 30 minutes of stats samples of the nodes shown (one SELECT)
    # 6. the 8 most recent operations
    # 7. the 8 most recent fleet events
    expected = REQUEST_QUERIES + 4
    assert _count(client, reverse("fleet-overview")) == expected
    # The live partial: 4. the change stamp of the shared copy (node count and edits, newest
    # operation), then the same four when it is rendered; while shared, the stamp alone.
    assert _count(client, reverse("fleet-overview"), HX_Request="true") == expected + 1
    assert _count(client, reverse("fleet-overview"), HX_Request="true") == REQUEST_QUERIES + 1
    _grow(node_factory, vm_factory, nodes=8, vms_per_node=6)
    assert _count(client, reverse("fleet-overview")) == expected
    assert _count(client, reverse("fleet-overview"), HX_Request="true") == expected + 1  # new nodes: rendered
    page = client.get(reverse("fleet-overview")).content.decode()
    assert page.count('class="card node-card') == 10


def test_it_reads_a_page_of_vms_in_fixed_queries(as_role: Callable[[str], Client], fleet: Any,
                                                 node_factory: Any, vm_factory: Any) -> None:
    client = as_role("viewer")
    # 4. the node choices of the filter form
    # 5. COUNT of the matching VMs (for the pager)
    # 6. one page of VMs joined with their node (select_related)
    expected = REQUEST_QUERIES + 3
    url = reverse("vm-list") + "?sort=-node"
    assert _count(client, url) == expected
    _grow(node_factory, vm_factory, nodes=6, vms_per_node=12)
    assert _count(client, url) == expected
    assert _count(client, url + "&page=2", HX_Request="true") == expected
    assert _count(client, reverse("vm-list") + "?q=vm-0&state=running") == expected
    # An operator's rows carry their lifecycle buttons: whether an operation is unfinished comes in the
    # same SELECT (an EXISTS), so the count stays the same.
    operator = as_role("operator")
    assert _count(operator, url) == expected
    assert b'data-action="stop"' in operator.get(url).content


def test_it_reads_the_node_page_in_fixed_queries(as_role: Callable[[str], Client], fleet: Any,
                                                 vm_factory: Any) -> None:
    client = as_role("viewer")
    node = fleet.nodes[0]
    # 4. the node with counts, 5. its chart samples, 6. its VMs, 7. active tasks, 8. recent finished tasks,
    # 9. OCI images, 10. IPSWs, 11. recent operations
    expected = REQUEST_QUERIES + 8
    url = reverse("node-detail", args=[node.pk])
    assert _count(client, url) == expected
    for j in range(15):
        vm_factory(node, f"more-{j:02d}")
    assert _count(client, url) == expected
