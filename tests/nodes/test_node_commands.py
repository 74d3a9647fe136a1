"""`manage.py addnode` and `manage.py poll`, in-process and once as real subprocesses."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from fleetsim import SimFleet

from fleetui.core.crypto import decrypt
from fleetui.nodes.models import Node

BASE_DIR = Path(__file__).resolve().parents[2]


def _addnode(*args: str, stdin: str = "") -> str:
    out = io.StringIO()
    old_stdin = sys.stdin
    sys.stdin = io.StringIO(stdin)
    try:
        call_command("addnode", *args, stdout=out)
    finally:
        sys.stdin = old_stdin
    return out.getvalue()


@pytest.mark.django_db
def test_addnode_reads_the_token_from_stdin_and_is_idempotent_with_if_missing(fleet: SimFleet) -> None:
    sim = fleet.nodes[1]
    args = ("--name", "mac-07", "--host", sim.host, "--port", str(sim.port))

    output = _addnode(*args, "--api-token", "-", stdin=sim.api_token + "\n")

    node = Node.objects.get(name="mac-07")
    assert decrypt(node.api_token_enc) == sim.api_token
    assert "Registered node mac-07" in output and "full-access" in output
    assert sim.api_token not in output and sim.api_token[:12] in output
    again = _addnode(*args, "--if-missing", stdin=sim.api_token + "\n")
    assert "already registered" in again and Node.objects.count() == 1
    with pytest.raises(CommandError, match="already registered"):
        _addnode(*args, stdin=sim.api_token + "\n")


@pytest.mark.django_db
def test_addnode_says_why_it_failed(fleet: SimFleet) -> None:
    sim = fleet.nodes[1]
    with pytest.raises(CommandError, match="rejected the token"):
        _addnode("--name", "x", "--host", sim.host, "--port", str(sim.port), "--api-token", "csk_" + "q" * 40)
    with pytest.raises(CommandError, match="No API token"):
        _addnode("--name", "x", "--host", sim.host, "--port", str(sim.port), stdin="")
    with pytest.raises(CommandError, match="metadata"):
        _addnode("--name", "x", "--host", "169.254.169.254", "--api-token", sim.api_token)
    assert not Node.objects.exists()


@pytest.mark.django_db
def test_poll_sync_prints_a_line_per_node_and_fails_when_a_poll_does(
    fleet: SimFleet, registered: list[Node]
) -> None:
    out = io.StringIO()
    call_command("poll", "--sync", stdout=out)
    lines = out.getvalue().strip().splitlines()
    assert sorted(line.split()[0] for line in lines) == sorted(n.name for n in registered)
    assert all(" online " in line and "4 VMs" in line for line in lines)

    fleet.nodes[2].set_faults("down")
    out = io.StringIO()
    with pytest.raises(CommandError, match="1 of 1 poll"):
        call_command("poll", "--sync", "--node", registered[2].name, stdout=out)
    assert "FAILED: cannot reach the node: connection refused" in out.getvalue()
    with pytest.raises(CommandError, match="No node named nope"):
        call_command("poll", "--node", "nope")


@pytest.mark.django_db(transaction=True)
def test_the_commands_as_processes(fleet: SimFleet, subprocess_env: dict[str, str]) -> None:
    """What `make run` and an operator do: real processes, the token on stdin, never in argv."""
    sim = fleet.nodes[0]
    manage = [sys.executable, str(BASE_DIR / "manage.py")]
    add = [*manage, "addnode", "--name", "boss", "--host", sim.host, "--port", str(sim.port), "--if-missing"]

    done = subprocess.run(add, input=sim.api_token + "\n", env=subprocess_env, capture_output=True, text=True,
                          timeout=60, cwd=BASE_DIR)
    assert done.returncode == 0, done.stderr
    assert "Registered node boss" in done.stdout
    again = subprocess.run(add, input="", env=subprocess_env, capture_output=True, text=True, timeout=60,
                           cwd=BASE_DIR)
    assert again.returncode == 0 and "already registered" in again.stdout

    polled = subprocess.run([*manage, "poll", "--sync", "--node", "boss"], env=subprocess_env,
                            capture_output=True, text=True, timeout=60, cwd=BASE_DIR)
    assert polled.returncode == 0, polled.stderr
    assert polled.stdout.startswith("boss") and " online " in polled.stdout
    assert Node.objects.get(name="boss").role == Node.Role.MANAGER

    assert sim.api_token not in done.stdout + done.stderr + polled.stdout + polled.stderr
