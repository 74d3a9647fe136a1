"""Node info, stats, resources, and the manager's fleet overview and events on fleetsim."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


def test_node_info_via_the_published_client(fleet, pub):
    for n in fleet.nodes:
        info = pub(n).get_node_info()
        assert (info.node_id, info.name, info.port) == (n.node_id, n.name, n.port)
        assert info.machine_model.startswith("Mac") and info.cpu_cores >= 8 and info.total_memory_gb >= 16
        assert int(info.os_version.split(".")[0]) >= 15 and info.fleet_version and info.hostname.endswith(".local")


def test_stats_follow_the_running_vms(node, rpc, pub, wait):
    client = pub(node)
    for v in rpc.ok(node, "ListVMs")["vms"]:
        if v["state"] != "stopped":
            rpc.ok(node, "StopVM", vmID=v["id"])
    wait(lambda: client.get_node_stats().running_vm_count == 0 and
         all(v["state"] == "stopped" for v in rpc.ok(node, "ListVMs")["vms"]))
    idle = client.get_node_stats()
    assert abs(idle.timestamp - datetime.now(UTC)) < timedelta(seconds=5)
    assert idle.total_vm_count == 4 and idle.memory_used_gb < idle.memory_total_gb
    assert 0 < idle.cpu_usage_percent < 10 and 0 < idle.disk_used_gb < idle.disk_total_gb
    vms = rpc.ok(node, "ListVMs")["vms"][:2]
    for v in vms:
        rpc.ok(node, "StartVM", vmID=v["id"])
    wait(lambda: client.get_node_stats().running_vm_count == 2)
    busy = client.get_node_stats()
    assert busy.cpu_usage_percent > idle.cpu_usage_percent + 5
    expected_gb = sum(v["memoryMB"] for v in vms) / 1024
    assert abs((busy.memory_used_gb - idle.memory_used_gb) - expected_gb) < 0.5


def test_remote_resources_have_the_assumed_keys(node, rpc, pub):
    res = pub(node).get_remote_resources()
    assert {"availableCPU", "availableMemoryGB", "availableDiskGB", "maxVMs", "runningVMs"} <= set(res)
    assert res["maxVMs"] == 2 and 0 <= res["runningVMs"] <= 2


def test_manager_overview_covers_every_worker(fleet, rpc, pub):
    overview = pub(fleet.manager).get_fleet_overview()["overview"]
    stats = overview["stats"]
    assert stats["totalNodes"] == 3 and stats["connectedNodes"] == 3
    assert stats["totalVMs"] == 12 and stats["totalVMs"] == len(overview["vms"])
    running = sum(1 for n in fleet.nodes for v in rpc.ok(n, "ListVMs")["vms"] if v["state"] == "running")
    assert stats["runningVMs"] == running and isinstance(stats["aggregatedCPUUsage"], float)
    assert overview["managerNode"]["name"] == fleet.manager.name and overview["managerNode"]["hostname"]
    assert [w["name"] for w in overview["workerNodes"]] == [n.name for n in fleet.nodes[1:]]
    assert {w["connectionState"] for w in overview["workerNodes"]} == {"connected"}
    assert {v["hostName"] for v in overview["vms"]} == {n.name for n in fleet.nodes}
    assert set(overview["vms"][0]) >= {"id", "name", "state", "hostName"}


def test_manager_sees_a_worker_go_down_and_come_back(fleet, rpc):
    worker = fleet.nodes[2]
    worker.set_faults("down")
    overview = rpc.ok(fleet.manager, "GetFleetOverview")["overview"]
    states = {w["name"]: w["connectionState"] for w in overview["workerNodes"]}
    assert states == {fleet.nodes[1].name: "connected", worker.name: "disconnected"}
    assert overview["stats"]["connectedNodes"] == 2 and overview["stats"]["totalNodes"] == 3
    assert worker.name not in {v["hostName"] for v in overview["vms"]}
    events = rpc.ok(fleet.manager, "GetFleetEvents", limit=5, eventType="node_disconnected")["events"]
    assert events[0]["nodeName"] == worker.name and events[0]["nodeID"] == worker.node_id
    worker.clear_faults()
    overview = rpc.ok(fleet.manager, "GetFleetOverview")["overview"]
    assert overview["stats"]["connectedNodes"] == 3
    newest = rpc.ok(fleet.manager, "GetFleetEvents", limit=1)["events"][0]
    assert newest["eventType"] == "node_connected" and newest["nodeName"] == worker.name
    assert rpc.ok(worker, "ListVMs")["vms"]  # listening again on the same port


def test_workers_refuse_fleet_methods(node, rpc, pub):
    err = rpc.fails(node, "GetFleetOverview")
    assert "only answered by a fleet manager" in err and node.name in err
    assert "only answered by a fleet manager" in rpc.fails(node, "GetFleetEvents", limit=5)
    assert pub(node).get_fleet_events() == []  # the published client ignores success:false here


def test_events_cover_workers_newest_first_with_limit_and_type(fleet, rpc, pub, wait):
    worker = fleet.nodes[1]
    vm = rpc.ok(worker, "ListVMs")["vms"][-1]
    rpc.ok(worker, "RenameVM", vmID=vm["id"], newName="renamed-for-events")
    rpc.ok(fleet.manager, "CreateSnapshot", vmID=rpc.ok(fleet.manager, "ListVMs")["vms"][0]["id"], name="s1")
    events = pub(fleet.manager).get_fleet_events(limit=50)
    assert events[0]["eventType"] == "snapshot_created" and events[0]["nodeName"] == fleet.manager.name
    assert events[1]["eventType"] == "vm_renamed" and events[1]["nodeName"] == worker.name
    assert events[1]["vmID"] == vm["id"] and events[1]["vmName"] == "renamed-for-events"
    stamps = [e["timestamp"] for e in events]
    assert stamps == sorted(stamps, reverse=True)
    assert all({"id", "timestamp", "eventType", "nodeName", "message"} <= set(e) for e in events)
    assert len(pub(fleet.manager).get_fleet_events(limit=2)) == 2
    only = pub(fleet.manager).get_fleet_events(limit=50, event_type="vm_renamed")
    assert [e["eventType"] for e in only] == ["vm_renamed"]
    assert "limit" in rpc.fails(fleet.manager, "GetFleetEvents", limit="many")


def test_every_change_emits_an_event(fleet, rpc, wait):
    node = fleet.nodes[1]
    mgr = fleet.manager

    def kinds(n: int = 3) -> list[str]:
        return [e["eventType"] for e in rpc.ok(mgr, "GetFleetEvents", limit=n)["events"]]

    vm_id = [v for v in rpc.ok(node, "ListVMs")["vms"] if v["state"] == "stopped"][0]["id"]
    rpc.ok(node, "UpdateVMSettings", vmID=vm_id, intent="ci")
    assert kinds(1) == ["vm_settings_updated"]
    rpc.ok(node, "AddSharedFolder", vmID=vm_id, name="f", hostPath="/x", readOnly=False)
    assert kinds(1) == ["shared_folder_added"]
    clone = rpc.ok(node, "CloneVM", vmID=vm_id, newName="c1")
    assert kinds(1) == ["vm_created"]
    rpc.ok(node, "DeleteVM", vmID=clone["newVM"]["id"])
    assert kinds(1) == ["vm_deleted"]
    rpc.ok(node, "StartVM", vmID=vm_id)
    assert kinds(1) == ["vm_starting"]
    wait(lambda: kinds(1) == ["vm_started"])
    rpc.ok(node, "StopVM", vmID=vm_id)
    assert kinds(1) == ["vm_stopping"]
    wait(lambda: kinds(1) == ["vm_stopped"])
