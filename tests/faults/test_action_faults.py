"""Each node fault during an action, for every kind in the operation registry: the Operation ends
`failed` with a plain message (no secret in it), nothing is raised out of the worker's code, nothing
is logged as an unexpected error, and the operation and activity pages answer 200."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest
from ciderstack import FleetClient
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse
from django.utils.html import escape
from fault_cases import FAULTS
from fleetsim import SimFleet

from fleetui.activity.models import Operation, OperationStatus
from fleetui.activity.registry import registered_kinds
from fleetui.activity.services import operation_create, operation_run
from fleetui.nodes.models import Node
from fleetui.nodes.services import node_poll
from fleetui.vms.models import VM, Snapshot
from fleetui.vms.services import vm_refresh_details

pytestmark = pytest.mark.django_db

REGISTRY_PASSWORD = "fault-registry-pass-7c1e"
SSH_PASSWORD = "fault-ssh-pass-91ad"


# What an Operation's error starts with, per fault (node.pair has its own words for a 403).
ACTION_ERRORS = {
    "down": "cannot reach the node: connection refused",
    "connect_timeout": "Timed out connecting: the node did not accept a connection within",
    "hang": "Timed out: the node did not answer within",
    "http_500": "the node answered HTTP 500",
    "http_502": "the node answered HTTP 502",
    "http_503": "the node answered HTTP 503",
    "http_403": "the node rejected the token",
    "garbage": "the node's answer could not be read",
    "wrong_shape": "the node's answer could not be read",
    "truncated": "cannot reach the node: ",
    "huge": "the node's answer could not be read",
}
PAIRING_403 = "the node refused the pairing"

# Kinds that talk to the node through the pairing (the token methods refuse API tokens).
NEEDS_PAIRING = {"token.list", "token.generate", "token.revoke", "node.unpair"}


def kind_inputs(kind: str, vm: VM, sim: Any) -> tuple[dict[str, Any], dict[str, str]] | None:
    """(params, secrets) a user could submit for `kind`; None for a kind this table does not know."""
    snapshot = Snapshot.objects.filter(vm=vm).first()
    table: dict[str, tuple[dict[str, Any], dict[str, str]]] = {
        "vm.start": ({}, {}), "vm.stop": ({}, {}), "vm.suspend": ({}, {}), "vm.resume": ({}, {}),
        "vm.start_recovery": ({}, {}),
        "snapshot.create": ({"name": "before-fault", "description": "x"}, {}),
        "snapshot.restore": ({"snapshot_id": snapshot.remote_id if snapshot else ""}, {}),
        "snapshot.delete": ({"snapshot_id": snapshot.remote_id if snapshot else ""}, {}),
        "image.pull": ({"reference": "ghcr.io/acme/base:15"}, {"username": "bot", "password": REGISTRY_PASSWORD}),
        "template.create": ({"name": "tpl-fault", "description": "", "category": "custom", "keep_original": True},
                            {}),
        "template.delete": ({"template_id": "tpl-1", "name": "tpl"}, {}),
        "template.read": ({"template_id": "tpl-1"}, {}),
        "folder.add": ({"name": "src", "host_path": "/Users/ci/src", "read_only": True}, {}),
        "folder.remove": ({"name": "src"}, {}),
        "folder.enable": ({"name": "src", "enabled": False}, {}),
        "ipsw.download": ({"url": "https://updates.example.com/Universal_15.3.ipsw", "name": "macOS 15.3",
                           "version": "15.3"}, {}),
        "ipsw.info": ({"path": "/ipsw/UniversalMac_15.3.ipsw"}, {}),
        "image.push": ({"image_name": "ghcr.io/acme/pushed:1", "insecure": False}, {}),
        "node.pair": ({}, {"code": sim.pairing_code}),
        "token.list": ({}, {}),
        "token.generate": ({"name": "ci", "permission": "readOnly", "adopt": False}, {}),
        "token.revoke": ({"id": "token-1", "name": "ci"}, {}),
        "node.unpair": ({"forget": False}, {}),
        "node.cleanup": ({"force": False}, {}),
        "vm.create": ({"name": "fault-vm", "cpu_count": 2, "memory_mb": 4096, "disk_gb": 40,
                       "oci_image": "ghcr.io/acme/base:15"}, {}),
        "vm.clone": ({"new_name": "fault-clone"}, {}),
        "vm.rename": ({"new_name": "fault-renamed"}, {}),
        "vm.delete": ({}, {}),
        "vm.settings": ({"changes": {"cpu_count": 2}}, {}),
        "vm.lease_set": ({"ttl_seconds": 3600}, {}),
        "vm.lease_extend": ({"extend_seconds": 600}, {}),
        "vm.lease_clear": ({}, {}),
        "vm.settings_refresh": ({}, {}),
        "vm.exec": ({"command": "uname -a", "ssh_user": "cideradmin", "timeout": 1}, {"password": SSH_PASSWORD}),
    }
    return table.get(kind)


@pytest.fixture()
def fast_sdk_timeouts(monkeypatch: pytest.MonkeyPatch) -> None:
    # Two SDK timeouts are not ours to set per call: pairing uses the SDK's defaults (30 s read) and
    # exec waits for the command's timeout plus a 60 s margin. Shortened here so a hanging node costs
    # the test a second, not a minute; the mapping of the timeout to an outcome is what is tested.
    monkeypatch.setattr(FleetClient, "DEFAULT_TIMEOUT", 0.3)
    monkeypatch.setattr(FleetClient, "DEFAULT_CONNECT_TIMEOUT", 0.3)
    monkeypatch.setattr(FleetClient, "EXEC_TIMEOUT_MARGIN", 0)


@pytest.fixture(scope="module")
def sim_snapshot(module_fleet: SimFleet) -> str:
    """A real snapshot on the first VM of node 1 (made once per module), so snapshot kinds validate."""
    sim = module_fleet.nodes[1]
    with FleetClient(sim.host, api_token=sim.api_token, port=sim.port, timeout=5) as client:
        vm = client.list_vms()[0]
        existing = client.list_snapshots(vm.id)
        return existing[0].id if existing else client.create_snapshot(vm.id, "baseline").id


@pytest.mark.parametrize("fault", FAULTS)
def test_every_action_kind_fails_plainly_under_each_node_fault(
    fleet: SimFleet, register_sim: Callable[..., Node], apply_fault: Callable[..., None], viewer_client: Client,
    sim_snapshot: str, fast_sdk_timeouts: None, settings: Any, caplog: pytest.LogCaptureFixture, fault: str,
) -> None:
    sim = fleet.nodes[1]
    node = register_sim(sim)
    assert node_poll(node_id=node.pk).ok
    user = User.objects.create_user("fault-operator")
    # The VM that holds the snapshot, with its snapshots recorded (as the VM page would have them).
    vm = next(v for v in VM.objects.filter(node=node) if v.remote_id in _vms_with(sim, sim_snapshot))
    assert vm_refresh_details(vm_id=vm.pk) == ""
    # The token methods need the pairing: pair for real before the node starts failing.
    pairing = operation_create(kind="node.pair", user=user, node=node, secrets={"code": sim.pairing_code})
    operation_run(operation_id=str(pairing.pk))
    node.refresh_from_db()
    assert node.is_paired, Operation.objects.get(pk=pairing.pk).error

    kinds = registered_kinds()
    unknown = [k for k in kinds if kind_inputs(k, vm, sim) is None]
    assert not unknown, f"new operation kinds with no inputs in this test: {unknown} (add them to kind_inputs)"

    # From here on a hanging or silent node costs 0.1 s per call (35 kinds, each with its re-poll).
    settings.NODE_CONNECT_TIMEOUT = settings.NODE_READ_TIMEOUT = settings.NODE_ACTION_TIMEOUT = 0.1
    apply_fault(sim, node, fault)
    wrong: list[str] = []
    ops: list[Operation] = []
    with caplog.at_level(logging.WARNING):
        for kind, spec in sorted(kinds.items()):
            params, secrets = kind_inputs(kind, vm, sim)  # type: ignore[misc]
            if kind == "node.pair":
                # Pairing again needs the pairing gone here (the node is still paired on its side).
                Node.objects.filter(pk=node.pk).update(paired_node_id_enc="", pairing_private_key_enc="")
            elif kind in NEEDS_PAIRING:
                Node.objects.filter(pk=node.pk).update(
                    paired_node_id_enc=node.paired_node_id_enc, pairing_private_key_enc=node.pairing_private_key_enc)
            target = Node.objects.get(pk=node.pk)
            op = operation_create(kind=kind, user=user, node=target, vm=vm if spec.needs_vm else None,
                                  params=params, secrets=secrets)
            assert operation_run(operation_id=str(op.pk)) == "ran"
            op.refresh_from_db()
            ops.append(op)
            expected = PAIRING_403 if (kind == "node.pair" and fault == "http_403") else ACTION_ERRORS[fault]
            if op.status != OperationStatus.FAILED or not op.error.startswith(expected) or op.finished_at is None:
                wrong.append(f"{kind}: {op.status} {op.error!r}")
            for secret in (REGISTRY_PASSWORD, SSH_PASSWORD, sim.api_token, sim.pairing_code):
                if secret in op.error or secret in str(op.result):
                    wrong.append(f"{kind}: a secret in the outcome")
    assert not wrong, f"{len(wrong)} of {len(kinds)} kinds without the defined outcome under {fault}:\n" + "\n".join(
        wrong)
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert not errors, errors

    # The pages answer, and show the failure in the operation's own words.
    for op in ops:
        response = viewer_client.get(reverse("operation-detail", args=[op.pk]))
        assert response.status_code == 200, f"{op.kind}: {response.status_code}"
        assert escape(op.error[:30]) in response.content.decode(), op.kind
    for url in (reverse("activity"), reverse("node-detail", args=[node.pk]), reverse("vm-detail", args=[vm.pk])):
        assert viewer_client.get(url).status_code == 200, url


def _vms_with(sim: Any, snapshot_id: str) -> set[str]:
    with FleetClient(sim.host, api_token=sim.api_token, port=sim.port, timeout=5) as client:
        return {vm.id for vm in client.list_vms() if any(s.id == snapshot_id for s in client.list_snapshots(vm.id))}
