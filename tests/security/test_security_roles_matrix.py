"""Roles x every endpoint x both methods, with the endpoints found by walking the URL resolver: a new
URL pattern fails `test_it_knows_every_endpoint` until it is added to EXPECTED below, so nothing is
left unchecked. Also: GET never changes anything, and every POST needs the CSRF token (HTMX too)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest
from django.apps import apps
from django.db import connection, transaction
from django.test import Client
from secdata import RANK, ROLES, Endpoint, RichFleet, all_endpoints, auth_headers, url_for

V, OP, A = "viewer", "operator", "admin"
PUBLIC = "public"  # anyone, logged in or not
USER = "user"  # any logged-in user, with or without a role
BEARER = "bearer"  # no login at all: the bearer token decides (401 for every role without it)

# endpoint name -> {method: the lowest role allowed}. A method not listed must answer 405.
EXPECTED: dict[str, dict[str, str]] = {
    "fleet-overview": {"GET": V},
    "login": {"GET": PUBLIC, "POST": PUBLIC},
    "logout": {"POST": USER},
    "node-list": {"GET": V},
    "node-add": {"GET": A, "POST": A},
    "node-detail": {"GET": V},
    "node-edit": {"GET": A, "POST": A},
    "node-remove": {"GET": A, "POST": A},
    "image-pull": {"POST": OP},
    "vm-list": {"GET": V},
    "vm-detail": {"GET": V},
    "vm-action": {"POST": OP},
    "snapshot-create": {"POST": OP},
    "snapshot-restore": {"GET": OP, "POST": OP},
    "snapshot-delete": {"GET": OP, "POST": OP},
    "image-list": {"GET": V},
    "task-list": {"GET": V},
    "operation-detail": {"GET": V},
    "activity": {"GET": V},
    "activity-export": {"GET": V},
    "managers": {"GET": V},
    "managers-register-worker": {"GET": A},
    "utilities": {"GET": A},
    "utilities-cleanup": {"GET": A, "POST": A},
    "utilities-cleanup-refresh": {"POST": A},
    "utilities-unpair": {"GET": A, "POST": A},
    "cleanup-result": {"GET": A},
    "access-index": {"GET": A},
    "access-node": {"GET": A},
    "access-pair": {"POST": A},
    "access-tokens-refresh": {"POST": A},
    "access-token-generate": {"POST": A},
    "access-token-revoke": {"GET": A, "POST": A},
    "access-token-generated": {"GET": A},
    "vm-create": {"GET": OP, "POST": OP},
    "vm-expiring": {"GET": V},
    "vm-clone": {"GET": OP, "POST": OP},
    "vm-rename": {"GET": OP, "POST": OP},
    "vm-delete": {"GET": OP, "POST": OP},
    "vm-settings": {"GET": V},
    "vm-settings-update": {"POST": OP},
    "vm-lease": {"POST": OP},
    "vm-operation-follow": {"GET": V},
    "vm-exec": {"GET": OP, "POST": OP},
    "vm-exec-result": {"GET": V},
    "template-list": {"GET": V},
    # Re-reading the node's template list and an IPSW's info changes nothing: viewers may ask.
    "template-refresh": {"POST": V},
    "template-delete": {"GET": OP, "POST": OP},
    "template-detail": {"GET": V},
    "template-read": {"POST": V},
    "template-lookup": {"POST": V},
    "vm-template-create": {"GET": OP, "POST": OP},
    "vm-folders": {"GET": V},
    "vm-folder-add": {"POST": OP},
    "vm-folder-toggle": {"POST": OP},
    "vm-folder-remove": {"POST": OP},
    "vm-image-push": {"GET": OP, "POST": OP},
    "image-ipsw-list": {"GET": V},
    "image-ipsw-download": {"GET": OP, "POST": OP},
    "image-ipsw-info": {"POST": V},
    "batch-list": {"GET": V},
    "batch-new": {"POST": OP},
    "batch-detail": {"GET": V},
    "batch-cancel": {"POST": OP},
    "batch-export": {"GET": V},
    "alert-index": {"GET": A},
    "webhook-add": {"GET": A, "POST": A},
    "webhook-detail": {"GET": A},
    "webhook-edit": {"GET": A, "POST": A},
    "webhook-delete": {"GET": A, "POST": A},
    "webhook-test": {"POST": A},
    "search": {"GET": V},
    # For a Prometheus scraper: no session, a bearer token (FLEETUI_METRICS_TOKEN); 401 without it.
    "metrics": {"GET": BEARER},
}

# What an allowed request may answer: a page, an HTMX "stop polling", a redirect after a change,
# or the form with its errors (the POSTs here send no fields).
ALLOWED_STATUSES = {200, 286, 302, 303, 400, 409, 422}


def _may(role: str, needed: str) -> bool:
    if needed == PUBLIC:
        return True
    if needed == USER:
        return role != "anonymous"
    return RANK[role] >= RANK[needed]


def _request(client: Client, method: str, url: str, **extra: Any) -> Any:
    """One request whose database changes are rolled back, so every endpoint sees the same fleet
    (and the same session: logging out or in is undone too)."""
    cookies = copy.deepcopy(client.cookies)
    with transaction.atomic():
        response = client.get(url, **extra) if method == "GET" else client.post(url, {}, **extra)
        transaction.set_rollback(True)
    client.cookies = cookies
    return response


def known_endpoints() -> list[Endpoint]:
    """The endpoints with an expectation (test_it_knows_every_endpoint fails for the others)."""
    return [endpoint for endpoint in all_endpoints() if endpoint.name in EXPECTED]


def test_it_knows_every_endpoint() -> None:
    names = {endpoint.name for endpoint in all_endpoints()}
    assert sorted(names - set(EXPECTED)) == [], "URL patterns without an expectation: add them to EXPECTED"
    assert sorted(set(EXPECTED) - names) == [], "EXPECTED names URL patterns that no longer exist"
    assert len(names) >= 50


@pytest.mark.parametrize("role", ROLES)
def test_it_checks_every_endpoint_for_every_role(as_role: Callable[..., Client], rich_fleet: RichFleet,
                                                 role: str) -> None:
    client = as_role(role)
    checked = 0
    failures: list[str] = []
    for endpoint in known_endpoints():
        url = url_for(endpoint, rich_fleet)
        for method in ("GET", "POST"):
            for headers in ({}, {"HX-Request": "true"}):
                response = _request(client, method, url, headers=headers)
                status = response.status_code
                needed = EXPECTED[endpoint.name].get(method)
                hx = " (htmx)" if headers else ""
                if needed == BEARER or (needed is None and BEARER in EXPECTED[endpoint.name].values()):
                    ok = status == (401 if needed else 405)
                elif needed is not None and _may(role, needed):
                    ok = status in ALLOWED_STATUSES
                elif role == "anonymous" and needed != PUBLIC:
                    # Login first, whatever was asked; the method is checked once logged in.
                    ok = status == 302 and response["Location"].startswith("/accounts/login/")
                elif needed is None:
                    ok = status == 405
                else:
                    ok = status == 403
                if not ok:
                    failures.append(f"{method}{hx} {endpoint.name} {url} as {role}: {status}")
                checked += 1
    assert failures == [], "\n".join(failures)
    assert checked == len(known_endpoints()) * 4


def _row_counts() -> dict[str, int]:
    counts = {}
    for model in apps.get_models():
        if model._meta.db_table in ("django_session",):
            continue
        counts[model._meta.label] = model._default_manager.count()
    return counts


def test_it_changes_nothing_on_get(as_role: Callable[..., Client], rich_fleet: RichFleet) -> None:
    """Mutations are POST-only: crawling every GET endpoint as an admin, page and partial, leaves every
    table as it was (sessions aside) — no Operation recorded, nothing deleted."""
    client = as_role("admin")
    before = _row_counts()
    gets = 0
    for endpoint in known_endpoints():
        if "GET" not in EXPECTED[endpoint.name]:
            continue
        url = url_for(endpoint, rich_fleet)
        for headers in ({}, {"HX-Request": "true"}):
            response = client.get(url, headers=headers | auth_headers(endpoint))
            assert response.status_code in ALLOWED_STATUSES, (url, response.status_code)
            gets += 1
    # access-token-generated shows a waiting token once and deletes it: none waits here.
    assert _row_counts() == before
    assert gets >= 60


@pytest.mark.parametrize("htmx", [False, True], ids=["form", "htmx"])
def test_it_refuses_every_post_without_the_csrf_token(as_role: Callable[..., Client], rich_fleet: RichFleet,
                                                       htmx: bool) -> None:
    posts = [e for e in known_endpoints() if "POST" in EXPECTED[e.name]]
    assert len(posts) >= 30
    client = as_role("admin", enforce_csrf_checks=True)
    headers = {"HX-Request": "true"} if htmx else {}
    from fleetui.activity.models import Operation

    before = Operation.objects.count()
    for endpoint in posts:
        url = url_for(endpoint, rich_fleet)
        response = client.post(url, {"name": "x", "confirm": "on"}, headers=headers)
        assert response.status_code == 403, (endpoint.name, response.status_code)
        assert b"CSRF" in response.content, endpoint.name
    assert Operation.objects.count() == before


def test_it_accepts_the_csrf_token_from_hx_headers(as_role: Callable[..., Client], rich_fleet: RichFleet) -> None:
    """The token htmx sends (base.html puts it in hx-headers as X-CSRFToken) passes the check."""
    client = as_role("admin", enforce_csrf_checks=True)
    page = client.get(url_for(next(e for e in all_endpoints() if e.name == "fleet-overview"), rich_fleet))
    token = page.content.decode().split('"X-CSRFToken": "', 1)[1].split('"', 1)[0]
    assert len(token) >= 32
    vm = rich_fleet.vms[1]  # running
    response = client.post(f"/vms/{vm.pk}/action/stop/", {}, headers={"HX-Request": "true", "X-CSRFToken": token})
    assert response.status_code in (200, 302), response.status_code
    from fleetui.activity.models import Operation

    assert Operation.objects.filter(kind="vm.stop", vm=vm).exists()
    assert connection.vendor in ("sqlite", "postgresql")
