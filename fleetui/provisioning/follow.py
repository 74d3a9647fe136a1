"""Following node-side work started by an Operation: find its NodeTask and the VM it produced.

The pollers write NodeTask and VM rows; handlers record the node's ids (task_id, vm_id) in the
Operation's result, and these functions join the two. Used by provisioning and catalog pages.
"""

from __future__ import annotations

from typing import Any

from ciderstack import FleetClient

from fleetui.activity.models import Operation
from fleetui.images.models import NodeTask
from fleetui.vms.models import VM


def task_ids(client: FleetClient) -> set[str]:
    """Ids of every task the node knows (completed ones included)."""
    return {task.id for task in client.get_tasks(include_completed=True)}


def new_task_id(client: FleetClient, before: set[str], *, title_hint: str = "", vm_id: str = "") -> str:
    """The id of the task that appeared since `before` (the SDK's download/create calls do not return it).

    When several appeared at once (other people's work), prefer the one naming our VM or title hint.
    """
    fresh = [task for task in client.get_tasks(include_completed=True) if task.id not in before]
    if not fresh:
        return ""
    for task in fresh:
        if vm_id and (task.vm_id or "").upper() == vm_id.upper():
            return task.id
    for task in fresh:
        if title_hint and title_hint in (task.title or ""):
            return task.id
    return fresh[0].id if len(fresh) == 1 else ""


def task_for(op: Operation) -> NodeTask | None:
    """The NodeTask an operation started, once the pollers have seen it."""
    if op.node_id is None:
        return None
    result: dict[str, Any] = op.result or {}
    task_id = str(result.get("task_id") or "")
    tasks = NodeTask.objects.filter(node_id=op.node_id)
    if task_id:
        task = tasks.filter(remote_id__iexact=task_id).first()
        if task is not None:
            return task
    vm_id = str(result.get("vm_id") or "")
    if vm_id:
        return tasks.filter(vm_remote_id__iexact=vm_id).order_by("-started_at").first()
    return None


def vm_for(op: Operation) -> VM | None:
    """The VM an operation produced (creation, clone), once the pollers have seen it."""
    vm_id = str((op.result or {}).get("vm_id") or "")
    if not vm_id or op.node_id is None:
        return None
    return VM.objects.filter(node_id=op.node_id, remote_id__iexact=vm_id, gone_at__isnull=True).first()
