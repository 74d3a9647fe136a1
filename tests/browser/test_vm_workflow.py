"""A VM's life in the browser: create it, set its TTL, run a command on it, snapshot it, delete it.

Everything real: headless Chromium (Playwright) against Django's live server, Operations run by a
real Celery worker on the real Redis broker, the node is fleetsim over HTTP. A thread stands in for
Celery beat (polling the node every 0.3 s) so the test does not wait for a 10 s schedule.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from fleetui.activity.models import Operation
from fleetui.nodes.services import node_poll
from fleetui.vms.models import VM

pytestmark = [pytest.mark.browser, pytest.mark.worker, pytest.mark.django_db(transaction=True)]

TIMEOUT_MS = 15_000


def test_create_lease_exec_snapshot_delete(celery_worker: Any, live_server: Any, logged_in_page: Any,
                                           sim_fleet: Any, register_sim: Any, quick_poller: Any) -> None:
    fleet = sim_fleet(nodes=1, vms_per_node=1, seed=11, transition_seconds=0.3, task_seconds=0.8)
    sim = fleet.nodes[0]
    node = register_sim(sim)
    assert node_poll(node_id=node.pk, force=True).ok
    quick_poller(node.pk)
    page = logged_in_page("operator", "e2e-operator")
    page.on("dialog", lambda dialog: dialog.accept())

    # 1. Create a VM from an OCI image the node has; the page follows the task to the new VM.
    page.goto("/vms/new/")
    assert page.locator("#capacity").get_by_text("most room").count() == 1
    page.fill("#id_name", "e2e-vm")
    page.fill("#id_cpu_count", "2")
    page.fill("#id_memory_gb", "4")
    page.fill("#id_disk_gb", "40")
    page.check("input[name=source][value=image]")
    page.select_option("#id_oci_image", index=1)
    page.click("#vm-create-form button[type=submit]")
    page.wait_for_url(re.compile(r"/vms/\d+/$"), timeout=TIMEOUT_MS)
    vm = VM.objects.get(node=node, name="e2e-vm")
    assert page.url.endswith(f"/vms/{vm.pk}/")
    assert sim.state.vms[vm.remote_id].name == "e2e-vm"

    # 2. Set its TTL (a 2-hour lease); the countdown runs live.
    page.goto(f"/vms/{vm.pk}/settings/")
    page.fill("#lease-set-amount", "2")
    page.select_option("#lease-set-form select[name=unit]", "hours")
    page.click("#lease-set-form button[type=submit]")
    page.wait_for_url(re.compile(rf"/vms/{vm.pk}/settings/$"))
    countdown = page.locator("#vm-lease-status [data-expires-at]")
    first = countdown.inner_text()
    assert re.fullmatch(r"1 h 59 min \d\d s left|2 h 00 min 00 s left", first), first
    page.wait_for_function(
        "t => document.querySelector('#vm-lease-status [data-expires-at]').textContent !== t", arg=first)
    vm.refresh_from_db()
    assert vm.ttl_seconds == 7200 and vm.expires_at is not None
    assert sim.state.vms[vm.remote_id].ttl_seconds == 7200

    # 3. Start it and run a command on it; the page polls the outcome.
    page.goto(f"/vms/{vm.pk}/")
    page.click("#vm-actions button[data-action=start]")
    page.wait_for_selector("#vm-state[data-state=running]")
    page.goto(f"/vms/{vm.pk}/exec/")
    page.fill("#id_command", "echo hello-from-e2e; sw_vers -productName")
    page.fill("#id_ssh_password", "e2e-Secret-pw")
    page.click("#vm-exec-form button[type=submit]")
    page.wait_for_selector("#exec-stdout")
    assert page.inner_text("#exec-stdout").strip() == "hello-from-e2e\nmacOS"
    assert "exit 0" in page.inner_text("#exec-result")
    assert "e2e-Secret-pw" not in page.content()

    # 4. Snapshot it from the VM page.
    page.goto(f"/vms/{vm.pk}/")
    page.fill("#snapshot-form [name=name]", "e2e-snap")
    page.click("#snapshot-form button[type=submit]")
    page.wait_for_selector("tr[data-snapshot='e2e-snap']")
    assert [s["name"] for s in sim.state.vms[vm.remote_id].snapshots] == ["e2e-snap"]

    # 5. Stop it, then delete it by typing its name.
    page.click("#vm-actions button[data-action=stop]")
    page.wait_for_selector("#vm-state[data-state=stopped]")
    page.goto(f"/vms/{vm.pk}/delete/")
    page.fill("#id_confirm_name", "e2e-vm")
    page.click("#vm-delete-form button[type=submit]")
    page.wait_for_url(re.compile(r"/vms/$"))
    assert vm.remote_id not in sim.state.vms
    kinds = list(Operation.objects.filter(vm=vm).order_by("created_at").values_list("kind", "status"))
    assert [k for k, _ in kinds] == ["vm.lease_set", "vm.start", "vm.exec", "snapshot.create", "vm.stop",
                                     "vm.delete"]
    assert all(status == "succeeded" for _, status in kinds), kinds
