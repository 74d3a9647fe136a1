"""Rows built with the ORM for the batch tests (pages never call a node)."""

from __future__ import annotations

from typing import Any

from django.utils import timezone

from fleetui.core.crypto import encrypt
from fleetui.nodes.models import Node
from fleetui.vms.models import VM

TOKEN = "csk_batches_test_token_0123456789abcdef"


def make_node(name: str, *, read_only: bool = False, **fields: Any) -> Node:
    now = timezone.now()
    values: dict[str, Any] = {
        "name": name, "host": "10.0.0.1", "port": 9473, "api_token_enc": encrypt(TOKEN),
        "api_token_prefix": TOKEN[:12],
        "token_permission": Node.Permission.READ_ONLY if read_only else Node.Permission.FULL_ACCESS,
        "role": Node.Role.WORKER, "last_poll_at": now, "last_success_at": now,
    }
    values.update(fields)
    return Node.objects.create(**values)


def make_vm(node: Node, name: str, state: str = "stopped", **fields: Any) -> VM:
    now = timezone.now()
    values: dict[str, Any] = {"node": node, "remote_id": f"{node.name}-{name}", "name": name, "state": state,
                              "last_seen_at": now, "changed_at": now}
    values.update(fields)
    return VM.objects.create(**values)
