"""Operation handlers for templates, shared folders, IPSW downloads and info, and image pushes.

Handlers that change a list read it back and store it, so the cached view is right as soon as the
operation has finished.
"""

from __future__ import annotations

from typing import Any

from ciderstack import FleetClient
from ciderstack.errors import FleetError

from fleetui.activity.models import Operation
from fleetui.activity.registry import operation_handler
from fleetui.catalog import services
from fleetui.provisioning.follow import new_task_id, task_ids

# GetIPSWInfo answers with whatever metadata the node has; keep scalars, and not too many of them.
IPSW_INFO_MAX_KEYS = 40
IPSW_INFO_MAX_TEXT = 500


@operation_handler("template.create", label="Create template from VM", needs_vm=True, mutating=True)
def template_create(op: Operation, client: FleetClient, secrets: dict[str, str]) -> dict[str, Any]:
    params = op.params
    template = client.create_template_from_vm(
        op.vm_remote_id,
        params["name"],
        description=params.get("description") or None,
        category=params.get("category") or None,
        keep_original_vm=bool(params.get("keep_original", True)),
    )
    if op.node_id is not None:
        services.template_upsert(node_id=op.node_id, template=template)
    return {"template_id": template.id, "name": template.name or params["name"],
            "kept_original": bool(params.get("keep_original", True))}


@operation_handler("template.delete", label="Delete template", needs_vm=False, mutating=True)
def template_delete(op: Operation, client: FleetClient, secrets: dict[str, str]) -> dict[str, Any]:
    template_id = op.params["template_id"]
    client.delete_template(template_id)
    if op.node_id is not None:
        services.VMTemplate.objects.filter(node_id=op.node_id, remote_id=template_id).delete()
    return {"deleted": op.params.get("name", template_id)}


@operation_handler("template.read", label="Read template", needs_vm=False, mutating=False)
def template_read(op: Operation, client: FleetClient, secrets: dict[str, str]) -> dict[str, Any]:
    """GetTemplate by id (a template's page) or by name (the lookup form); the cache follows the answer."""
    template_id = op.params.get("template_id") or ""
    if template_id:
        template = client.get_template(template_id)
    else:
        template = client.get_template_by_name(op.params["name"])
    if template is None:
        if template_id and op.node_id is not None:
            services.VMTemplate.objects.filter(node_id=op.node_id, remote_id=template_id).delete()
        return {"found": False}
    if op.node_id is not None:
        services.template_upsert(node_id=op.node_id, template=template)
    return {"found": True, "template_id": template.id, "name": template.name, "category": template.category,
            "macos_version": template.macos_version, "default_cpu": template.default_cpu,
            "default_memory_mb": template.default_memory_mb, "default_disk_gb": template.default_disk_gb}


def _reread_folders(op: Operation, client: FleetClient) -> int | None:
    if op.vm_id is None:
        return None
    try:
        return services.folders_store(vm_id=op.vm_id, folders=client.list_shared_folders(op.vm_remote_id))
    except FleetError as exc:
        # The change itself went through; the list is re-read by the next refresh.
        services.folders_sync_failed(vm_id=op.vm_id, error=str(exc))
        return None


@operation_handler("folder.add", label="Add shared folder", needs_vm=True, mutating=True)
def folder_add(op: Operation, client: FleetClient, secrets: dict[str, str]) -> dict[str, Any]:
    params = op.params
    client.add_shared_folder(op.vm_remote_id, params["name"], params["host_path"],
                             read_only=bool(params.get("read_only")), mount_tag=params.get("mount_tag") or None)
    return {"name": params["name"], "folders": _reread_folders(op, client)}


@operation_handler("folder.remove", label="Remove shared folder", needs_vm=True, mutating=True)
def folder_remove(op: Operation, client: FleetClient, secrets: dict[str, str]) -> dict[str, Any]:
    client.remove_shared_folder(op.vm_remote_id, op.params["name"])
    return {"name": op.params["name"], "folders": _reread_folders(op, client)}


@operation_handler("folder.enable", label="Enable or disable shared folder", needs_vm=True, mutating=True)
def folder_enable(op: Operation, client: FleetClient, secrets: dict[str, str]) -> dict[str, Any]:
    enabled = bool(op.params["enabled"])
    client.set_shared_folder_enabled(op.vm_remote_id, op.params["name"], enabled)
    return {"name": op.params["name"], "enabled": enabled, "folders": _reread_folders(op, client)}


@operation_handler("ipsw.download", label="Download IPSW", needs_vm=False, mutating=True)
def ipsw_download(op: Operation, client: FleetClient, secrets: dict[str, str]) -> dict[str, Any]:
    params = op.params
    try:
        before: set[str] | None = task_ids(client)
    except FleetError:
        before = None
    client.download_ipsw(params["url"], params["name"], params["version"])
    task_id = ""
    if before is not None:
        try:
            task_id = new_task_id(client, before, title_hint=params["name"])
        except FleetError:
            task_id = ""
    return {"task_id": task_id, "name": params["name"], "version": params["version"]}


def _scalar(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float):
        return value
    return str(value)[:IPSW_INFO_MAX_TEXT]


@operation_handler("ipsw.info", label="Read IPSW info", needs_vm=False, mutating=False)
def ipsw_info(op: Operation, client: FleetClient, secrets: dict[str, str]) -> dict[str, Any]:
    raw = client.get_ipsw_info(op.params["path"])
    info = {str(key)[:100]: _scalar(value) for key, value in list(raw.items())[:IPSW_INFO_MAX_KEYS]
            if key not in ("success", "message")}
    return {"path": op.params["path"], "info": info}


@operation_handler("image.push", label="Push VM as OCI image", needs_vm=True, mutating=True)
def image_push(op: Operation, client: FleetClient, secrets: dict[str, str]) -> dict[str, Any]:
    params = op.params
    task_id = client.push_image(op.vm_remote_id, params["image_name"], insecure=bool(params.get("insecure")))
    return {"task_id": task_id, "image_name": params["image_name"]}
