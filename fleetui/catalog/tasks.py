"""Celery entry points that refresh the template and shared-folder caches (sent to queue "polls": reads only).

Pages enqueue them when what they show is older than a few poll intervals; a Redis lock per node/VM
keeps one refresh of the same thing from running twice at once.
"""

from __future__ import annotations

import logging

from celery import shared_task
from ciderstack import FleetClient
from ciderstack.errors import FleetError
from django.core.cache import cache

from fleetui.catalog import services
from fleetui.core.crypto import CredentialUnreadable
from fleetui.nodes.models import Node
from fleetui.vms.models import VM

logger = logging.getLogger(__name__)
LOCK_SECONDS = 60


def _client(node: Node) -> FleetClient:
    from fleetui.nodes.client import client_for

    return client_for(node)


@shared_task(ignore_result=True)
def refresh_templates(node_id: int) -> None:
    node = Node.objects.filter(pk=node_id).first()
    if node is None or not cache.add(f"catalog:templates-lock:{node_id}", 1, timeout=LOCK_SECONDS):
        return
    try:
        with _client(node) as client:
            count = services.templates_store(node_id=node.pk, templates=client.list_templates())
        logger.info("templates of node %s refreshed: %d", node.name, count)
    except CredentialUnreadable:
        services.templates_sync_failed(node_id=node.pk, error="the stored token cannot be decrypted; re-enter it")
    except FleetError as exc:
        services.templates_sync_failed(node_id=node.pk, error=str(exc))
    finally:
        cache.delete(f"catalog:templates-lock:{node_id}")


@shared_task(ignore_result=True)
def refresh_shared_folders(vm_id: int) -> None:
    vm = VM.objects.select_related("node").filter(pk=vm_id).first()
    if vm is None or vm.is_gone or not cache.add(f"catalog:folders-lock:{vm_id}", 1, timeout=LOCK_SECONDS):
        return
    try:
        with _client(vm.node) as client:
            services.folders_store(vm_id=vm.pk, folders=client.list_shared_folders(vm.remote_id))
    except CredentialUnreadable:
        services.folders_sync_failed(vm_id=vm.pk, error="the stored token cannot be decrypted; re-enter it")
    except FleetError as exc:
        services.folders_sync_failed(vm_id=vm.pk, error=str(exc))
    finally:
        cache.delete(f"catalog:folders-lock:{vm_id}")
