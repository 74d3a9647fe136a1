"""Faults at the nodes: one fleetsim fleet per module (faults never change a node's state: a faulted
RPC is answered, or not, without being executed), nodes registered per test through the real
service, and the fault cases every test iterates.

`connect_timeout` is not a fleetsim mode (a fleetsim node that is `down` refuses at once). On
loopback a connect timeout is produced for real with a listening socket whose accept queue is full
and never drained: Linux then drops further SYNs, so the client's connect times out exactly as
with a host that has gone silent. The node's port is pointed at that socket for the test.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.contrib.auth.models import Group, User
from django.test import Client
from fleetsim import SimFleet

from fleetui.nodes.models import Node


class Blackhole:
    """A TCP port on loopback that accepts no connection: connects to it time out."""

    def __init__(self) -> None:
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(0)
        self.port = self.listener.getsockname()[1]
        self._fillers: list[socket.socket] = []
        for _ in range(3):  # fill the accept queue (backlog 0 holds one; extra ones sit in SYN_SENT)
            filler = socket.socket()
            filler.setblocking(False)
            try:
                filler.connect(("127.0.0.1", self.port))
            except BlockingIOError:
                pass
            self._fillers.append(filler)
        time.sleep(0.05)

    def close(self) -> None:
        for filler in self._fillers:
            filler.close()
        self.listener.close()


@pytest.fixture(scope="module")
def blackhole() -> Iterator[Blackhole]:
    hole = Blackhole()
    probe = socket.socket()
    probe.settimeout(0.3)
    try:
        probe.connect(("127.0.0.1", hole.port))
    except TimeoutError:
        pass
    else:  # pragma: no cover - a kernel that accepts anyway: the connect-timeout cases would lie
        pytest.fail("could not produce a connect timeout on loopback (the kernel accepted the connection)")
    finally:
        probe.close()
    yield hole
    hole.close()


@pytest.fixture(autouse=True)
def _short_node_timeouts(settings: Any) -> None:
    # In-process calls only (a worker subprocess keeps the suite's 1 s / 2 s): a hang or a black hole
    # costs this much per case.
    settings.NODE_CONNECT_TIMEOUT = 0.5
    settings.NODE_READ_TIMEOUT = 0.5
    settings.NODE_ACTION_TIMEOUT = 0.5


@pytest.fixture(scope="module")
def module_fleet() -> Iterator[SimFleet]:
    fleet = SimFleet(nodes=3, vms_per_node=4, seed=5, transition_seconds=0.2, task_seconds=1.0).start()
    yield fleet
    fleet.stop()


@pytest.fixture()
def fleet(module_fleet: SimFleet) -> Iterator[SimFleet]:
    for sim in module_fleet.nodes:
        sim.clear_faults()
    yield module_fleet
    for sim in module_fleet.nodes:
        sim.clear_faults()


@pytest.fixture()
def apply_fault(blackhole: Blackhole) -> Callable[[Any, Node, str], None]:
    """apply_fault(sim_node, node, fault): make the node misbehave that way (see FAULTS)."""

    def apply(sim: Any, node: Node, fault: str) -> None:
        if fault == "connect_timeout":
            Node.objects.filter(pk=node.pk).update(port=blackhole.port)
        else:
            sim.set_faults(fault)

    return apply


@pytest.fixture()
def viewer_client(db: Any, client: Client) -> Client:
    user = User.objects.create_user("fault-viewer")  # no password: no slow hashing; logged in directly
    user.groups.add(Group.objects.get(name="viewer"))
    client.force_login(user)
    return client
