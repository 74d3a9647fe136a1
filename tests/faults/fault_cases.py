"""The fault cases the fault tests iterate (see conftest.py for how each is produced)."""

from __future__ import annotations

# Every fault case: fleetsim's modes plus the connect timeout described above.
FAULTS = ("down", "connect_timeout", "hang", "http_500", "http_502", "http_503", "http_403", "garbage",
          "wrong_shape", "truncated", "huge")

# What a failed poll records as the node's last_error (its beginning), per fault.
POLL_ERRORS = {
    "down": "cannot reach the node: connection refused",
    "connect_timeout": "timed out connecting: the node did not accept a connection within",
    "hang": "timed out: the node did not answer within",
    "http_500": "the node answered HTTP 500: Internal server error (simulated)",
    "http_502": "the node answered HTTP 502",
    "http_503": "the node answered HTTP 503",
    "http_403": "the node rejected the token: Access denied (simulated fault)",
    "garbage": "the node's answer could not be read (answer is not JSON",
    "wrong_shape": "the node's answer could not be read",
    "truncated": "cannot reach the node: ",
    "huge": "the node's answer could not be read (answer of 67108864 bytes exceeds the",
}
