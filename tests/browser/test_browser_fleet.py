"""The whole thing in headless Chromium: a live Django server, a real Celery worker on the real
Redis broker, and a fleetsim fleet over HTTP. Log in, see the fleet, start a stopped VM and see it
running without reloading the page."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.contrib.auth.models import Group, User
from fleetsim import SimFleet

from fleetui.nodes.models import Node
from fleetui.vms.models import VM, VMState

pytestmark = [pytest.mark.browser, pytest.mark.worker, pytest.mark.django_db(transaction=True)]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
PASSWORD = "browser-pass-123"
# Screenshots for a human to look at (never into the repo): set FLEETUI_SHOTS=/tmp/shots.
SHOTS = os.environ.get("FLEETUI_SHOTS", "")


@pytest.fixture()
def browser_page(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs its own event loop in this thread; Django then refuses ORM calls
    # here, though none of them run inside that loop. The live server thread is unaffected.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.set_default_timeout(15_000)
        page.console_errors = []  # type: ignore[attr-defined]
        page.on("console", lambda m: page.console_errors.append(m.text) if m.type == "error" else None)
        try:
            yield page
        finally:
            browser.close()


def _shot(page: Any, name: str) -> None:
    if SHOTS:
        os.makedirs(SHOTS, exist_ok=True)
        page.screenshot(path=os.path.join(SHOTS, f"browser-{name}.png"), full_page=True)


def test_an_operator_starts_a_vm_and_sees_it_running_without_a_reload(
    settings: Any, live_server: Any, celery_worker: Any, sim_fleet: Callable[..., SimFleet],
    register_sim: Callable[..., Node], wait_for: Callable[..., Any], browser_page: Any,
) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
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
    page.fill("#id_username", "olga")
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector("#fleet-overview")
    for node in nodes:
        assert page.locator(f'article[data-node="{node.name}"] [data-health="online"]').count() == 1
    _shot(page, "overview")

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
    _shot(page, "vm-running")

    remote = fleet.nodes[[n.pk for n in nodes].index(vm.node_id)].state.vms[vm.remote_id]
    assert remote.state == "running"  # the simulated node really runs it
    assert not [e for e in page.console_errors if "Content Security Policy" in e or "Refused" in e], \
        page.console_errors


def test_the_pages_work_without_javascript(settings: Any, live_server: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Links keep their href and forms post and redirect: the same flow with JavaScript off."""
    from django.utils import timezone
    from playwright.sync_api import sync_playwright

    from fleetui.activity.models import Operation
    from fleetui.vms.models import Snapshot

    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # see browser_page
    now = timezone.now()
    node = Node.objects.create(name="mac-plain", host="10.0.0.5", token_permission="fullAccess",
                               last_success_at=now, last_poll_at=now, stats_at=now)
    vm = VM.objects.create(node=node, remote_id="v1", name="plain-vm", state=VMState.STOPPED, last_seen_at=now,
                           changed_at=now)
    snap = Snapshot.objects.create(vm=vm, remote_id="s1", name="snap-plain", seen_at=now, created_at=now)
    user = User.objects.create_user("paul", password=PASSWORD)
    user.groups.add(Group.objects.get_or_create(name="operator")[0])

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(java_script_enabled=False)
        page.set_default_timeout(10_000)
        try:
            page.goto(live_server.url + "/accounts/login/")
            page.fill("#id_username", "paul")
            page.fill("#id_password", PASSWORD)
            page.click("form.stacked button[type=submit]")
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
            _shot(page, "no-js")
        finally:
            browser.close()
    kinds = sorted(Operation.objects.values_list("kind", flat=True))
    # While the start is unfinished the delete is refused in words; once it has finished, it is recorded.
    assert accepted != refused
    assert kinds == (["snapshot.delete", "vm.start"] if accepted else ["vm.start"])
