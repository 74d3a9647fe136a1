"""The access handlers against fleetsim over real HTTP: pairing, token list, generate, revoke.

They are called here as the worker calls them (handler(op, client, secrets)); the real-worker
round trip is in test_access_worker.py.
"""

from __future__ import annotations

import json
import logging

import pytest
from ciderstack import FleetClient
from ciderstack.errors import FleetAuthError, FleetError
from django.db import connection

from fleetui.access import services
from fleetui.access.models import NodeAPIToken, NodeTokenList, TokenReveal
from fleetui.activity.models import Operation
from fleetui.activity.registry import get_kind
from fleetui.core.crypto import decrypt
from fleetui.nodes.client import client_for

pytestmark = pytest.mark.django_db


def run(kind: str, node, user, params=None, secrets=None) -> tuple[Operation, dict]:
    op = Operation.objects.create(kind=kind, node=node, user=user, username=user.username, node_name=node.name,
                                  params=params or {})
    spec = get_kind(kind)
    assert spec is not None
    with client_for(node) as client:
        result = spec.handler(op, client, secrets or {})
    return op, result


def all_rows_text() -> str:
    """Every row of every table, as text: what a leaked secret would be found in."""
    out = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            cursor.execute(f'SELECT * FROM "{table}"')
            out.append(repr(cursor.fetchall()))
    return "\n".join(out)


@pytest.fixture()
def fleet(sim_fleet):
    return sim_fleet(nodes=1, vms_per_node=1)


@pytest.fixture()
def paired(fleet, register_node, users):
    sim = fleet.nodes[0]
    node = register_node(sim)
    run("node.pair", node, users["admin"], secrets={"code": sim.pairing_code})
    node.refresh_from_db()
    return sim, node


def test_a_wrong_code_is_refused_in_plain_words_and_nothing_is_stored(fleet, register_node, users, caplog):
    sim = fleet.nodes[0]
    node = register_node(sim)
    wrong = "000000" if sim.pairing_code != "000000" else "111111"
    caplog.set_level(logging.DEBUG)
    with pytest.raises(FleetError, match="refused the pairing: Invalid pairing code"):
        run("node.pair", node, users["admin"], secrets={"code": wrong})
    node.refresh_from_db()
    assert not node.is_paired and node.paired_at is None
    assert sim.state.trusted_nodes == {}
    assert wrong not in caplog.text


def test_the_right_code_pairs_stores_keys_encrypted_and_reads_the_token_list(fleet, register_node, users, caplog):
    sim = fleet.nodes[0]
    node = register_node(sim)
    code = sim.pairing_code
    caplog.set_level(logging.DEBUG)
    op, result = run("node.pair", node, users["admin"], secrets={"code": code})
    node.refresh_from_db()
    assert node.is_paired and node.paired_at is not None
    caller_id = decrypt(node.paired_node_id_enc)
    assert caller_id.upper() in sim.state.trusted_nodes
    private_key = decrypt(node.pairing_private_key_enc)
    assert len(private_key) == 64
    assert result["responder_name"] == sim.name and result["token_count"] == 2
    assert set(NodeAPIToken.objects.filter(node=node).values_list("name", flat=True)) == {"default", "read-only"}
    assert NodeTokenList.objects.get(node=node).fetched_at is not None
    # The code, our callerNodeID and the private key appear nowhere in clear.
    text = all_rows_text() + json.dumps(result) + caplog.text
    for secret in (caller_id, private_key, sim.api_token):
        assert secret not in text
    assert code not in json.dumps(result) + caplog.text


def test_pairing_twice_is_refused_before_calling_the_node(paired, users):
    sim, node = paired
    with pytest.raises(FleetError, match="already paired"):
        run("node.pair", node, users["admin"], secrets={"code": sim.pairing_code})
    assert len(sim.state.trusted_nodes) == 1


def test_an_expired_code_says_so(fleet, register_node, users):
    node = register_node(fleet.nodes[0])
    with pytest.raises(FleetError, match="expired"):
        run("node.pair", node, users["admin"], secrets={})


