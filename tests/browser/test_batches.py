"""Bulk actions in the browser: tick VMs on two nodes in the VM list (the ticks survive the table's
live refresh), bulk-start them, and watch each VM's result arrive on the batch page without a
reload; then "select all matching" a filter takes every VM it matches.

Everything real: headless Chromium (Playwright) against Django's live server, Operations run by a
real Celery worker on the real Redis broker, the nodes are fleetsim over HTTP. A thread stands in
for Celery beat (polling the nodes every 0.3 s).
"""

from __future__ import annotations

import os
import re
from typing import Any

import pytest

from fleetui.activity.models import Operation
from fleetui.batches.models import Batch
from fleetui.nodes.services import node_poll
from fleetui.vms.models import VM

pytestmark = [pytest.mark.browser, pytest.mark.worker, pytest.mark.django_db(transaction=True)]

TIMEOUT_MS = 15_000
SCREENSHOTS = bool(os.environ.get("FLEETUI_TEST_SCREENSHOTS"))


def test_select_vms_bulk_start_and_watch_results_arrive(celery_worker: Any, live_server: Any, logged_in_page: Any,
                                                        sim_fleet: Any, register_sim: Any, quick_poller: Any,
                                                        settings: Any) -> None:
    settings.POLL_INTERVAL = 1  # the VM table refreshes every second (the ticks must survive it)
    fleet = sim_fleet(nodes=2, vms_per_node=2, seed=31, transition_seconds=0.5, latency_ms=100)
    nodes = []
    for sim in fleet.nodes:
        for vm in sim.state.vms.values():
            vm.state = "stopped"
        node = register_sim(sim)
        assert node_poll(node_id=node.pk, force=True).ok
        quick_poller(node.pk)
        nodes.append(node)
    first, second = (VM.objects.filter(node=node).order_by("name").first() for node in nodes)
    page = logged_in_page("operator", "e2e-bulk-operator")
    page.on("dialog", lambda dialog: dialog.accept())

    # 1. Tick one VM on each node; the ticks survive the table's live refresh.
    page.goto("/vms/?state=stopped")
    page.evaluate("window.__swaps = 0; document.addEventListener('htmx:afterSettle', () => window.__swaps++)")
    page.check(f"input.bulk-vm[value='{first.pk}']")
    page.check(f"input.bulk-vm[value='{second.pk}']")
    page.screenshot(path="var/test-batches-list.png") if SCREENSHOTS else None
    assert page.inner_text("#bulk-count") == "2 ticked"
    page.wait_for_function("() => window.__swaps >= 1")
    assert page.is_checked(f"input.bulk-vm[value='{first.pk}']")
    assert page.is_checked(f"input.bulk-vm[value='{second.pk}']")
    assert page.locator("input.bulk-vm:checked").count() == 2

    # 2. Review, then start them.
    page.select_option("#bulk-action", "start")
    page.click("#bulk-review")
    page.wait_for_url("**/batches/new/")
    assert page.locator("#batch-plan tr[data-plan=run]").count() == 2
    page.click("#batch-confirm")
    page.wait_for_url(re.compile(r"/batches/[0-9a-f-]{36}/$"))
    batch = Batch.objects.get()
    assert page.url.endswith(f"/batches/{batch.pk}/")

    # 3. Each VM's result arrives on this page without a reload (each start takes the node ~1 s with
    # the re-poll at 100 ms a call, so the page opens before they have finished).
    page.evaluate("window.__sameDocument = true")
    assert page.get_attribute("#batch-live", "data-settled") == "false"
    page.screenshot(path="var/test-batches-live.png") if SCREENSHOTS else None
    page.wait_for_selector("#batch-live[data-settled=true]")
    assert page.evaluate("window.__sameDocument") is True
    assert page.locator("#batch-items tr[data-status=succeeded]").count() == 2
    assert "2 succeeded" in page.inner_text("#batch-counts")
    page.screenshot(path="var/test-batches-done.png") if SCREENSHOTS else None
    assert sorted(Operation.objects.filter(batch_item__batch=batch).values_list("status", flat=True)) == \
        ["succeeded", "succeeded"]
    for node, vm in zip(fleet.nodes, (first, second), strict=True):
        assert node.state.vms[vm.remote_id].state in ("starting", "running")

    # 4. "Select all matching" the filter (node 2) takes every VM of it, ticked or not.
    page.goto(f"/vms/?node={nodes[1].pk}")
    page.select_option("#bulk-action", "stop")
    page.click("#bulk-all-matching")
    page.wait_for_url("**/batches/new/")
    names = page.locator("#batch-plan tbody tr").evaluate_all("rows => rows.map(r => r.dataset.vm)")
    assert sorted(names) == sorted(VM.objects.filter(node=nodes[1]).values_list("name", flat=True))


def test_fan_out_a_command_and_read_each_vms_result(celery_worker: Any, live_server: Any, logged_in_page: Any,
                                                    sim_fleet: Any, register_sim: Any, quick_poller: Any) -> None:
    """Run one command on running VMs of two nodes: each VM's exit code and output arrive live, the
    password typed once never shows again, and the failures filter and CSV export answer."""
    fleet = sim_fleet(nodes=2, vms_per_node=1, seed=37, transition_seconds=0.2)
    vms = []
    for sim in fleet.nodes:
        for vm in sim.state.vms.values():
            vm.state = "running"
        node = register_sim(sim)
        assert node_poll(node_id=node.pk, force=True).ok
        quick_poller(node.pk)
        vms.append(VM.objects.get(node=node))
    password = "fan-out-Secret-0451"
    page = logged_in_page("operator", "e2e-fanout-operator")

    page.goto("/vms/?state=running")
    for vm in vms:
        page.check(f"input.bulk-vm[value='{vm.pk}']")
    page.select_option("#bulk-action", "exec")
    page.click("#bulk-review")
    page.wait_for_url("**/batches/new/")
    assert page.locator("#batch-plan tr[data-plan=run]").count() == 2
    page.fill("#batch-confirm-form [name=command]", "echo fanned-out-hello")
    page.fill("#batch-confirm-form [name=ssh_password]", password)
    page.click("#batch-confirm")
    page.wait_for_url(re.compile(r"/batches/[0-9a-f-]{36}/$"))

    page.wait_for_selector("#batch-live[data-settled=true]", timeout=TIMEOUT_MS)
    rows = page.locator("#batch-items tr[data-status=succeeded]")
    assert rows.count() == 2
    assert page.locator("#batch-items td[data-exit='0']").count() == 2
    assert page.content().count("fanned-out-hello") >= 2
    assert password not in page.content()

    page.click("#batch-only-failures")
    page.wait_for_selector("#batch-show-all")
    assert page.locator("#batch-items tr[data-status]").count() == 0
    csv = page.request.get(page.locator("#batch-csv").get_attribute("href")).text()
    assert csv.count("fanned-out-hello") == 0  # only the failures: there are none
    csv_all = page.request.get(f"/batches/{Batch.objects.get().pk}/export/?format=csv").text()
    assert csv_all.count("fanned-out-hello") == 2 and password not in csv_all
