"""Access pages per role, wrong methods, bad input; the one-time token page."""

from __future__ import annotations

import uuid

import pytest
from django.db import connection
from django.urls import reverse

from fleetui.access import services
from fleetui.access.models import NodeAPIToken, TokenReveal
from fleetui.activity.models import Operation, OperationStatus
from fleetui.activity.secrets import _key
from fleetui.core.crypto import encrypt
from fleetui.nodes.locks import redis_connection
from fleetui.nodes.models import Node

pytestmark = pytest.mark.django_db

SECRET_TOKEN = "csk_" + "s3cr3t" * 6


@pytest.fixture()
def node(db) -> Node:
    return Node.objects.create(name="mac-a", host="127.0.0.1", port=9, api_token_enc=encrypt("csk_dashboard"),
                               api_token_prefix="csk_dashboar", token_permission="fullAccess")


@pytest.fixture()
def paired_node(node) -> Node:
    services.pairing_store(node=node, caller_node_id=str(uuid.uuid4()), private_key_hex="ab" * 32)
    return node


@pytest.fixture()
def cached_token(paired_node) -> NodeAPIToken:
    from django.utils import timezone

    return NodeAPIToken.objects.create(node=paired_node, remote_id="T-1", name="ci", token_prefix="csk_abcdefgh",
                                       permission="readOnly", created_at=timezone.now(), seen_at=timezone.now())


def get_urls(node: Node) -> list[str]:
    return [reverse("access-index"), reverse("access-node", args=[node.pk])]


def post_urls(node: Node) -> list[str]:
    return [reverse("access-pair", args=[node.pk]), reverse("access-tokens-refresh", args=[node.pk]),
            reverse("access-token-generate", args=[node.pk])]


def test_anonymous_users_go_to_the_login_page(client, node):
    for url in get_urls(node) + post_urls(node):
        response = client.get(url)
        assert response.status_code == 302 and reverse("login") in response["Location"]


@pytest.mark.parametrize("role", ["none", "viewer", "operator"])
def test_only_admins_get_in(as_role, node, cached_token, role):
    c = as_role(role)
    for url in get_urls(node) + [reverse("access-token-revoke", args=[node.pk, cached_token.pk])]:
        assert c.get(url).status_code == 403
    for url in post_urls(node) + [reverse("access-token-revoke", args=[node.pk, cached_token.pk])]:
        assert c.post(url, {"code": "123456", "name": "x", "permission": "readOnly", "confirm": "1"}).status_code == 403
    assert not Operation.objects.exists()


def test_admins_see_the_pages(as_role, paired_node, cached_token):
    c = as_role("admin")
    body = c.get(reverse("access-index")).content.decode()
    assert "mac-a" in body and "paired" in body
    body = c.get(reverse("access-node", args=[paired_node.pk])).content.decode()
    assert "csk_abcdefgh…" in body and "Read-only" in body and "Generate" in body
    assert c.get(reverse("access-token-revoke", args=[paired_node.pk, cached_token.pk])).status_code == 200


def test_wrong_methods_are_405(as_role, node):
    c = as_role("admin")
    for url in post_urls(node):
        assert c.get(url).status_code == 405
    for url in get_urls(node):
        assert c.post(url).status_code == 405


@pytest.mark.parametrize("code", ["", "12345", "1234567", "abcdef", "12 34 5", "١٢٣٤٥٦"])
def test_a_bad_pairing_code_is_refused_and_nothing_happens(as_role, node, code):
    response = as_role("admin").post(reverse("access-pair", args=[node.pk]), {"code": code})
    assert response.status_code == 400
    assert "6 digits" in response.content.decode() or "required" in response.content.decode()
    assert not Operation.objects.exists()


def all_rows_text() -> str:
    out = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            cursor.execute(f'SELECT * FROM "{table}"')
            out.append(repr(cursor.fetchall()))
    return "\n".join(out)


def test_a_pairing_request_keeps_the_code_out_of_the_database_and_clear_redis(as_role, node):
    response = as_role("admin").post(reverse("access-pair", args=[node.pk]), {"code": "482 913"})
    assert response.status_code == 302
    op = Operation.objects.get(kind="node.pair")
    assert op.params == {"secrets_given": ["code"]}
    assert "482913" not in all_rows_text()
    stored = redis_connection().get(_key(op.id))
    assert stored and b"482913" not in stored


def test_pairing_twice_is_refused(as_role, paired_node):
    response = as_role("admin").post(reverse("access-pair", args=[paired_node.pk]), {"code": "123456"})
    assert response.status_code == 400 and "already paired" in response.content.decode()
    assert not Operation.objects.exists()


def test_token_actions_need_a_pairing(as_role, node):
    c = as_role("admin")
    response = c.post(reverse("access-token-generate", args=[node.pk]), {"name": "ci", "permission": "readOnly"})
    assert response.status_code == 400 and "Pair the dashboard" in response.content.decode()
    response = c.post(reverse("access-tokens-refresh", args=[node.pk]), follow=True)
    assert "Pair the dashboard" in response.content.decode()
    assert not Operation.objects.exists()