def test_generate_hands_the_token_over_once_encrypted(paired, users, caplog):
    sim, node = paired
    caplog.set_level(logging.DEBUG)
    op, result = run("token.generate", node, users["admin"], params={"name": "ci", "permission": "readOnly"})
    reveal = TokenReveal.objects.get(operation_id=op.id)
    token = decrypt(reveal.token_enc)
    assert token.startswith("csk_") and token in sim.state.tokens
    assert result["permission"] == "readOnly" and result["name"] == "ci" and not result["adopted"]
    assert result["prefix"] and token.startswith(result["prefix"])
    assert token not in json.dumps(result) and token not in all_rows_text() and token not in caplog.text
    assert NodeAPIToken.objects.filter(node=node, name="ci", permission="readOnly").exists()
    # It works on the node, read-only.
    with FleetClient(sim.host, api_token=token, port=sim.port, timeout=5) as fresh:
        assert fresh.list_vms()
        with pytest.raises(FleetAuthError):
            fresh.cleanup_vms()
    # Shown once: the first pop gets it, the second nothing; another user never.
    assert services.token_reveal_pop(operation_id=op.id, user_id=users["viewer"].pk) is None
    assert services.token_reveal_pop(operation_id=op.id, user_id=users["admin"].pk) == token
    assert services.token_reveal_pop(operation_id=op.id, user_id=users["admin"].pk) is None
    assert not TokenReveal.objects.exists()


def test_generate_and_adopt_makes_it_the_dashboards_credential(paired, users):
    sim, node = paired
    op, result = run("token.generate", node, users["admin"],
                     params={"name": "dashboard", "permission": "fullAccess", "adopt": True})
    node.refresh_from_db()
    adopted = decrypt(node.api_token_enc)
    assert adopted != sim.api_token and adopted in sim.state.tokens
    assert node.token_permission == "fullAccess" and adopted.startswith(node.api_token_prefix)
    assert result["adopted"] is True
    with client_for(node) as client:  # the API-token client now uses the adopted token
        assert client.get_node_info().node_id == sim.node_id


def test_revoke_removes_it_from_the_node_and_the_list(paired, users):
    sim, node = paired
    op, _ = run("token.generate", node, users["admin"], params={"name": "temp", "permission": "readOnly"})
    token = decrypt(TokenReveal.objects.get(operation_id=op.id).token_enc)
    cached = NodeAPIToken.objects.get(node=node, name="temp")
    _, result = run("token.revoke", node, users["admin"], params={"id": cached.remote_id, "name": "temp"})
    assert result["revoked"] is True
    assert token not in sim.state.tokens
    assert not NodeAPIToken.objects.filter(node=node, name="temp").exists()
    with pytest.raises(FleetAuthError), FleetClient(sim.host, api_token=token, port=sim.port, timeout=5) as c:
        c.list_vms()
    with pytest.raises(FleetError, match="did not revoke"):
        run("token.revoke", node, users["admin"], params={"id": cached.remote_id, "name": "temp"})


def test_token_methods_need_a_pairing(fleet, register_node, users):
    node = register_node(fleet.nodes[0])
    for kind, params in (("token.list", {}), ("token.generate", {"name": "x", "permission": "readOnly"}),
                         ("token.revoke", {"id": "abc"})):
        with pytest.raises(FleetError, match="not paired"):
            run(kind, node, users["admin"], params=params)


def test_list_refreshes_the_cache_and_a_failure_is_recorded(paired, users):
    sim, node = paired
    NodeAPIToken.objects.filter(node=node).delete()
    _, result = run("token.list", node, users["admin"])
    assert result["count"] == 2 and NodeAPIToken.objects.filter(node=node).count() == 2
    sim.set_faults(mode="down")
    try:
        with pytest.raises(FleetError):
            run("token.list", node, users["admin"])
    finally:
        sim.clear_faults()
    state = NodeTokenList.objects.get(node=node)
    assert state.error_is_current and "reach" in state.last_error
    assert NodeAPIToken.objects.filter(node=node).count() == 2  # the old list stays, with its age
