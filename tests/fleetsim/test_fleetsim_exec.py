"""ExecCommand: a small plausible shell on a running VM only."""

from __future__ import annotations

import time

import pytest


@pytest.fixture()
def vm_id(node, rpc, wait) -> str:
    vms = rpc.ok(node, "ListVMs")["vms"]
    running = [v for v in vms if v["state"] == "running"]
    if running:
        return running[0]["id"]
    for v in vms:
        if v["state"] == "paused":
            rpc.ok(node, "StopVM", vmID=v["id"])
    wait(lambda: rpc(node, "StartVM", vmID=vms[0]["id"])[1].get("success"))
    wait(lambda: {v["id"]: v["state"] for v in rpc.ok(node, "ListVMs")["vms"]}[vms[0]["id"]] == "running")
    return vms[0]["id"]


def test_it_runs_builtins_through_the_published_client(node, pub, vm_id):
    client = pub(node)
    r = client.exec_command(vm_id, "echo hello world", ssh_user="admin", ssh_password="secret", timeout=10)
    assert (r.success, r.exit_code, r.stdout, r.stderr) == (True, 0, "hello world\n", "")
    assert r.duration >= 0
    assert client.exec_command(vm_id, "uname").stdout == "Darwin\n"
    assert client.exec_command(vm_id, "uname -a").stdout.startswith("Darwin ") and "arm64" in \
        client.exec_command(vm_id, "uname -a").stdout
    vm = client.get_vm(vm_id)
    assert client.exec_command(vm_id, "sw_vers -productVersion").stdout == f"{vm.os_version}\n"
    assert "ProductName:\t\tmacOS" in client.exec_command(vm_id, "sw_vers").stdout
    assert client.exec_command(vm_id, "hostname").stdout == f"{vm.name}.local\n"
    assert client.exec_command(vm_id, "whoami", ssh_user="admin").stdout == "admin\n"
    assert client.exec_command(vm_id, "whoami").stdout == "cideradmin\n"
    assert client.exec_command(vm_id, "pwd", ssh_user="bob").stdout == "/Users/bob\n"
    assert "hello.txt" in client.exec_command(vm_id, "ls").stdout
    assert "/bin/zsh" in client.exec_command(vm_id, "cat /etc/shells").stdout
    assert "ProductVersion" in client.exec_command(vm_id, "cat /System/Library/CoreServices/SystemVersion.plist").stdout


def test_exit_codes_stderr_and_unknown_commands(node, pub, vm_id):
    client = pub(node)
    r = client.exec_command(vm_id, "exit 3")
    assert (r.success, r.exit_code) == (False, 3)
    assert client.exec_command(vm_id, "false").exit_code == 1
    assert client.exec_command(vm_id, "true").exit_code == 0
    r = client.exec_command(vm_id, "ls /nonexistent")
    assert r.exit_code == 1 and r.stderr == "ls: /nonexistent: No such file or directory\n" and r.stdout == ""
    r = client.exec_command(vm_id, "echo oops >&2")
    assert r.stdout == "" and r.stderr == "oops\n" and r.exit_code == 0
    r = client.exec_command(vm_id, "frobnicate --now")
    assert r.exit_code == 127 and "command not found: frobnicate" in r.stderr and not r.success


def test_pipes_and_operators(node, pub, vm_id):
    client = pub(node)
    assert client.exec_command(vm_id, "echo a; echo b").stdout == "a\nb\n"
    assert client.exec_command(vm_id, "false && echo no || echo yes").stdout == "yes\n"
    assert client.exec_command(vm_id, "cat /etc/shells | grep zsh").stdout == "/bin/zsh\n"
    assert client.exec_command(vm_id, "ls /nope 2>/dev/null; echo $?").stdout == "1\n"


def test_sleep_really_takes_its_time(node, pub, vm_id):
    t0 = time.monotonic()
    r = pub(node).exec_command(vm_id, "sleep 0.5 && echo done", timeout=5)
    elapsed = time.monotonic() - t0
    assert r.stdout == "done\n" and r.exit_code == 0
    assert 0.5 <= elapsed < 2 and r.duration >= 0.5


@pytest.mark.parametrize("command", ["sleep 30", "yes"])
def test_a_command_that_outlasts_its_timeout_returns_a_timeout_result(node, rpc, vm_id, command):
    t0 = time.monotonic()
    status, body = rpc(node, "ExecCommand", vmID=vm_id, command=command, timeout=1)
    elapsed = time.monotonic() - t0
    assert status == 200 and 1.0 <= elapsed < 2.5
    assert body["success"] is False and body["exitCode"] == 124 and body["timedOut"] is True
    assert "timed out after 1 seconds" in body["stderr"] and body["duration"] == 1.0


def test_a_slow_command_does_not_block_other_requests(node, rpc, vm_id, sim_fleet):
    import threading

    results: list = []
    t = threading.Thread(target=lambda: results.append(rpc(node, "ExecCommand", vmID=vm_id, command="sleep 1",
                                                           timeout=5)))
    t.start()
    time.sleep(0.1)
    import requests

    t0 = time.monotonic()
    r = requests.post(f"http://{node.host}:{node.port}/rpc/ListVMs", json={"apiToken": node.api_token}, timeout=5)
    assert r.status_code == 200 and time.monotonic() - t0 < 0.5
    t.join()
    assert results[0][1]["exitCode"] == 0


def test_exec_needs_a_running_vm(node, rpc, wait):
    vm = [v for v in rpc.ok(node, "ListVMs")["vms"] if v["state"] == "stopped"][0]
    status, body = rpc(node, "ExecCommand", vmID=vm["id"], command="echo hi", timeout=5)
    assert status == 200 and body["success"] is False and body["exitCode"] == -1
    assert "is not running" in body["error"] and body["stdout"] == ""


def test_exec_validates_its_fields(node, rpc, vm_id):
    assert "command" in rpc.fails(node, "ExecCommand", vmID=vm_id, timeout=5)
    assert "timeout" in rpc.fails(node, "ExecCommand", vmID=vm_id, command="echo", timeout="soon")
    assert "VM not found" in rpc.fails(node, "ExecCommand", vmID="nope", command="echo", timeout=5)


def test_exec_never_echoes_the_ssh_password(node, rpc, vm_id):
    status, body = rpc(node, "ExecCommand", vmID=vm_id, command="echo $USER", sshUser="u",
                       sshPassword="hunter2-secret", timeout=5)
    assert "hunter2-secret" not in str(body)
    events = rpc.ok(node.fleet.manager, "GetFleetEvents", limit=5)["events"]
    assert "hunter2-secret" not in str(events)