@pytest.mark.parametrize("data,message", [
    ({"name": "", "permission": "readOnly"}, "required"),
    ({"name": "   ", "permission": "readOnly"}, "required"),
    ({"name": "x" * 65, "permission": "readOnly"}, "at most 64"),
    ({"name": "tab\there", "permission": "readOnly"}, "control characters"),
    ({"name": "ci", "permission": "root"}, "Select a valid choice"),
])
def test_bad_generate_input_is_refused(as_role, paired_node, data, message):
    response = as_role("admin").post(reverse("access-token-generate", args=[paired_node.pk]), data)
    assert response.status_code == 400 and message in response.content.decode()
    assert not Operation.objects.exists()


def test_generate_records_an_operation_and_follows_it(as_role, paired_node, users):
    c = as_role("admin")
    response = c.post(reverse("access-token-generate", args=[paired_node.pk]),
                      {"name": "ci", "permission": "fullAccess", "adopt": "on"})
    op = Operation.objects.get(kind="token.generate")
    assert op.params == {"name": "ci", "permission": "fullAccess", "adopt": True}
    assert response["Location"] == reverse("access-token-generated", args=[op.id])
    page = c.get(response["Location"])
    assert page.status_code == 200 and "Asking the node" in page.content.decode()
    assert "every 1s" in page.content.decode()


def finished_generate(node: Node, user) -> Operation:
    op = Operation.objects.create(kind="token.generate", node=node, user=user, username=user.username,
                                  params={"name": "ci", "permission": "readOnly"}, status=OperationStatus.SUCCEEDED,
                                  result={"prefix": SECRET_TOKEN[:12], "name": "ci"})
    services.token_reveal_put(operation_id=op.id, user_id=user.pk, token=SECRET_TOKEN)
    return op


def test_the_token_is_shown_exactly_once(as_role, paired_node, users):
    op = finished_generate(paired_node, users["admin"])
    assert SECRET_TOKEN not in all_rows_text()
    c = as_role("admin")
    first = c.get(reverse("access-token-generated", args=[op.id]))
    body = first.content.decode()
    assert SECRET_TOKEN in body and 'data-copy-target="new-token"' in body and "js/access.js" in body
    assert "no-store" in first["Cache-Control"]
    for again in (c.get(reverse("access-token-generated", args=[op.id])),
                  c.get(reverse("access-token-generated", args=[op.id]), HTTP_HX_REQUEST="true"),
                  c.get(reverse("access-node", args=[paired_node.pk]))):
        assert SECRET_TOKEN not in again.content.decode()
    assert "already been shown" in c.get(reverse("access-token-generated", args=[op.id])).content.decode()
    assert not TokenReveal.objects.exists()


def test_the_token_stops_the_poll_when_shown_in_the_partial(as_role, paired_node, users):
    op = finished_generate(paired_node, users["admin"])
    response = as_role("admin").get(reverse("access-token-generated", args=[op.id]), HTTP_HX_REQUEST="true")
    assert response.status_code == 286 and SECRET_TOKEN in response.content.decode()


def test_another_admin_never_sees_it(client, paired_node, users):
    from django.contrib.auth.models import Group, User

    other = User.objects.create_user("admin2")
    other.groups.add(Group.objects.get_or_create(name="admin")[0])
    op = finished_generate(paired_node, users["admin"])
    client.force_login(other)
    assert client.get(reverse("access-token-generated", args=[op.id])).status_code == 404
    assert TokenReveal.objects.filter(operation_id=op.id).exists()


def test_revoke_needs_confirmation(as_role, cached_token):
    node = cached_token.node
    c = as_role("admin")
    response = c.post(reverse("access-token-revoke", args=[node.pk, cached_token.pk]), {})
    assert response.status_code == 400 and "Tick the box" in response.content.decode()
    assert not Operation.objects.exists()
    response = c.post(reverse("access-token-revoke", args=[node.pk, cached_token.pk]), {"confirm": "1"})
    assert response.status_code == 302
    op = Operation.objects.get(kind="token.revoke")
    assert op.params == {"id": "T-1", "name": "ci", "prefix": "csk_abcdefgh"}


def test_revoking_the_dashboards_own_token_warns(as_role, cached_token):
    node = cached_token.node
    Node.objects.filter(pk=node.pk).update(api_token_prefix="csk_abcdefgh")
    body = as_role("admin").get(reverse("access-token-revoke", args=[node.pk, cached_token.pk])).content.decode()
    assert "the dashboard itself uses" in body


def test_a_token_of_another_node_is_404(as_role, cached_token):
    other = Node.objects.create(name="mac-b", host="127.0.0.1", port=10)
    assert as_role("admin").get(reverse("access-token-revoke", args=[other.pk, cached_token.pk])).status_code == 404
