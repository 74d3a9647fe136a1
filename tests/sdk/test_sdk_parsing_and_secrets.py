"""Tolerant parsing of what nodes send, and secrets kept out of messages, reprs and logs."""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from ciderstack import FleetClient, FleetError, TaskStatus, VMState
from ciderstack.types import (
    VM,
    APIToken,
    APITokenPermissions,
    APITokenSummary,
    ExecResult,
    NodeInfo,
    NodeStats,
    Snapshot,
    Task,
    Template,
    enum_value,
    parse_datetime,
)

recorder = sys.modules["_fleetui_tests_sdk_recorder"]  # loaded by this folder's conftest.py
Override = recorder.Override
TOKEN = "csk_secret_" + "s" * 36
SSH_PASSWORD = "hunter2-ssh-pw"
REGISTRY_PASSWORD = "ghp_registry_secret_pw"


# ---------------------------------------------------------------- datetimes


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2025-03-01T10:00:00Z", datetime(2025, 3, 1, 10, tzinfo=UTC)),
        ("2025-03-01T10:00:00.5Z", datetime(2025, 3, 1, 10, 0, 0, 500000, tzinfo=UTC)),
        ("2025-03-01T10:00:00.123456789Z", datetime(2025, 3, 1, 10, 0, 0, 123456, tzinfo=UTC)),
        ("2025-03-01T12:00:00+02:00", datetime(2025, 3, 1, 10, tzinfo=UTC)),
        ("2025-03-01T10:00:00", datetime(2025, 3, 1, 10, tzinfo=UTC)),
        ("2025-03-01 10:00:00z", datetime(2025, 3, 1, 10, tzinfo=UTC)),
        (1740823200, datetime(2025, 3, 1, 10, tzinfo=UTC)),
        (1740823200000, datetime(2025, 3, 1, 10, tzinfo=UTC)),
        (762516000.0, datetime(2025, 3, 1, 10, tzinfo=UTC)),  # Apple reference-date seconds
    ],
)
def test_it_parses_timestamps_in_the_forms_nodes_send(text: Any, expected: datetime) -> None:
    assert parse_datetime(text) == expected


@pytest.mark.parametrize("junk", [None, "", "yesterday", "2025-13-45T99:00:00Z", [], {}, True, float("nan")])
def test_unreadable_timestamps_are_none(junk: Any) -> None:
    assert parse_datetime(junk) is None


def test_a_missing_required_timestamp_is_now_in_utc() -> None:
    snapshot = Snapshot.from_dict({"id": "s"})
    assert snapshot.created_at.tzinfo is not None
    assert abs(datetime.now(UTC) - snapshot.created_at) < timedelta(seconds=5)


# ---------------------------------------------------------------- items


def test_a_vm_with_bad_fields_keeps_what_can_be_parsed() -> None:
    vm = VM.from_dict({"id": "v1", "name": None, "state": "hibernating", "cpuCount": "8", "memoryMB": "lots",
                       "diskSizeGB": 64.0, "osVersion": 15, "ipAddress": {"v4": "x"}})
    assert vm == VM(id="v1", name="", state="hibernating", cpu_count=8, memory_mb=0, disk_size_gb=64,
                    os_version="15", ip_address=None)
    assert enum_value(vm.state) == "hibernating"
    assert VM.from_dict({"state": "running"}).state is VMState.RUNNING
    assert enum_value(VMState.PAUSED) == "paused"
    assert VM.from_dict({}).state is VMState.STOPPED
    assert VM.from_dict(None).id == ""  # type: ignore[arg-type]


def test_a_task_with_an_unknown_status_is_kept() -> None:
    task = Task.from_dict({"id": "t", "status": "queued", "progress": "55.5", "startedAt": "2025-03-01T10:00:00Z",
                           "completedAt": "garbage", "errorMessage": None, "title": None})
    assert (task.status, task.progress, task.completed_at, task.error_message, task.title) == (
        "queued", 55.5, None, None, "")
    assert Task.from_dict({"status": "failed"}).status is TaskStatus.FAILED


def test_every_dataclass_survives_an_empty_and_a_hostile_dict() -> None:
    hostile = {key: [1] for key in ("id", "name", "state", "status", "permissions", "createdAt", "port",
                                    "cpuUsagePercent", "exitCode", "success", "token", "defaultCPU")}
    for cls in (NodeInfo, NodeStats, VM, Snapshot, Task, Template, APIToken, APITokenSummary, ExecResult):
        assert cls.from_dict({}) is not None
        assert cls.from_dict(hostile) is not None
    assert NodeInfo.from_dict({}).port == 9473
    assert ExecResult.from_dict({}).exit_code == -1
    assert APITokenSummary.from_dict({"permissions": "admin"}).permissions == "admin"
    assert APIToken.from_dict({"permissions": "readOnly"}).permissions is APITokenPermissions.READ_ONLY


