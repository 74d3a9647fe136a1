"""Every SDK method against fleetsim over real HTTP, and the error paths a real node can show.

The happy-path scenario runs twice: with our client, and with the published 0.1.1 client
(proof that fleetsim speaks the protocol the way the real client expects, and that ours
behaves the same). The fault tests run with ours only: they check our error classes.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any

import ciderstack
import pytest
from ciderstack import FleetClient, FleetError
from ciderstack.errors import (
    FleetAuthError,
    FleetNodeError,
    FleetProtocolError,
    FleetTimeoutError,
    FleetUnavailableError,
)
from ciderstack.types import enum_value
from fleetsim import SimFleet, SimNode

FAST = {"transition_seconds": 0.05, "task_seconds": 0.3}


def wait_until(predicate: Callable[[], Any], timeout: float = 5.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(0.02)


def _state(client: Any, vm_id: str) -> str:
    vm = client.get_vm(vm_id)
    return enum_value(vm.state) if vm else "gone"


@pytest.fixture(params=["ours", "published"])
def flavour(request: pytest.FixtureRequest, published: ModuleType) -> ModuleType:
    """The package under test: our `ciderstack` or the published one."""
    return ciderstack if request.param == "ours" else published


def test_every_method_against_fleetsim(flavour: ModuleType) -> None:
    Client, Error = flavour.FleetClient, flavour.FleetError  # noqa: N806 - they are classes
    with SimFleet(nodes=2, vms_per_node=4, seed=7, **FAST) as fleet:
        manager, worker = fleet.nodes
        client = Client(worker.host, api_token=worker.api_token, port=worker.port, timeout=5)

        # Node information
        info = client.get_node_info()
        assert (info.name, info.node_id, info.port) == (worker.name, worker.node_id, worker.port)
        assert info.machine_model.startswith("Mac") and info.cpu_cores > 0
        vms = client.list_vms()
        assert len(vms) == 4 and all(isinstance(vm.state, flavour.VMState) for vm in vms)
        stats = client.get_node_stats()
        assert stats.total_vm_count == 4 and stats.memory_total_gb > 0
        assert client.get_vm(vms[0].id) == vms[0] and client.get_vm("nope") is None

        # Lifecycle: stop whatever runs, then start / suspend / resume / stop one VM
        for vm in vms:
            if enum_value(vm.state) == "running":
                assert client.stop_vm(vm.id) is True
        for vm in vms:
            wait_until(lambda vm=vm: _state(client, vm.id) == "stopped")
        vm_id = vms[0].id
        assert client.start_vm(vm_id) is True
        wait_until(lambda: _state(client, vm_id) == "running")
        result = client.exec_command(vm_id, "echo hello", ssh_user="admin", ssh_password="pw", timeout=10)
        assert (result.success, result.exit_code, result.stdout) == (True, 0, "hello\n")
        failed = client.exec_command(vm_id, "exit 3", timeout=10)
        assert (failed.success, failed.exit_code) == (False, 3)
        assert client.suspend_vm(vm_id) is True
        wait_until(lambda: _state(client, vm_id) == "paused")
        assert client.start_vm(vm_id) is True
        wait_until(lambda: _state(client, vm_id) == "running")
        assert client.stop_vm(vm_id) is True
        wait_until(lambda: _state(client, vm_id) == "stopped")
        refused = client.exec_command(vm_id, "echo hi", timeout=10)
        assert refused.success is False and "not running" in (refused.stderr or "")
        assert client.start_vm_recovery(vms[1].id) is True
        wait_until(lambda: _state(client, vms[1].id) == "running")
        client.stop_vm(vms[1].id)
        wait_until(lambda: _state(client, vms[1].id) == "stopped")

        # Clone, rename, delete
        clone = client.clone_vm(vm_id, "clone-a")
        assert clone.name == "clone-a" and clone.id != vm_id
        assert client.rename_vm(clone.id, "clone-b") is True
        assert client.get_vm(clone.id).name == "clone-b"
        assert client.delete_vm(clone.id) is True
        assert client.get_vm(clone.id) is None
        with pytest.raises(Error, match="VM not found"):
            client.start_vm(clone.id)

        # Settings
        settings = client.get_vm_settings(vm_id)
        assert isinstance(settings, dict) and "cpuCount" in settings
        assert client.update_vm_settings(vm_id, cpu_count=2, memory_size=4096, intent="disposable",
                                         ttl_seconds=3600) is True
        settings = client.get_vm_settings(vm_id)
        assert (settings["cpuCount"], settings["memorySize"], settings["intent"]) == (2, 4096, "disposable")
        assert client.update_vm_settings(vm_id, ttl_seconds=-1, intent="persistent") is True

        # Snapshots
        snap = client.create_snapshot(vm_id, "pre-update", "Before system update")
        assert snap.name == "pre-update" and snap.created_at.tzinfo is not None
        assert [s.id for s in client.list_snapshots(vm_id)] == [snap.id]
        assert client.restore_snapshot(vm_id, snap.id) is True
        assert client.delete_snapshot(vm_id, snap.id) is True
        assert client.list_snapshots(vm_id) == []

        # Templates
        before = client.list_templates()
        template = client.create_template_from_vm(vm_id, "Base T", description="d", category="base",
                                                  keep_original_vm=True)
        assert template.name == "Base T" and template.category == "base"
        assert len(client.list_templates()) == len(before) + 1
        assert client.get_template(template.id).id == template.id
        assert client.get_template_by_name("Base T").id == template.id
        assert client.delete_template(template.id) is True
        assert client.get_template(template.id) is None

        # Shared folders
        assert client.add_shared_folder(vm_id, "src", "/Users/dev/src", read_only=True, mount_tag="srctag") is True
        folders = client.list_shared_folders(vm_id)
        assert [(f["name"], f["readOnly"], f["isEnabled"]) for f in folders] == [("src", True, True)]
        assert client.set_shared_folder_enabled(vm_id, "src", False) is True
        assert client.list_shared_folders(vm_id)[0]["isEnabled"] is False
        assert client.remove_shared_folder(vm_id, "src") is True
        assert client.list_shared_folders(vm_id) == []

        # Images and tasks
        ipsws = client.list_ipsws()
        assert ipsws and client.get_ipsw_info(ipsws[0]["path"])["version"] == ipsws[0]["version"]
        assert isinstance(client.list_oci_images(), list)
        assert client.download_ipsw("https://updates.example.com/x/UniversalMac_15.2.ipsw", "macOS 15.2",
                                    "15.2") is True
        assert client.pull_oci_image("ghcr.io/myorg/private:v1", username="u", password="secret") is True
        push_task = client.push_image(vm_id, "ghcr.io/myorg/my-vm:latest")
        new_vm_id = client.create_vm("made-by-sdk", cpu_count=2, memory_mb=4096, disk_gb=40,
                                     oci_image="ghcr.io/myorg/macos-base:latest")
        running = client.get_tasks()
        assert push_task in {t.id for t in running} and len(running) >= 3
        done = wait_until(lambda: [t for t in client.get_tasks(include_completed=True)
                                   if enum_value(t.status) == "completed"] if not client.get_tasks() else None)
        assert {t.type for t in done} >= {"oci_pull", "ipsw_download", "image_push", "vm_creation"}
        assert all(t.completed_at is not None and t.progress == 100 for t in done)
        assert client.get_vm(new_vm_id).name == "made-by-sdk"
        assert any(i["reference"] == "ghcr.io/myorg/private:v1" for i in client.list_oci_images())

        # Fleet overview and events (manager), resources
        mgr = Client(manager.host, api_token=manager.api_token, port=manager.port, timeout=5)
        overview = mgr.get_fleet_overview()
        assert overview["overview"]["stats"]["totalNodes"] == 2
        assert [w["name"] for w in overview["overview"]["workerNodes"]] == [worker.name]
        events = mgr.get_fleet_events(limit=5)
        assert 0 < len(events) <= 5 and all("eventType" in e for e in events)
        assert all(e["eventType"] == "vm_started" for e in mgr.get_fleet_events(limit=50, event_type="vm_started"))
        resources = client.get_remote_resources()
        assert resources["maxVMs"] == 2
        assert isinstance(client.cleanup_vms(), int) and isinstance(client.cleanup_vms(force=False), int)

        # Pairing, node-ID auth, API tokens, unpair
        creds = Client.pair(worker.host, worker.pairing_code, name="sdk-test", port=worker.port)
        assert creds["responder_node_id"] == worker.node_id and creds["responder_name"] == worker.name
        with pytest.raises(Error, match="Invalid pairing code"):
            Client.pair(worker.host, "000000" if worker.pairing_code != "000000" else "111111", port=worker.port)
        paired = Client(worker.host, node_id=creds["node_id"], port=worker.port, timeout=5)
        assert len(paired.list_vms()) == 5
        token = paired.generate_api_token("ci-read", "readOnly")
        assert token.token.startswith("csk_") and token.permissions == flavour.APITokenPermissions.READ_ONLY
        summaries = paired.list_api_tokens()
        assert any(s.id == token.id and token.token.startswith(s.token_prefix) for s in summaries)
        readonly = Client(worker.host, api_token=token.token, port=worker.port, timeout=5)
        assert len(readonly.list_vms()) == 5
        with pytest.raises(Error, match="read-only"):
            readonly.start_vm(vm_id)
        assert paired.revoke_api_token(token.id) is True
        with pytest.raises(Error, match="Invalid or revoked"):
            readonly.list_vms()
        assert client.unpair(creds["node_id"]) is True
        with pytest.raises(Error, match="not paired"):
            paired.list_vms()
        assert client.delete_vm(new_vm_id) is True


# ---------------------------------------------------------------- error paths (ours)


@pytest.fixture(scope="module")
def fault_fleet() -> Iterator[SimFleet]:
    with SimFleet(nodes=1, vms_per_node=3, seed=3, **FAST) as fleet:
        yield fleet


@pytest.fixture()
def fnode(fault_fleet: SimFleet) -> Iterator[SimNode]:
    node = fault_fleet.nodes[0]
    node.clear_faults()
    yield node
    node.clear_faults()


def _ours(node: SimNode, **kwargs: Any) -> FleetClient:
    kwargs.setdefault("api_token", node.api_token)
    return FleetClient(node.host, port=node.port, **kwargs)


def test_a_bad_token_is_an_auth_error(fnode: SimNode) -> None:
    with _ours(fnode, api_token="csk_not_a_real_token") as client:
        with pytest.raises(FleetAuthError, match="Invalid or revoked API token") as caught:
            client.list_vms()
    assert "csk_not_a_real_token" not in str(caught.value)


def test_a_read_only_token_on_a_mutating_call_is_an_auth_error(fnode: SimNode) -> None:
    with _ours(fnode, api_token=fnode.readonly_token) as client:
        vm = client.list_vms()[0]
        with pytest.raises(FleetAuthError, match="read-only"):
            client.start_vm(vm.id)
        with pytest.raises(FleetAuthError, match="node-ID authentication"):
            client.list_api_tokens()


def test_a_node_error_is_a_node_error(fnode: SimNode) -> None:
    with _ours(fnode) as client:
        with pytest.raises(FleetNodeError, match="VM not found") as caught:
            client.stop_vm("00000000-0000-4000-8000-000000000000")
    assert caught.value.status_code == 200 and caught.value.response["success"] is False


def test_a_node_going_down_and_coming_back(fnode: SimNode) -> None:
    with _ours(fnode, timeout=2, connect_timeout=1) as client:
        assert client.list_vms()
        fnode.set_faults("down")
        with pytest.raises(FleetUnavailableError) as caught:
            client.list_vms()
        assert not isinstance(caught.value, FleetTimeoutError)
        fnode.clear_faults()
        assert len(client.list_vms()) == 3, "the same client recovers once the node is back"


def test_a_hanging_node_is_a_timeout(fnode: SimNode) -> None:
    fnode.set_faults("hang")
    with _ours(fnode, timeout=0.3) as client:
        started = time.monotonic()
        with pytest.raises(FleetTimeoutError):
            client.get_node_info()
        assert time.monotonic() - started < 2


@pytest.mark.parametrize(("mode", "error", "status"), [
    ("http_500", FleetNodeError, 500),
    ("http_502", FleetNodeError, 502),
    ("http_503", FleetNodeError, 503),
    ("http_403", FleetAuthError, None),
])
def test_http_errors(fnode: SimNode, mode: str, error: type[FleetError], status: int | None) -> None:
    fnode.set_faults(mode)
    with _ours(fnode) as client:
        with pytest.raises(error) as caught:
            client.list_vms()
    if status is not None:
        assert caught.value.status_code == status


@pytest.mark.parametrize(("mode", "method", "error", "match"), [
    ("garbage", "list_vms", FleetProtocolError, "not JSON"),
    ("wrong_shape", "list_vms", FleetProtocolError, "not a list"),
    ("wrong_shape", "get_node_info", FleetProtocolError, "not a JSON object"),
    ("wrong_shape", "get_tasks", FleetProtocolError, "not a list"),
    ("huge", "list_vms", FleetProtocolError, "byte limit"),
    ("truncated", "list_vms", FleetUnavailableError, "cut short|connection"),
])
def test_unusable_answers(fnode: SimNode, mode: str, method: str, error: type[FleetError], match: str) -> None:
    fnode.set_faults(mode)
    with _ours(fnode, timeout=5) as client:
        started = time.monotonic()
        with pytest.raises(error, match=match) as caught:
            getattr(client, method)()
        assert time.monotonic() - started < 3
    assert isinstance(caught.value, FleetError)


def test_every_fault_is_still_a_fleet_error(fnode: SimNode) -> None:
    seen = set()
    for mode in ("down", "hang", "http_500", "http_403", "garbage", "wrong_shape", "truncated", "huge"):
        fnode.set_faults(mode)
        with _ours(fnode, timeout=0.3, connect_timeout=0.3) as client:
            try:
                client.list_vms()
            except FleetError as exc:
                seen.add(type(exc).__name__)
            else:
                raise AssertionError(f"{mode} did not raise")
        fnode.clear_faults()
    assert seen == {"FleetUnavailableError", "FleetTimeoutError", "FleetNodeError", "FleetAuthError",
                    "FleetProtocolError"}


def test_a_refusal_in_a_success_false_body_raises_where_the_published_client_returns_it(
    published: ModuleType,
) -> None:
    with SimFleet(nodes=2, vms_per_node=1, seed=5, **FAST) as fleet:
        worker = fleet.nodes[1]
        theirs = published.FleetClient(worker.host, api_token=worker.api_token, port=worker.port)
        assert theirs.get_fleet_overview()["success"] is False  # the published client hands the refusal back
        with _ours(worker) as client:
            with pytest.raises(FleetNodeError, match="only answered by a fleet manager"):
                client.get_fleet_overview()
            with pytest.raises(FleetNodeError, match="IPSW not found"):
                client.get_ipsw_info("/nowhere.ipsw")
