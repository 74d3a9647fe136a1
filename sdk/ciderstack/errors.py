"""Exceptions raised by the Fleet client.

Every failure is a :class:`FleetError` (the published client's only exception),
so ``except FleetError`` keeps working; the subclasses let a caller tell a dead
node from a refused call from a node that answered with an error:

    FleetError
      FleetAuthError          403: token refused, or a read-only token on a mutating call
      FleetUnavailableError   connection refused, DNS failure, connection reset
        FleetTimeoutError     connect or read timeout
      FleetNodeError          the node reported an error (success:false, or non-2xx other than 403)
      FleetProtocolError      a 2xx body that is not JSON, not an object, of the wrong shape or too big

Messages never carry secrets: the client redacts its API token, SSH and registry
passwords from any text it puts in a message (see ``FleetClient``).
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "FleetError",
    "FleetAuthError",
    "FleetUnavailableError",
    "FleetTimeoutError",
    "FleetNodeError",
    "FleetProtocolError",
]


class FleetError(Exception):
    """Raised when a Fleet API call fails.

    ``response`` is the node's decoded JSON answer when there was one (for
    debugging), else None.
    """

    def __init__(self, message: str, response: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.response = response


class FleetAuthError(FleetError):
    """The node refused the credential (HTTP 403): unknown token, read-only token on a mutating call."""


class FleetUnavailableError(FleetError):
    """The node could not be reached: connection refused or reset, DNS failure."""


class FleetTimeoutError(FleetUnavailableError):
    """The node did not connect or answer within the timeout."""


class FleetNodeError(FleetError):
    """The node answered with an error: ``success: false`` or an HTTP status other than 2xx/403.

    ``status_code`` is the HTTP status of the answer (200 for a ``success: false`` body).
    """

    def __init__(
        self,
        message: str,
        response: dict[str, Any] | None = None,
        status_code: int | None = None,
    ) -> None:
        super().__init__(message, response)
        self.status_code = status_code


class FleetProtocolError(FleetError):
    """A 2xx answer the client cannot use: not JSON, not an object, the wrong shape, or over the size cap."""
