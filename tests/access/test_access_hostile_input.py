"""Hostile input to the access forms: any text gets a clear 400 or is accepted, never a 500,
and a refused form records nothing."""

from __future__ import annotations

import pytest
from django.urls import reverse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fleetui.activity.models import Operation
from fleetui.nodes.models import Node

pytestmark = pytest.mark.django_db

HYPOTHESIS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
nasty = st.one_of(st.text(max_size=300), st.sampled_from(["", " ", "\x00", "123456\x00", "<script>", "9" * 10_000,
                                                          "-1", "１２３４５６", "12345６", "ci\u202eevil"]))


@pytest.fixture()
def node(db) -> Node:
    return Node.objects.create(name="mac-a", host="127.0.0.1", port=9, api_token_enc="x",
                               token_permission="fullAccess")


@HYPOTHESIS
@given(code=nasty)
def test_any_pairing_code(as_role, node, code):
    before = Operation.objects.count()
    response = as_role("admin").post(reverse("access-pair", args=[node.pk]), {"code": code})
    assert response.status_code in (302, 400)
    if response.status_code == 400:
        assert Operation.objects.count() == before
    else:
        assert code.replace(" ", "").replace("-", "").isascii()


@HYPOTHESIS
@given(name=nasty, permission=st.sampled_from(["readOnly", "fullAccess", "", "root", "\x00"]))
def test_any_token_name(as_role, node, name, permission):
    Node.objects.filter(pk=node.pk).update(paired_node_id_enc="enc")  # paired (the value is never read here)
    before = Operation.objects.count()
    response = as_role("admin").post(reverse("access-token-generate", args=[node.pk]),
                                     {"name": name, "permission": permission})
    assert response.status_code in (302, 400)
    if response.status_code == 400:
        assert Operation.objects.count() == before
    else:
        op = Operation.objects.order_by("-created_at").first()
        assert op.params["name"] == name.strip() and 0 < len(op.params["name"]) <= 64
