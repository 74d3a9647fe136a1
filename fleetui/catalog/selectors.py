"""Reads of the catalog app."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db.models import QuerySet
from django.utils import timezone

from fleetui.catalog.models import SharedFolder, SharedFolderSync, TemplateSync, VMTemplate
from fleetui.images.models import IPSW
from fleetui.nodes.models import Node
from fleetui.vms.models import VM


def stale_after() -> timedelta:
    """Cached lists older than this are re-read when someone looks at them."""
    return timedelta(seconds=3 * settings.POLL_INTERVAL)


def templates(*, node_id: int | None = None, category: str = "") -> QuerySet[VMTemplate]:
    qs = VMTemplate.objects.select_related("node").order_by("name", "node__name")
    if node_id:
        qs = qs.filter(node_id=node_id)
    if category:
        qs = qs.filter(category=category)
    return qs


def template_syncs() -> dict[int, TemplateSync]:
    return {sync.node_id: sync for sync in TemplateSync.objects.all()}


def nodes_with_stale_templates(nodes: list[Node], syncs: dict[int, TemplateSync]) -> list[Node]:
    horizon = timezone.now() - stale_after()
    out = []
    for node in nodes:
        sync = syncs.get(node.pk)
        if sync is None or sync.synced_at is None or sync.synced_at < horizon:
            out.append(node)
    return out


def folders(vm: VM) -> list[SharedFolder]:
    return list(SharedFolder.objects.filter(vm=vm).order_by("name"))


def folder_sync(vm: VM) -> SharedFolderSync | None:
    return SharedFolderSync.objects.filter(vm=vm).first()


def folders_stale(sync: SharedFolderSync | None) -> bool:
    return sync is None or sync.synced_at is None or sync.synced_at < timezone.now() - stale_after()


def ipsws(*, node_id: int | None = None) -> QuerySet[IPSW]:
    qs = IPSW.objects.select_related("node").order_by("node__name", "name", "path")
    if node_id:
        qs = qs.filter(node_id=node_id)
    return qs
