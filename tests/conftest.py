"""Fixtures shared by every test folder.

`sim_fleet` is a factory: `fleet = sim_fleet(nodes=2, vms_per_node=3)` starts a fleetsim fleet on
ephemeral loopback ports with fast transitions (starting/stopping 0.2 s, tasks 1 s) unless told
otherwise, and stops it after the test.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fleetsim import SimFleet


@pytest.fixture()
def sim_fleet() -> Iterator[Callable[..., SimFleet]]:
    fleets: list[SimFleet] = []

    def make(**kwargs: Any) -> SimFleet:
        options: dict[str, Any] = {"nodes": 3, "vms_per_node": 4, "seed": 1, "transition_seconds": 0.2,
                                   "task_seconds": 1.0}
        options.update(kwargs)
        fleet = SimFleet(**options).start()
        fleets.append(fleet)
        return fleet

    try:
        yield make
    finally:
        for fleet in fleets:
            fleet.stop()
