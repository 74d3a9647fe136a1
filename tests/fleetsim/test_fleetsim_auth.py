"""API tokens, node-ID auth, pairing and unpairing on fleetsim."""

from __future__ import annotations

import base64
import time
import uuid

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat


def pairing_body(code: str, node_id: str | None = None, key: str | None = None) -> dict:
    if key is None:
        pub = ec.generate_private_key(ec.SECP256R1()).public_key()
        key = base64.b64encode(pub.public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)).decode()
    return {"requestID": str(uuid.uuid4()).upper(), "requesterNodeID": {"value": node_id or str(uuid.uuid4()).upper()},
            "requesterName": "tests", "requesterIP": "0.0.0.0", "publicKey": key, "code": code}


def pair(rpc, node) -> str:
    body = pairing_body(node.pairing_code)
    status, answer = rpc(node, "RequestPairing", auth={}, **body)
    assert status == 200 and answer["accepted"] is True, answer
    return body["requesterNodeID"]["value"]


def test_read_only_token_reads_but_a_mutating_call_is_403(node, rpc, pub, published):
    vm_id = rpc.ok(node, "ListVMs")["vms"][0]["id"]
    ro = pub(node, readonly=True)
    assert ro.list_vms() and ro.get_node_stats() and ro.list_templates() is not None
    status, body = rpc(node, "StartVM", token=node.readonly_token, vmID=vm_id)
    assert status == 403 and "read-only" in body["error"] and set(body) == {"error"}
    with pytest.raises(published.FleetError, match="read-only"):
        ro.stop_vm(vm_id)
    with pytest.raises(published.FleetError, match="read-only"):
        ro.cleanup_vms()


def test_unknown_or_missing_credentials_are_403(node, rpc, pub, published):
    status, body = rpc(node, "ListVMs", token="csk_not_a_real_token")
    assert status == 403 and "Invalid" in body["error"]
    status, body = rpc(node, "ListVMs", auth={})
    assert status == 403 and "Authentication required" in body["error"]
    status, body = rpc(node, "ListVMs", auth={"callerNodeID": str(uuid.uuid4())})
    assert status == 403 and "not paired" in body["error"]
    status, body = rpc(node, "ListVMs", auth={"apiToken": node.api_token, "callerNodeID": "x"})
    assert status == 403
    status, body = rpc(node, "ListVMs", auth={"apiToken": 12})
    assert status == 403
    bad = published.FleetClient(node.host, api_token="csk_wrong", port=node.port, timeout=5)
    with pytest.raises(published.FleetError, match="Invalid"):
        bad.list_vms()


def test_token_methods_need_node_id_auth(node, rpc):
    for method, fields in (("ListAPITokens", {}), ("GenerateAPIToken", {"name": "x", "permissions": "readOnly"}),
                           ("RevokeAPIToken", {"tokenID": "x"})):
        status, body = rpc(node, method, **fields)
        assert status == 403 and "node-ID authentication" in body["error"], (method, body)


def test_generate_list_use_and_revoke_tokens(node, rpc, pub, published):
    caller = pair(rpc, node)
    admin = pub(node, node_id=caller)
    summaries = admin.list_api_tokens()
    assert {s.permissions for s in summaries} == {published.APITokenPermissions.FULL_ACCESS,
                                                  published.APITokenPermissions.READ_ONLY}
    assert all(s.token_prefix.startswith("csk_") and len(s.token_prefix) < 20 for s in summaries)
    assert not [s for s in summaries if node.api_token == s.token_prefix]
    full = [s for s in summaries if s.permissions == published.APITokenPermissions.FULL_ACCESS][0]
    assert full.last_used_at is None  # a fresh fleet: nobody has used it yet

    new = admin.generate_api_token("ci-bot", "readOnly")
    assert new.token.startswith("csk_") and new.permissions == published.APITokenPermissions.READ_ONLY
    assert new.last_used_at is None
    bot = published.FleetClient(node.host, api_token=new.token, port=node.port, timeout=5)
    assert bot.list_vms()
    listed = {s.id: s for s in admin.list_api_tokens()}
    assert listed[new.id].token_prefix == new.token[:12] and listed[new.id].last_used_at is not None
    with pytest.raises(published.FleetError, match="read-only"):
        bot.start_vm(bot.list_vms()[0].id)

    writer = admin.generate_api_token("writer")  # fullAccess by default
    assert writer.permissions == published.APITokenPermissions.FULL_ACCESS
    assert published.FleetClient(node.host, api_token=writer.token, port=node.port).cleanup_vms() == 0

    assert admin.revoke_api_token(new.id) is True
    assert admin.revoke_api_token(new.id) is False
    with pytest.raises(published.FleetError, match="Invalid or revoked"):
        bot.list_vms()
    assert "permissions" in rpc.fails(node, "GenerateAPIToken", auth={"callerNodeID": caller}, name="x",
                                      permissions="admin")


