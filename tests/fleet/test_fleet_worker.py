"""Cleanup through the pages and a real Celery worker against fleetsim: the dry run, then the run."""

from __future__ import annotations

import time

import pytest
from ciderstack import FleetClient
from django.urls import reverse

from fleetui.activity.models import Operation
from fleetui.nodes.services import node_poll
from fleetui.vms.models import VM

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def test_the_preview_then_the_run(celery_worker, sim_fleet, register_node, as_role, wait_for):
    sim = sim_fleet(nodes=1, vms_per_node=4).nodes[0]
    node = register_node(sim)
    with FleetClient(sim.host, api_token=sim.api_token, port=sim.port, timeout=5) as admin_client:
        vms = admin_client.list_vms()
        admin_client.update_vm_settings(vms[0].id, intent="disposable", ttl_seconds=1)
        admin_client.update_vm_settings(vms[1].id, intent="persistent", ttl_seconds=1)
        admin_client.update_vm_settings(vms[2].id, intent="disposable", ttl_seconds=3600)
    time.sleep(1.1)
    node_poll(node_id=node.pk, force=True)

    admin = as_role("admin")
    # No VM settings read yet: the dry run says so, and the button has the workers read them.
    preview = admin.get(reverse("utilities-cleanup", args=[node.pk]))
    assert len(preview.context["preview"].unknown) == 4 and preview.context["preview"].doomed == []
    admin.post(reverse("utilities-cleanup-refresh", args=[node.pk]))
    wait_for(lambda: not VM.objects.filter(node=node, settings_at__isnull=True).exists(), timeout=15,
             message="the workers to read every VM's settings")
    preview = admin.get(reverse("utilities-cleanup", args=[node.pk]))
    assert preview.context["preview"].unknown == []
    assert [v.remote_id for v in preview.context["preview"].doomed] == [vms[0].id]

    response = admin.post(reverse("utilities-cleanup", args=[node.pk]), {})
    op = Operation.objects.get(kind="node.cleanup")
    assert response["Location"] == reverse("cleanup-result", args=[op.id])
    wait_for(lambda: Operation.objects.get(pk=op.pk).is_finished, timeout=15, message="the cleanup")
    op.refresh_from_db()
    assert op.status == "succeeded", op.error
    assert op.result["cleaned_count"] == 1 == op.params["expected_count"]
    page = admin.get(reverse("cleanup-result", args=[op.id])).content.decode()
    assert "removed <strong>1</strong> VM;" in page and "removed</span></td>" in page and "counts differ" not in page
    assert vms[0].id not in sim.state.vms and vms[1].id in sim.state.vms
    # The worker re-polled the node after the run: the VM shows as gone.
    assert VM.objects.get(node=node, remote_id=vms[0].id).is_gone
