"""The operation that runs a shell command on a VM over SSH (ExecCommand).

The SSH password arrives in `secrets` (from the encrypted, short-lived Redis store that
operation_create filled); it is handed to the SDK, which redacts it from anything the node
echoes back, and it is never put in the Operation's params or result.
"""

from __future__ import annotations

from typing import Any

from ciderstack import FleetClient
from ciderstack.errors import FleetNodeError
from django.views.decorators.debug import sensitive_variables

from fleetui.activity.models import Operation
from fleetui.activity.registry import operation_handler

# Output kept with the Operation (and shown) per stream; a command that prints more is cut.
OUTPUT_CAP_CHARS = 64 * 1024


def _cap(text: str) -> tuple[str, bool]:
    if len(text) <= OUTPUT_CAP_CHARS:
        return text, False
    return text[:OUTPUT_CAP_CHARS], True


@operation_handler("vm.exec", label="Run command", needs_vm=True, mutating=True)
@sensitive_variables("secrets")
def vm_exec(op: Operation, client: FleetClient, secrets: dict[str, str]) -> dict[str, Any]:
    params = op.params
    result = client.exec_command(
        op.vm_remote_id,
        params["command"],
        ssh_user=params.get("ssh_user") or None,
        ssh_password=secrets.get("password") or None,
        timeout=int(params["timeout"]),
    )
    if not result.success and result.exit_code == -1 and not result.stdout and not result.duration:
        # The node did not run it at all (VM not running, SSH refused, ...): that is a failed operation.
        raise FleetNodeError(f"the command did not run: {result.stderr.strip() or 'the node gave no reason'}")
    stdout, stdout_cut = _cap(result.stdout)
    stderr, stderr_cut = _cap(result.stderr)
    return {
        "exit_code": result.exit_code,
        "success": bool(result.success),
        "duration": result.duration,
        "stdout": stdout,
        "stderr": stderr,
        "stdout_truncated": stdout_cut,
        "stderr_truncated": stderr_cut,
    }
