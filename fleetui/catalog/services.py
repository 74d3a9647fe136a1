"""Writes of the catalog app: the template and shared-folder caches, and Operations for their changes,
IPSW downloads and info, and image pushes."""

from __future__ import annotations

from typing import Any

from ciderstack.types import Template
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from fleetui.activity.models import Operation
from fleetui.activity.services import operation_create
from fleetui.catalog.models import SharedFolder, SharedFolderSync, TemplateSync, VMTemplate
from fleetui.nodes.models import Node
from fleetui.vms.models import VM


def _template_fields(template: Template) -> dict[str, Any]:
    return {
        "name": (template.name or "")[:255],
        "description": template.description or "",
        "macos_version": (template.macos_version or "")[:64],
        "icon_name": (template.icon_name or "")[:64],
        "category": (template.category or "")[:32],
        "source_type": (template.source_type or "")[:32],
        "created_at": template.created_at,
        "modified_at": template.modified_at,
        "disk_size_bytes": template.disk_size_bytes,
        "default_cpu": template.default_cpu if template.default_cpu and template.default_cpu > 0 else None,
        "default_memory_mb": template.default_memory_mb if template.default_memory_mb and template.default_memory_mb > 0
        else None,
        "default_disk_gb": template.default_disk_gb if template.default_disk_gb and template.default_disk_gb > 0
        else None,
    }


def template_upsert(*, node_id: int, template: Template) -> VMTemplate | None:
    if not template.id:
        return None
    row, _ = VMTemplate.objects.update_or_create(
        node_id=node_id, remote_id=template.id, defaults={**_template_fields(template), "seen_at": timezone.now()}
    )
    return row


@transaction.atomic
def templates_store(*, node_id: int, templates: list[Template]) -> int:
    """Replace what we know of a node's templates with the node's full list; returns how many."""
    now = timezone.now()
    seen = []
    for template in templates:
        if template_upsert(node_id=node_id, template=template):
            seen.append(template.id)
    VMTemplate.objects.filter(node_id=node_id).exclude(remote_id__in=seen).delete()
    TemplateSync.objects.update_or_create(node_id=node_id, defaults={"synced_at": now, "error": ""})
    return len(seen)


def templates_sync_failed(*, node_id: int, error: str) -> None:
    TemplateSync.objects.update_or_create(node_id=node_id, defaults={"error": error[:500], "error_at": timezone.now()})


def _as_bool(value: Any, default: bool) -> bool:
    return value if isinstance(value, bool) else default


@transaction.atomic
def folders_store(*, vm_id: int, folders: list[dict[str, Any]]) -> int:
    """Replace what we know of a VM's shared folders with the node's full list; returns how many."""
    now = timezone.now()
    names = []
    for folder in folders:
        name = folder.get("name")
        if not isinstance(name, str) or not name:
            continue
        host_path = folder.get("hostPath")
        tag = folder.get("mountTag")
        SharedFolder.objects.update_or_create(vm_id=vm_id, name=name[:255], defaults={
            "host_path": host_path[:1024] if isinstance(host_path, str) else "",
            "read_only": _as_bool(folder.get("readOnly"), False),
            "is_enabled": _as_bool(folder.get("isEnabled"), True),
            "mount_tag": tag[:255] if isinstance(tag, str) else "",
            "seen_at": now,
        })
        names.append(name[:255])
    SharedFolder.objects.filter(vm_id=vm_id).exclude(name__in=names).delete()
    SharedFolderSync.objects.update_or_create(vm_id=vm_id, defaults={"synced_at": now, "error": ""})
    return len(names)


def folders_sync_failed(*, vm_id: int, error: str) -> None:
    SharedFolderSync.objects.update_or_create(vm_id=vm_id, defaults={"error": error[:500], "error_at": timezone.now()})


# ---------------------------------------------------------------- operations asked from pages

def template_create_request(
    *, vm: VM, user: Any, request: HttpRequest | None, name: str, description: str, category: str,
    keep_original: bool,
) -> Operation:
    return operation_create(kind="template.create", user=user, node=vm.node, vm=vm, request=request, params={
        "name": name, "description": description, "category": category, "keep_original": keep_original})


def template_read_request(
    *, node: Node, user: Any, request: HttpRequest | None, template_id: str = "", name: str = ""
) -> Operation:
    params = {"template_id": template_id} if template_id else {"name": name}
    return operation_create(kind="template.read", user=user, node=node, request=request, params=params)


def template_delete_request(*, template: VMTemplate, user: Any, request: HttpRequest | None) -> Operation:
    return operation_create(kind="template.delete", user=user, node=template.node, request=request,
                            params={"template_id": template.remote_id, "name": template.name})


def folder_add_request(
    *, vm: VM, user: Any, request: HttpRequest | None, name: str, host_path: str, read_only: bool, mount_tag: str,
) -> Operation:
    params: dict[str, Any] = {"name": name, "host_path": host_path, "read_only": read_only}
    if mount_tag:
        params["mount_tag"] = mount_tag
    return operation_create(kind="folder.add", user=user, node=vm.node, vm=vm, params=params, request=request)


def folder_remove_request(*, vm: VM, user: Any, request: HttpRequest | None, name: str) -> Operation:
    return operation_create(kind="folder.remove", user=user, node=vm.node, vm=vm, params={"name": name},
                            request=request)


def folder_enable_request(*, vm: VM, user: Any, request: HttpRequest | None, name: str, enabled: bool) -> Operation:
    return operation_create(kind="folder.enable", user=user, node=vm.node, vm=vm,
                            params={"name": name, "enabled": enabled}, request=request)


def ipsw_download_request(
    *, node: Node, user: Any, request: HttpRequest | None, url: str, name: str, version: str
) -> Operation:
    return operation_create(kind="ipsw.download", user=user, node=node, request=request,
                            params={"url": url, "name": name, "version": version})


def ipsw_info_request(*, node: Node, user: Any, request: HttpRequest | None, path: str) -> Operation:
    return operation_create(kind="ipsw.info", user=user, node=node, request=request, params={"path": path})


def image_push_request(*, vm: VM, user: Any, request: HttpRequest | None, image_name: str, insecure: bool) -> Operation:
    return operation_create(kind="image.push", user=user, node=vm.node, vm=vm, request=request,
                            params={"image_name": image_name, "insecure": insecure})
