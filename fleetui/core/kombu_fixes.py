"""A workaround for kombu's Redis transport (seen with kombu 5.7.0, redis-py 6).

When the broker connection drops while a worker holds unacknowledged tasks (acks_late: every task
it is running), kombu closes the channel and tries to give those tasks back to their queue. By then
the transport has lost its connection details, and the attempt raises AttributeError ("'NoneType'
object has no attribute 'hostname'") instead of a connection error; Celery counts that as
unrecoverable and the worker exits instead of reconnecting. tests/resilience/test_redis_outage.py
shows it.

Giving the tasks back could not have worked anyway (Redis is gone), and nothing is lost without it:
Redis keeps unacknowledged tasks in its own "unacked" set and hands them back after the visibility
timeout; a task that ran meanwhile is recognised by its Operation row and never runs twice. So the
error is logged and the worker reconnects. The same happens when a task that was running during the
drop finishes and is acknowledged on the dead channel: logged, and the task stays unacknowledged in
Redis (a redelivery finds its Operation settled, or re-polls harmlessly).
"""

from __future__ import annotations

import functools
import logging
from typing import Any

from kombu.transport import redis as kombu_redis

logger = logging.getLogger(__name__)


def _tolerant(original: Any, what: str) -> Any:
    @functools.wraps(original)
    def method(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return original(self, *args, **kwargs)
        except AttributeError:
            # Only on a channel whose connection is already gone (see the module docstring).
            logger.warning("broker connection lost: could not %s; Redis keeps the task as unacknowledged and "
                           "hands it back after the visibility timeout", what)
            return None

    method.fleetui_patched = True  # type: ignore[attr-defined]
    return method


def patch_redis_restore_unacked() -> None:
    """Make the Redis transport's QoS survive a channel whose connection is gone: giving unacknowledged
    tasks back at close, and acknowledging or rejecting, from a task that finished after the drop."""
    qos = kombu_redis.QoS
    if getattr(qos.restore_unacked, "fleetui_patched", False):
        return
    qos.restore_unacked = _tolerant(qos.restore_unacked, "give unacknowledged tasks back")
    qos.ack = _tolerant(qos.ack, "acknowledge a task that finished")
    qos.reject = _tolerant(qos.reject, "reject a task")
