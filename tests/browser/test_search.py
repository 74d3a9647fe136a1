"""The header search in headless Chromium: press "/" anywhere, type a VM's name, see the grouped
results appear as you type, press Enter and land on the VM's page."""

from __future__ import annotations

from typing import Any

import pytest
from django.utils import timezone
from support.browser import shot

from fleetui.nodes.models import Node
from fleetui.vms.models import VM, VMState

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]



def test_slash_then_a_vm_name_then_enter_opens_the_vm(live_server: Any, logged_in_page: Any) -> None:
    now = timezone.now()
    node = Node.objects.create(name="mac-search", host="10.0.0.7", last_success_at=now, last_poll_at=now)
    vms = {}
    for name in ("build-runner-1", "build-runner-12", "xcode-build-runner-1", "web-1"):
        vms[name] = VM.objects.create(node=node, remote_id=name, name=name, state=VMState.RUNNING,
                                      last_seen_at=now, changed_at=now)
    page = logged_in_page("viewer", "vera")

    page.goto("/")
    page.wait_for_selector("#search-input")

    page.locator("body").click(position={"x": 5, "y": 300})
    page.keyboard.press("/")
    assert page.evaluate("document.activeElement && document.activeElement.id") == "search-input"
    page.keyboard.type("build-runner-1")
    page.wait_for_selector('#search-results .search-dropdown[data-q="build-runner-1"] a.search-hit')
    shot(page, "search-dropdown")
    hits = page.locator("#search-results a.search-hit .search-hit-name").all_inner_texts()
    assert hits[0] == "build-runner-1"  # the exact name first, then prefixes, then the rest
    assert set(hits) == {"build-runner-1", "build-runner-12", "xcode-build-runner-1"}
    assert page.locator("#search-results .search-group-label").all_text_contents() == ["VMs"]

    page.keyboard.press("Enter")
    page.wait_for_url(f"{live_server.url}/vms/{vms['build-runner-1'].pk}/")
    assert "build-runner-1" in page.title()

    # Enter before the results arrived: the server picks the best match.
    page.keyboard.press("/")
    page.keyboard.type("web-1")
    page.keyboard.press("Enter")
    page.wait_for_url(f"{live_server.url}/vms/{vms['web-1'].pk}/")

    # Escape closes the results; "/" typed into a field stays a character.
    page.keyboard.press("/")
    page.keyboard.type("build")
    page.wait_for_selector("#search-results a.search-hit")
    page.keyboard.press("Escape")
    assert page.locator("#search-results a.search-hit").count() == 0
    page.fill("#search-input", "")
    page.focus("#search-input")
    page.keyboard.type("a/b")
    assert page.input_value("#search-input") == "a/b"
    page.wait_for_selector('#search-results .search-dropdown[data-q="a/b"] .search-empty')  # nothing in flight
    assert not [e for e in page.console_errors if "Content Security Policy" in e or "Refused" in e], \
        page.console_errors