def test_last_used_at_moves_on_use(node, rpc):
    caller = pair(rpc, node)

    def last_used() -> str | None:
        tokens = rpc.ok(node, "ListAPITokens", auth={"callerNodeID": caller})["tokens"]
        return [t for t in tokens if t["permissions"] == "readOnly"][0]["lastUsedAt"]

    before = last_used()
    time.sleep(0.01)
    rpc.ok(node, "ListVMs", token=node.readonly_token)
    after = last_used()
    assert after is not None and (before is None or after > before)


def test_pairing_with_the_published_client_then_node_id_auth(node, published):
    code = node.pairing_code
    creds = published.FleetClient.pair(node.host, code, "my-ci", port=node.port)
    assert creds["responder_node_id"] == node.node_id and creds["responder_name"] == node.name
    client = published.FleetClient(node.host, node_id=creds["node_id"], port=node.port, timeout=5)
    assert client.get_node_info().node_id == node.node_id
    assert client.list_api_tokens()


def test_a_code_is_accepted_once_then_rotates(node, rpc):
    code = node.pairing_code
    status, first = rpc(node, "RequestPairing", auth={}, **pairing_body(code))
    assert first["accepted"] is True and first["responderNodeID"] == {"value": node.node_id}
    assert node.pairing_code != code and len(node.pairing_code) == 6 and node.pairing_code.isdigit()
    status, again = rpc(node, "RequestPairing", auth={}, **pairing_body(code))
    assert status == 200 and again["accepted"] is False and again["errorMessage"] == "Invalid pairing code"
    assert rpc(node, "RequestPairing", auth={}, **pairing_body(node.pairing_code))[1]["accepted"] is True


def test_a_retried_accepted_request_gets_the_same_answer(node, rpc):
    body = pairing_body(node.pairing_code)
    assert rpc(node, "RequestPairing", auth={}, **body)[1]["accepted"] is True
    assert rpc(node, "RequestPairing", auth={}, **body)[1]["accepted"] is True


@pytest.mark.parametrize("change, message", [
    ({"code": "000000x"}, "6-digit"),
    ({"code": 123456}, "6-digit"),
    ({"publicKey": "not base64!"}, "P-256"),
    ({"publicKey": base64.b64encode(b"\x04" + b"\x01" * 64).decode()}, "P-256"),  # not on the curve
    ({"publicKey": base64.b64encode(b"\x02" + b"\x01" * 32).decode()}, "P-256"),  # compressed
    ({"requesterNodeID": "abc"}, "requesterNodeID"),
    ({"requesterNodeID": {"value": "not-a-uuid"}}, "UUID"),
    ({"requesterName": None}, "requesterName"),
])
def test_malformed_pairing_requests_are_refused_and_change_nothing(node, rpc, change, message):
    code = node.pairing_code
    body = {**pairing_body(code), **change}
    status, answer = rpc(node, "RequestPairing", auth={}, **body)
    assert status == 200 and answer["accepted"] is False and message in answer["errorMessage"]
    assert node.pairing_code == code and node.state.trusted_nodes == {}


def test_wrong_code_is_refused(node, rpc, published):
    wrong = f"{(int(node.pairing_code) + 1) % 1_000_000:06d}"
    with pytest.raises(published.FleetError, match="Invalid pairing code"):
        published.FleetClient.pair(node.host, wrong, port=node.port)


def test_unpair_removes_the_trust(node, rpc, pub, published):
    caller = pair(rpc, node)
    client = pub(node, node_id=caller)
    assert client.list_vms()
    other = pair(rpc, node)
    assert client.unpair(other) is True
    with pytest.raises(published.FleetError, match="not paired"):
        client.unpair(other)
    assert client.unpair(caller) is True
    with pytest.raises(published.FleetError, match="not paired"):
        client.list_vms()


def test_the_manager_is_trusted_by_its_workers(fleet, rpc):
    worker = fleet.nodes[2]
    assert rpc.ok(worker, "ListAPITokens", auth={"callerNodeID": fleet.nodes[0].node_id})["tokens"]


def test_every_method_is_served_and_readonly_is_refused_exactly_on_mutating_ones(node, rpc):
    from fleetsim.state import METHODS

    reading = {"GetNodeInfo", "GetNodeStats", "ListVMs", "GetVMSettings", "ListSnapshots", "ListTemplates",
               "GetTemplate", "ListSharedFolders", "ListRemoteIPSWs", "ListRemoteOCIImages", "GetIPSWInfo",
               "GetTasks", "GetFleetOverview", "GetFleetEvents", "GetRemoteResources", "ListAPITokens"}
    assert len(METHODS) == 42 and reading <= set(METHODS)
    for method, (mutating, auth) in METHODS.items():
        assert mutating == (method not in reading), method
        status, body = rpc(node, method, token=node.readonly_token)
        if auth == "none":
            assert status == 200 and body["accepted"] is False, method
        elif auth == "node":
            assert status == 403 and "node-ID" in body["error"], method
        elif mutating:
            assert status == 403 and "read-only" in body["error"], method
        else:
            assert status == 200, (method, body)  # allowed; may still say success:false (missing fields)
