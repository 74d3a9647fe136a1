"""In headless Chromium, with a live server, a real Celery worker and fleetsim: an admin pairs the
dashboard with a node by its code, generates a token, sees it exactly once with a working copy
button, and finds it gone after a reload or the back button."""

from __future__ import annotations

import pytest
from ciderstack import FleetClient
from support.browser import shot

pytestmark = [pytest.mark.browser, pytest.mark.worker, pytest.mark.django_db(transaction=True)]

def test_generate_a_token_and_see_it_once(live_server, celery_worker, sim_fleet, register_node, users, login_as):
    sim = sim_fleet(nodes=1, vms_per_node=1).nodes[0]
    node = register_node(sim)
    page = login_as(users["admin"])
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)

    page.goto(f"{live_server.url}/access/nodes/{node.pk}/")
    page.fill("#id_code", sim.pairing_code)
    page.click("#pairing button[type=submit]")
    # The page follows the pairing live, then shows the node's tokens.
    page.wait_for_selector("#pairing .badge.state-ok", timeout=20_000)
    page.wait_for_selector("#tokens td:has-text('read-only')")
    shot(page, prefix="access", name="paired")

    page.fill("#id_name", "ci-runner")
    page.select_option("#id_permission", "readOnly")
    page.click("#tokens button:has-text('Generate')")
    token_input = page.wait_for_selector("#new-token", timeout=20_000)
    token = token_input.input_value()
    assert token.startswith("csk_") and token in sim.state.tokens
    shot(page, prefix="access", name="token-shown")

    page.click("button[data-copy-target='new-token']")
    page.wait_for_selector("[data-copy-status='new-token']:not(:empty)")
    status = page.text_content("[data-copy-status='new-token']")
    if status == "Copied.":
        assert page.evaluate("navigator.clipboard.readText()") == token
    else:  # no clipboard in this browser: the token is left selected for Ctrl+C
        assert "Ctrl+C" in status
        assert page.evaluate("window.getSelection().toString() || document.activeElement.value") == token

    with FleetClient(sim.host, api_token=token, port=sim.port, timeout=5) as fresh:
        assert fresh.get_node_info().node_id == sim.node_id

    page.reload()
    page.wait_for_selector("text=already been shown")
    assert token not in page.content()
    page.go_back()
    page.wait_for_load_state()
    assert token not in page.content()
    page.goto(f"{live_server.url}/access/nodes/{node.pk}/")
    page.wait_for_selector("#tokens td:has-text('ci-runner')")
    assert token not in page.content() and token[:12] in page.content()
    shot(page, prefix="access", name="after")
    assert not [e for e in page.console_errors if "Content Security Policy" in e or "Refused" in e], \
        page.console_errors
