"""fleetsim: simulated CiderStack Fleet nodes speaking the Fleet RPC protocol over real HTTP.

    from fleetsim import SimFleet
    with SimFleet(nodes=3, vms_per_node=4, transition_seconds=0.2, task_seconds=1.0) as fleet:
        node = fleet.nodes[0]          # the manager; nodes[1:] are its workers
        ...                            # talk to http://{node.host}:{node.port}/rpc/<Method>

See README.md beside this file for the CLI, the control endpoint, fault modes and behaviour rules.
"""

from .server import FAULT_MODES, SimFleet, SimNode
from .state import MAX_ALIVE_VMS, NodeState, task_should_fail

__all__ = ["FAULT_MODES", "MAX_ALIVE_VMS", "NodeState", "SimFleet", "SimNode", "task_should_fail"]
