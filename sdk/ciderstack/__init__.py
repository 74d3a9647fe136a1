"""CiderStack Fleet SDK for Python (FleetUI's vendored client).

API-compatible with the published ``ciderstack`` 0.1.1 package::

    from ciderstack import FleetClient, FleetError

    with FleetClient("192.168.1.100", api_token="csk_...") as client:
        for vm in client.list_vms():
            print(vm.name, vm.state)

The FleetError subclasses (FleetAuthError, FleetUnavailableError, FleetTimeoutError,
FleetNodeError, FleetProtocolError) are importable from here and from
``ciderstack.errors``; NodeInfo, NodeStats, VM, Snapshot, ExecResult and Task from
``ciderstack.types``. Neither group is in ``__all__``, as in the reference.
"""

from .client import FleetClient
from .errors import (
    FleetAuthError,
    FleetError,
    FleetNodeError,
    FleetProtocolError,
    FleetTimeoutError,
    FleetUnavailableError,
)
from .types import (
    APIToken,
    APITokenPermissions,
    APITokenSummary,
    NodeRole,
    TaskStatus,
    Template,
    VMState,
)

__version__ = "0.1.1+fleetui.1"
__all__ = [
    "FleetClient", "FleetError",
    "VMState", "TaskStatus", "NodeRole",
    "Template", "APIToken", "APITokenSummary", "APITokenPermissions",
]

# Importable as attributes (the contract), deliberately outside __all__.
_EXTRAS = (FleetAuthError, FleetUnavailableError, FleetTimeoutError, FleetNodeError, FleetProtocolError)
