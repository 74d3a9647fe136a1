"""The whole thing in headless Chromium: a live Django server, a real Celery worker on the real
Redis broker, and a fleetsim fleet over HTTP. Log in, see the fleet, start a stopped VM and see it
running without reloading the page."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import Group, User
from fleetsim import SimFleet
from support.browser import shot, sign_in

from fleetui.nodes.models import Node
from fleetui.vms.models import VM, VMState

pytestmark = [pytest.mark.browser, pytest.mark.worker, pytest.mark.django_db(transaction=True)]

PASSWORD = "browser-pass-123"


def test_an_operator_starts_a_vm_and_sees_it_running_without_a_reload(
    live_server: Any, celery_worker: Any, sim_fleet: Callable[..., SimFleet],
    register_sim: Callable[..., Node], wait_for: Callable[..., Any], browser_page: Any,
) -> None:
    fleet = sim_fleet(nodes=3, vms_per_node=3, transition_seconds=0.5)
    nodes = [register_sim(sim) for sim in fleet.nodes]
    wait_for(lambda: Node.objects.filter(last_success_at__isnull=False).count() == 3, timeout=15,
             message="the worker's first poll of every node")
    user = User.objects.create_user("olga", password=PASSWORD)
    # Transactional tests flush the database, the roles migration's groups included.
    user.groups.add(Group.objects.get_or_create(name="operator")[0])
    page = browser_page

    page.goto(live_server.url + "/")
    assert "/accounts/login/" in page.url
    sign_in(page, "olga", PASSWORD)
    page.wait_for_selector("#fleet-overview")
    for node in nodes:
        assert page.locator(f'article[data-node="{node.name}"] [data-health="online"]').count() == 1
    shot(page, "overview")

    vm = VM.objects.filter(state=VMState.STOPPED).select_related("node").order_by("name").first()
    assert vm is not None
    page.goto(f"{live_server.url}/vms/?state=stopped")
    page.click(f'tr[data-vm="{vm.name}"] a[href="/vms/{vm.pk}/"]')
    page.wait_for_selector('#vm-state[data-state="stopped"]')
    page.evaluate("window.__noReload = true")  # gone if the page reloads or navigates

    page.click('button[data-action="start"]')
    # The Operation shows up at once, pending, then settles; the VM's state follows without a reload.
    page.wait_for_selector("#vm-operations .op")
    page.wait_for_selector('#vm-operations .op[data-status="succeeded"]', timeout=20_000)
    page.wait_for_selector('#vm-state[data-state="running"]', timeout=20_000)
    assert page.evaluate("window.__noReload === true")
    assert page.locator('button[data-action="stop"]').count() == 1  # running now offers stop
    shot(page, "vm-running")

    remote = fleet.nodes[[n.pk for n in nodes].index(vm.node_id)].state.vms[vm.remote_id]
    assert remote.state == "running"  # the simulated node really runs it
    assert not [e for e in page.console_errors if "Content Security Policy" in e or "Refused" in e], \
        page.console_errors


def test_the_pages_work_without_javascript(live_server: Any, chromium: Any) -> None:
    """Links keep their href and forms post and redirect: the same flow with JavaScript off."""
    from django.utils import timezone

    from fleetui.activity.models import Operation
    from fleetui.vms.models import Snapshot

    now = timezone.now()
    node = Node.objects.create(name="mac-plain", host="10.0.0.5", token_permission="fullAccess",
                               last_success_at=now, last_poll_at=now, stats_at=now)
    vm = VM.objects.create(node=node, remote_id="v1", name="plain-vm", state=VMState.STOPPED, last_seen_at=now,
                           changed_at=now)
    snap = Snapshot.objects.create(vm=vm, remote_id="s1", name="snap-plain", seen_at=now, created_at=now)
    user = User.objects.create_user("paul", password=PASSWORD)
    user.groups.add(Group.objects.get_or_create(name="operator")[0])

    page = chromium.new_context(base_url=live_server.url, java_script_enabled=False).new_page()
    page.set_default_timeout(10_000)
    sign_in(page, "paul", PASSWORD, submit="form.stacked button[type=submit]")
    page.click('nav.mainnav a:has-text("VMs")')
    page.click('tr[data-vm="plain-vm"] a')
    page.click('button[data-action="start"]')
    page.wait_for_selector(".alert-info:has-text('Start requested for plain-vm.')")
    assert page.url.endswith(f"/vms/{vm.pk}/")
    # Pending, or already failed if a worker from another test ran it (10.0.0.5 answers nothing).
    assert page.locator('#vm-operations .op').count() == 1
    page.click('tr[data-snapshot="snap-plain"] a:has-text("Delete")')  # a confirmation page
    assert page.url.endswith(f"/vms/{vm.pk}/snapshots/{snap.pk}/delete/")
    page.click("button:has-text('Delete snapshot')")
    page.wait_for_selector(".alert-error, .alert-info")
    assert page.url.endswith(f"/vms/{vm.pk}/")
    accepted = page.locator(".alert-info:has-text('Delete of snapshot snap-plain requested.')").count() == 1
    refused = page.locator(".alert-error:has-text('An operation on this VM is still running.')").count() == 1
    shot(page, "no-js")
    kinds = sorted(Operation.objects.values_list("kind", flat=True))
    # While the start is unfinished the delete is refused in words; once it has finished, it is recorded.
    assert accepted != refused
    assert kinds == (["snapshot.delete", "vm.start"] if accepted else ["vm.start"])
