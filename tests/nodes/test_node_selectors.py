"""The node selectors read what real polls of fleetsim wrote: totals, counts, history, a node's page."""

from __future__ import annotations

from typing import Any

import pytest
from ciderstack import FleetClient
from fleetsim import SimFleet

from fleetui.nodes import selectors
from fleetui.nodes.models import Health, Node
from fleetui.nodes.services import node_poll

pytestmark = pytest.mark.django_db


def test_fleet_overview_totals_match_the_simulated_fleet(
    fleet: SimFleet, registered: list[Node], django_assert_max_num_queries: Any
) -> None:
    for node in registered:
        assert node_poll(node_id=node.pk).ok
    fleet.nodes[2].set_faults("down")
    node_poll(node_id=registered[2].pk)

    with django_assert_max_num_queries(6):
        overview = selectors.fleet_overview()

    totals = overview["totals"]
    assert totals.nodes_total == 3 and totals.nodes_online == 2
    assert totals.vms_total == 12  # the down node's VMs are still known
    running = sum(1 for sim in fleet.nodes for v in sim.state.vms.values() if v.state == "running")
    assert totals.vms_running == running
    online = [n for n in overview["nodes"] if n.health_state == Health.ONLINE]
    assert totals.memory_total_gb == sum(n.memory_total_gb for n in online)
    assert all(len(n.cpu_history) == 1 for n in overview["nodes"])


def test_node_detail_shows_its_vms_tasks_images_and_history(fleet: SimFleet, registered: list[Node]) -> None:
    node, sim = registered[1], fleet.nodes[1]
    node_poll(node_id=node.pk)
    with FleetClient(sim.host, api_token=sim.api_token, port=sim.port) as client:
        client.pull_oci_image("ghcr.io/example/detail:1")
    node_poll(node_id=node.pk)

    detail = selectors.node_detail(node.pk)

    assert detail["node"].vm_total == 4 and detail["node"].active_task_count == 1
    assert [t.type for t in detail["tasks"]] == ["oci_pull"]
    assert {vm.remote_id for vm in detail["vms"]} == set(sim.state.vms)
    assert len(detail["oci_images"]) == 2  # the pull is still running: not among them yet
    assert detail["series"]["count"] == 2
