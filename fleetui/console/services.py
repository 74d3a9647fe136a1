"""Writes of the console app."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.views.decorators.debug import sensitive_variables

from fleetui.activity.models import Operation
from fleetui.activity.services import operation_create
from fleetui.vms.models import VM


@sensitive_variables("ssh_password")
def vm_exec_request(
    *, vm: VM, user: Any, request: HttpRequest | None, command: str, ssh_user: str, timeout: int, ssh_password: str = ""
) -> Operation:
    """Record the command as an Operation; the password goes only to the encrypted, short-lived secret store."""
    return operation_create(
        kind="vm.exec", user=user, node=vm.node, vm=vm,
        params={"command": command, "ssh_user": ssh_user, "timeout": timeout},
        secrets={"password": ssh_password} if ssh_password else None,
        request=request,
    )
