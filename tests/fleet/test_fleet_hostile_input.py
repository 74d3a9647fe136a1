"""Hostile input to the fleet pages' forms and query strings: never a 500, nothing recorded when refused."""

from __future__ import annotations

import pytest
from django.urls import reverse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fleetui.activity.models import Operation
from fleetui.nodes.models import Node

pytestmark = pytest.mark.django_db

HYPOTHESIS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
nasty = st.one_of(st.text(max_size=300), st.sampled_from(["", "\x00", "<script>", "9" * 5000, "-1",
                                                          "2026-13-45T99:99", "1e309", "~o~", "x~e~1"]))


@pytest.fixture()
def node(db) -> Node:
    return Node.objects.create(name="mac-a", host="127.0.0.1", port=9, api_token_enc="x", token_permission="fullAccess")


@HYPOTHESIS
@given(params=st.dictionaries(st.sampled_from(["node", "type", "user", "source", "since", "until", "before",
                                               "after"]), nasty, max_size=5))
def test_any_activity_query(as_role, node, params):
    c = as_role("viewer")
    assert c.get(reverse("activity"), params).status_code == 200
    export = c.get(reverse("activity-export"), params)
    assert export.status_code in (200, 400)
    if export.status_code == 200:
        b"".join(export.streaming_content)


@HYPOTHESIS
@given(force=st.sampled_from(["", "1", "on", "\x00"]), confirm=nasty)
def test_any_cleanup_confirmation(as_role, node, force, confirm):
    before = Operation.objects.count()
    response = as_role("admin").post(reverse("utilities-cleanup", args=[node.pk]),
                                     {"force": force, "confirm_name": confirm})
    assert response.status_code in (302, 400)
    if response.status_code == 400:
        assert Operation.objects.count() == before
    elif force:
        assert confirm.strip() == "mac-a"


@HYPOTHESIS
@given(name=nasty, host=nasty, port=nasty)
def test_any_register_prefill(as_role, name, host, port):
    response = as_role("admin").get(reverse("managers-register-worker"), {"name": name, "host": host, "port": port})
    assert response.status_code == 200
