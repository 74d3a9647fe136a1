"""Fixtures for the node services: a fresh fleetsim fleet per test, registered through node_register."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fleetsim import SimFleet

from fleetui.nodes.models import Node


@pytest.fixture()
def fleet(sim_fleet: Callable[..., SimFleet]) -> SimFleet:
    """Three fleetsim nodes, the manager first."""
    return sim_fleet()


@pytest.fixture()
def registered(db: Any, fleet: SimFleet, register_sim: Callable[..., Node]) -> list[Node]:
    """Every node of `fleet` registered (probed over HTTP), manager first."""
    return [register_sim(sim_node) for sim_node in fleet.nodes]