def test_a_bad_item_never_crashes_a_list(recording_server: Any, caplog: pytest.LogCaptureFixture) -> None:
    recording_server.overrides["ListVMs"] = Override(body={"vms": [
        {"id": "a", "name": "ok", "state": "running", "cpuCount": 4, "memoryMB": 8192},
        {"id": "b", "name": None, "state": "teleporting", "cpuCount": None},
        "not an object",
        None,
        {"id": "c"},
    ]})
    recording_server.overrides["GetTasks"] = Override(body={"tasks": [
        {"id": "t1", "status": "running", "progress": 10}, {"id": "t2", "status": "paused-ish", "progress": None}, 7,
    ]})
    recording_server.overrides["GetFleetEvents"] = Override(body={"events": [{"eventType": "vm_started"}, "x"]})
    with FleetClient("127.0.0.1", api_token=TOKEN, port=recording_server.port) as client:
        with caplog.at_level(logging.WARNING, logger="ciderstack"):
            vms = client.list_vms()
            tasks = client.get_tasks()
            events = client.get_fleet_events()
    assert [(vm.id, vm.name, enum_value(vm.state)) for vm in vms] == [
        ("a", "ok", "running"), ("b", "", "teleporting"), ("c", "", "stopped")]
    assert [(t.id, enum_value(t.status), t.progress) for t in tasks] == [("t1", "running", 10.0),
                                                                          ("t2", "paused-ish", 0.0)]
    assert events == [{"eventType": "vm_started"}]
    assert any("dropped 2 item(s) of 'vms'" in r.getMessage() for r in caplog.records)


# ---------------------------------------------------------------- secrets


def _secret_free(text: str) -> bool:
    return all(secret not in text for secret in (TOKEN, SSH_PASSWORD, REGISTRY_PASSWORD))


def test_repr_never_shows_a_secret() -> None:
    client = FleetClient("10.0.0.1", api_token=TOKEN)
    assert "10.0.0.1:9473" in repr(client) and TOKEN[:8] in repr(client)
    assert _secret_free(repr(client)) and _secret_free(str(client))
    node_client = FleetClient("10.0.0.1", node_id="6F1C2D3E-0000-4000-8000-0000000000C1")
    assert "6F1C2D3E-0000" not in repr(node_client)
    token = APIToken.from_dict({"id": "t", "token": TOKEN, "permissions": "readOnly"})
    assert token.token == TOKEN
    assert _secret_free(repr(token)) and TOKEN[:8] in repr(token)


def test_pairing_credentials_hide_the_private_key(recording_server: Any) -> None:
    creds = FleetClient.pair("127.0.0.1", "123456", port=recording_server.port)
    assert isinstance(creds, dict) and len(creds["private_key_hex"]) == 64
    assert creds["private_key_hex"] not in repr(creds) and creds["private_key_hex"] not in str(creds)
    assert creds["public_key_hex"] in repr(creds)


def test_secrets_echoed_by_a_node_are_redacted_from_errors(recording_server: Any) -> None:
    recording_server.overrides["ListVMs"] = Override(status=403, body={"error": f"Unknown token {TOKEN}"})
    recording_server.overrides["ExecCommand"] = Override(
        status=500, body={"error": f"ssh admin:{SSH_PASSWORD}@vm failed", "detail": [SSH_PASSWORD]})
    recording_server.overrides["PullOCIImageOnNode"] = Override(
        body={"success": False, "error": f"registry refused user:{REGISTRY_PASSWORD}"})
    caught: list[FleetError] = []
    with FleetClient("127.0.0.1", api_token=TOKEN, port=recording_server.port) as client:
        for call in (
            client.list_vms,
            lambda: client.exec_command("vm", "ls", ssh_user="admin", ssh_password=SSH_PASSWORD),
            lambda: client.pull_oci_image("ghcr.io/o/p:1", username="u", password=REGISTRY_PASSWORD),
        ):
            with pytest.raises(FleetError) as info:
                call()
            caught.append(info.value)
    assert [type(e).__name__ for e in caught] == ["FleetAuthError", "FleetNodeError", "FleetNodeError"]
    for error in caught:
        assert "***" in str(error)
        assert _secret_free(str(error)) and _secret_free(repr(error)) and _secret_free(repr(error.response))


def test_logs_carry_method_and_duration_never_a_secret_or_a_body(
    recording_server: Any, caplog: pytest.LogCaptureFixture
) -> None:
    recording_server.overrides["StopVM"] = Override(status=500, body={"error": f"boom {TOKEN}"})
    with caplog.at_level(logging.DEBUG, logger="ciderstack"):
        with FleetClient("127.0.0.1", api_token=TOKEN, port=recording_server.port) as client:
            client.list_vms()
            client.exec_command("vm", "ls", ssh_password=SSH_PASSWORD)
            client.pull_oci_image("ghcr.io/o/p:1", username="u", password=REGISTRY_PASSWORD)
            with pytest.raises(FleetError):
                client.stop_vm("vm")
    messages = [record.getMessage() for record in caplog.records if record.name.startswith("ciderstack")]
    assert any("ListVMs" in m and " ms" in m for m in messages)
    assert any("StopVM" in m and "FleetNodeError" in m for m in messages)
    assert all(_secret_free(m) for m in messages)
    assert not any("ci-runner-01" in m for m in messages), "no body content in logs"
