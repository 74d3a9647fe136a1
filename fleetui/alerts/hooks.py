"""The two calls other parts make: after a poll and after an operation finished.

Each only queues a task (on the "alerts" queue) and returns at once; it never raises and never blocks
the poll or the operation for long: when the broker is known to be down (a PING remembered for a few
seconds) it queues nothing, and the periodic sweep catches up.
"""

from __future__ import annotations

import logging
from typing import Any

logger = logging.getLogger(__name__)


def _queue(task_name: str, arg: Any) -> None:
    try:
        from fleetui.alerts import tasks
        from fleetui.core.broker import broker_reachable

        if not broker_reachable():
            return
        getattr(tasks, task_name).apply_async(args=[arg], retry=False)
    except Exception:  # noqa: BLE001 - alerts must never break a poll or an operation
        logger.warning("could not queue the alerts check %s(%s); the sweep catches up", task_name, arg)


def alerts_evaluate_node(node_id: int) -> None:
    """After a poll of the node (successful or not)."""
    _queue("evaluate_node", node_id)


def alerts_operation_finished(operation_id: Any) -> None:
    """After an operation's outcome was recorded."""
    _queue("operation_finished", str(operation_id))
