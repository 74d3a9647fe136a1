"""Unpair and cleanup handlers against fleetsim over real HTTP, with the dashboard's DB filled by real polls."""

from __future__ import annotations

import time

import pytest
from ciderstack import FleetClient
from ciderstack.errors import FleetError

from fleetui.access.models import NodeAPIToken
from fleetui.activity.models import Operation
from fleetui.activity.registry import get_kind
from fleetui.fleet.selectors import cleanup_preview
from fleetui.nodes.client import client_for
from fleetui.nodes.services import node_poll
from fleetui.vms.models import VM
from fleetui.vms.services import vm_refresh_details

pytestmark = pytest.mark.django_db


def run(kind: str, node, user, params=None, secrets=None) -> dict:
    op = Operation.objects.create(kind=kind, node=node, user=user, username=user.username, node_name=node.name,
                                  params=params or {})
    with client_for(node) as client:
        return get_kind(kind).handler(op, client, secrets or {})


@pytest.fixture()
def paired(sim_fleet, register_node, users):
    sim = sim_fleet(nodes=1, vms_per_node=1).nodes[0]
    node = register_node(sim)
    run("node.pair", node, users["admin"], secrets={"code": sim.pairing_code})
    node.refresh_from_db()
    assert node.is_paired
    return sim, node


def test_unpair_tells_the_node_and_forgets_here(paired, users):
    sim, node = paired
    result = run("node.unpair", node, users["admin"], params={"forget": False})
    node.refresh_from_db()
    assert result["unpaired_on_node"] is True
    assert sim.state.trusted_nodes == {}
    assert not node.is_paired and not node.pairing_private_key_enc and node.paired_at is None
    assert not NodeAPIToken.objects.filter(node=node).exists()


def test_unpair_refused_by_the_node_keeps_the_pairing_unless_told_to_forget(paired, users):
    sim, node = paired
    sim.state.trusted_nodes.clear()  # the node's owner removed the pairing on the Mac itself
    with pytest.raises(FleetError):
        run("node.unpair", node, users["admin"], params={"forget": False})
    node.refresh_from_db()
    assert node.is_paired
    result = run("node.unpair", node, users["admin"], params={"forget": True})
    node.refresh_from_db()
    assert not node.is_paired and result["unpaired_on_node"] is False and "Forgotten here only" in result["message"]


def test_cleanup_dry_run_matches_the_run(sim_fleet, register_node, users):
    sim = sim_fleet(nodes=1, vms_per_node=5).nodes[0]
    node = register_node(sim)
    with FleetClient(sim.host, api_token=sim.api_token, port=sim.port, timeout=5) as admin:
        vms = admin.list_vms()
        admin.update_vm_settings(vms[0].id, intent="disposable", ttl_seconds=1)
        admin.update_vm_settings(vms[1].id, intent="persistent", ttl_seconds=1)
        admin.update_vm_settings(vms[2].id, intent="ci", ttl_seconds=1)
        admin.update_vm_settings(vms[3].id, intent="disposable", ttl_seconds=3600)
        admin.update_vm_settings(vms[4].id, intent="persistent")
    time.sleep(1.1)
    node_poll(node_id=node.pk, force=True)
    for vm in VM.objects.filter(node=node):
        assert vm_refresh_details(vm_id=vm.pk) == ""

    normal = cleanup_preview(node, force=False)
    forced = cleanup_preview(node, force=True)
    assert [v.remote_id for v in normal.doomed] == [vms[0].id]
    assert {v.remote_id for v in forced.doomed} == {vms[0].id, vms[1].id, vms[2].id}
    assert normal.unknown == []

    result = run("node.cleanup", node, users["admin"], params={"force": False, "expected_count": 1})
    assert result["cleaned_count"] == 1 == result["expected_count"]
    assert vms[0].id not in sim.state.vms and vms[1].id in sim.state.vms

    node_poll(node_id=node.pk, force=True)
    assert VM.objects.get(node=node, remote_id=vms[0].id).is_gone
    forced = cleanup_preview(node, force=True)
    assert {v.remote_id for v in forced.doomed} == {vms[1].id, vms[2].id}
    result = run("node.cleanup", node, users["admin"], params={"force": True, "expected_count": 2})
    assert result["cleaned_count"] == 2
    assert set(sim.state.vms) == {vms[3].id, vms[4].id}
