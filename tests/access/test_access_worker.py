"""Pairing and the token life cycle through the pages and a real Celery worker, against fleetsim.

Pages record Operations; the worker (another process, real Redis broker) runs them. Afterwards
the secrets (pairing code, our node id and key, the generated token) are searched for in clear
in every database row, every Redis key, the worker's log and our own log: none may be found.
"""

from __future__ import annotations

import logging
import re

import pytest
from ciderstack import FleetClient
from ciderstack.errors import FleetAuthError
from django.db import connection
from django.urls import reverse

from fleetui.access.models import NodeAPIToken
from fleetui.activity.models import Operation
from fleetui.core.crypto import decrypt
from fleetui.nodes.locks import redis_connection

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def all_rows_text() -> str:
    out = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            cursor.execute(f'SELECT * FROM "{table}"')
            out.append(repr(cursor.fetchall()))
    return "\n".join(out)


def all_redis_text() -> str:
    conn = redis_connection()
    out = []
    for key in conn.scan_iter(count=1000):
        kind = conn.type(key)
        if kind == b"string":
            out.append(repr(conn.get(key)))
        elif kind == b"list":
            out.append(repr(conn.lrange(key, 0, -1)))
        elif kind == b"hash":
            out.append(repr(conn.hgetall(key)))
        elif kind == b"set":
            out.append(repr(conn.smembers(key)))
        elif kind == b"zset":
            out.append(repr(conn.zrange(key, 0, -1)))
        out.append(repr(key))
    return "\n".join(out)


def finished(wait_for, kind: str, count: int = 1) -> Operation:
    def done():
        ops = list(Operation.objects.filter(kind=kind).order_by("created_at"))
        return len(ops) >= count and ops[count - 1].is_finished and ops[count - 1]

    return wait_for(done, timeout=15, message=f"{kind} #{count} to finish")


def test_pair_generate_show_once_revoke_unpair(celery_worker, sim_fleet, register_node, as_role, wait_for, caplog):
    caplog.set_level(logging.DEBUG)
    sim = sim_fleet(nodes=1, vms_per_node=1).nodes[0]
    node = register_node(sim)
    admin = as_role("admin")

    # A wrong code: refused in plain words, nothing stored.
    wrong = "000000" if sim.pairing_code != "000000" else "111111"
    admin.post(reverse("access-pair", args=[node.pk]), {"code": wrong})
    op = finished(wait_for, "node.pair")
    assert op.status == "failed" and "refused the pairing: Invalid pairing code" in op.error
    node.refresh_from_db()
    assert not node.is_paired

    # The right code.
    code = sim.pairing_code
    admin.post(reverse("access-pair", args=[node.pk]), {"code": code})
    op = finished(wait_for, "node.pair", 2)
    assert op.status == "succeeded", op.error
    node.refresh_from_db()
    assert node.is_paired
    page = admin.get(reverse("access-node", args=[node.pk])).content.decode()
    assert "default" in page and "read-only" in page and "as of" in page

    # Generate: the token is on the next page once, then never again.
    response = admin.post(reverse("access-token-generate", args=[node.pk]),
                          {"name": "ci-runner", "permission": "readOnly"})
    follow = response["Location"]
    op = finished(wait_for, "token.generate")
    assert op.status == "succeeded", op.error
    first = admin.get(follow).content.decode()
    token = next(t for t in sim.state.tokens if t.startswith(op.result["prefix"]) and t not in
                 (sim.api_token, sim.readonly_token))
    assert token in first
    assert token not in admin.get(follow).content.decode()
    assert token not in admin.get(reverse("access-node", args=[node.pk])).content.decode()
    with FleetClient(sim.host, api_token=token, port=sim.port, timeout=5) as fresh:
        assert fresh.get_node_info().node_id == sim.node_id

    # Revoke it.
    cached = NodeAPIToken.objects.get(node=node, name="ci-runner")
    admin.post(reverse("access-token-revoke", args=[node.pk, cached.pk]), {"confirm": "1"})
    op = finished(wait_for, "token.revoke")
    assert op.status == "succeeded", op.error
    assert token not in sim.state.tokens and not NodeAPIToken.objects.filter(pk=cached.pk).exists()
    with pytest.raises(FleetAuthError), FleetClient(sim.host, api_token=token, port=sim.port, timeout=5) as c:
        c.list_vms()

    caller_id, private_key = decrypt(node.paired_node_id_enc), decrypt(node.pairing_private_key_enc)

    # Unpair.
    admin.post(reverse("utilities-unpair", args=[node.pk]), {"confirm": "1"})
    op = finished(wait_for, "node.unpair")
    assert op.status == "succeeded", op.error
    node.refresh_from_db()
    assert not node.is_paired and sim.state.trusted_nodes == {}

    # No secret in clear anywhere we keep or log things.
    places = {"database": all_rows_text(), "redis": all_redis_text(), "worker log": celery_worker.log(),
              "our log": caplog.text}
    # The code is 6 digits: look for it standing alone, not inside a ciphertext or a hex id.
    code_alone = re.compile(rf"(?<![0-9A-Za-z_-]){code}(?![0-9A-Za-z_-])")
    for where, text in places.items():
        for name, secret in (("token", token), ("caller id", caller_id), ("private key", private_key),
                             ("dashboard token", sim.api_token)):
            assert secret not in text, f"{name} found in clear in the {where}"
        assert not code_alone.search(text), f"the pairing code found in clear in the {where}"
