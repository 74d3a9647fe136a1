"""Hostile values in every parameter of every bulk action, posted with a valid selection and the
confirmation step: the answer is the review page with a clear error (400) or the batch (302), never
a 500; a refused post records nothing, an accepted one only clean parameters."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from batchdata import make_node, make_vm
from django.db import transaction
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fleetui.activity.models import Operation
from fleetui.batches.forms import BatchParamsForm
from fleetui.batches.models import Batch, BatchAction

HOSTILE = st.one_of(
    st.sampled_from(["", " ", "\x00", "a\x00b", "\x1b[31m", "tab\tand\nnewline", "\u202eevil", "<script>x</script>",
                     "-1", "0", "1", "60", "601", "99999999999999999999", "1e309", "NaN", "hours", "days", "weeks",
                     "delete 2", "DELETE 2", "cideradmin", "root; rm -rf /", "a" * 5000, "ünïcødé-🚀"]),
    st.text(st.characters(exclude_categories=("Cs",)), max_size=40),
)
ERROR_MARKS = (b'class="errors"', b"alert-error", b'role="alert"')


@pytest.fixture()
def setup(db: Any, users: dict[str, Any]) -> dict[str, Any]:
    node = make_node("mac-h")
    vms = [make_vm(node, "h-running", "running"), make_vm(node, "h-stopped", "stopped")]
    client = Client()
    client.force_login(users["operator"])
    return {"client": client, "vm_ids": [vm.pk for vm in vms]}


@pytest.mark.parametrize("action", BatchAction.values)
@settings(max_examples=12, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_every_parameter_answers_hostile_input_without_failing(setup: dict[str, Any], action: str,
                                                               data: st.DataObject) -> None:
    client: Client = setup["client"]
    values = {name: data.draw(HOSTILE, label=name) for name in BatchParamsForm.base_fields}
    post = {"action": action, "vm": setup["vm_ids"], "confirmed": "1", **values}
    cookies = copy.deepcopy(client.cookies)
    with transaction.atomic():
        response = client.post("/batches/new/", post)
        status = response.status_code
        assert status in (302, 400), (action, status)
        if status == 400:
            assert any(mark in response.content for mark in ERROR_MARKS)
            assert Batch.objects.count() == 0 and Operation.objects.count() == 0
        else:
            batch = Batch.objects.get()
            for op in Operation.objects.all():
                for value in op.params.values():
                    assert "\x00" not in str(value)
            assert "ssh_password" not in batch.params
        transaction.set_rollback(True)
    client.cookies = cookies
