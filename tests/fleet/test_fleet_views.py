"""Fleet pages per role, wrong methods, bad input; the activity log page and its CSV export."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest
from django.urls import reverse

from fleetui.activity.models import FleetEvent, Operation
from fleetui.nodes.models import Node
from fleetui.vms.models import VM

pytestmark = pytest.mark.django_db

ALL = ("viewer", "operator", "admin")


@pytest.fixture()
def node(db) -> Node:
    return Node.objects.create(name="mac-a", host="127.0.0.1", port=9, api_token_enc="x", token_permission="fullAccess")


def urls(node: Node) -> dict[str, str]:
    return {
        "activity": reverse("activity"),
        "export": reverse("activity-export"),
        "managers": reverse("managers"),
        "register": reverse("managers-register-worker"),
        "utilities": reverse("utilities"),
        "cleanup": reverse("utilities-cleanup", args=[node.pk]),
        "unpair": reverse("utilities-unpair", args=[node.pk]),
    }


@pytest.mark.parametrize("name", ["activity", "export", "managers", "register", "utilities", "cleanup", "unpair"])
def test_it_sends_anonymous_users_to_the_login_page(client, node, name):
    response = client.get(urls(node)[name])
    assert response.status_code == 302 and reverse("login") in response["Location"]


@pytest.mark.parametrize("name,needs", [
    ("activity", "viewer"), ("export", "viewer"), ("managers", "viewer"), ("register", "admin"),
    ("utilities", "admin"), ("cleanup", "admin"), ("unpair", "admin"),
])
@pytest.mark.parametrize("role", ["none", *ALL])
def test_it_checks_the_role(as_role, node, name, needs, role):
    rank = {"none": 0, "viewer": 1, "operator": 2, "admin": 3}
    response = as_role(role).get(urls(node)[name])
    assert response.status_code == (200 if rank[role] >= rank[needs] else 403)


@pytest.mark.parametrize("name,method", [
    ("activity", "post"), ("export", "post"), ("managers", "post"), ("register", "post"), ("utilities", "post"),
    ("cleanup", "put"), ("unpair", "delete"),
])
def test_it_answers_405_to_the_wrong_method(as_role, node, name, method):
    response = getattr(as_role("admin"), method)(urls(node)[name])
    assert response.status_code == 405


def test_posts_by_non_admins_are_refused_and_change_nothing(as_role, node):
    for role in ("viewer", "operator"):
        c = as_role(role)
        assert c.post(urls(node)["cleanup"], {"force": ""}).status_code == 403
        assert c.post(urls(node)["unpair"], {"confirm": "1"}).status_code == 403
    assert not Operation.objects.exists()


# ----------------------------------------------------------------------------- activity log

@pytest.fixture()
def log(node, users):
    t0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    FleetEvent.objects.bulk_create([
        FleetEvent(source_node=node, remote_id=f"e{i}", event_type="vm_started" if i % 2 else "vm_stopped",
                   node_name="mac-a" if i < 6 else "mac-b", vm_name=f"vm{i}", message=f"message {i}",
                   timestamp=t0 + timedelta(minutes=i))
        for i in range(10)
    ])
    op = Operation.objects.create(kind="vm.start", user=users["operator"], username="operator1", node=node,
                                  node_name="mac-a", vm_name="vm3", status="failed", error="licence limit")
    Operation.objects.filter(pk=op.pk).update(created_at=t0 + timedelta(minutes=3, seconds=30))
    return t0


def test_the_log_merges_events_and_operations_newest_first(as_role, log):
    response = as_role("viewer").get(reverse("activity"))
    body = response.content.decode()
    assert response.status_code == 200
    assert body.index("message 9") < body.index("message 4") < body.index("licence limit") < body.index("message 3")
    assert "operator1" in body and "11 matching entries" in body


def test_the_log_filters(as_role, log):
    c = as_role("viewer")
    body = c.get(reverse("activity"), {"node": "mac-b"}).content.decode()
    assert "message 7" in body and "message 2" not in body and "licence limit" not in body
    body = c.get(reverse("activity"), {"type": "vm.start"}).content.decode()
    assert "licence limit" in body and "message 3" not in body and "1 matching entry" in body
    body = c.get(reverse("activity"), {"user": "operator1"}).content.decode()
    assert "1 matching entry" in body
    body = c.get(reverse("activity"), {"since": "2026-12-01T12:05", "until": "2026-12-01T12:07"}).content.decode()
    assert "3 matching entries" in body


def test_bad_filters_say_why_and_show_nothing(as_role, log):
    c = as_role("viewer")
    response = c.get(reverse("activity"), {"since": "yesterday"})
    assert response.status_code == 200 and "Enter a valid date/time" in response.content.decode()
    assert "Fix the filters" in response.content.decode()
    response = c.get(reverse("activity"), {"since": "2026-12-02T00:00", "until": "2026-12-01T00:00"})
    assert "must be after" in response.content.decode()
    response = c.get(reverse("activity"), {"node": "bad\x01name"})
    assert "control characters" in response.content.decode()
    response = c.get(reverse("activity"), {"user": "bad\x00name"})
    assert "Null characters are not allowed" in response.content.decode()
    assert c.get(reverse("activity-export"), {"since": "nope"}).status_code == 400


def test_paging_links_walk_the_log(as_role, log, monkeypatch):
    from fleetui.fleet import views

    monkeypatch.setattr(views, "PAGE_SIZE", 4)
    c = as_role("viewer")
    page1 = c.get(reverse("activity"))
    older = page1.context["page"].older.encode()
    page2 = c.get(reverse("activity"), {"before": older})
    assert [r.message for r in page2.context["page"].rows][0] == "message 5"
    newer = page2.context["page"].newer.encode()
    back = c.get(reverse("activity"), {"after": newer})
    assert [r.id for r in back.context["page"].rows] == [r.id for r in page1.context["page"].rows]
    # A forged cursor reads as the first page, not an error.
    assert c.get(reverse("activity"), {"before": "x~e~1"}).status_code == 200


def test_the_first_page_polls_itself_and_answers_the_partial(as_role, log):
    c = as_role("viewer")
    body = c.get(reverse("activity")).content.decode()
    assert 'hx-trigger="every' in body
    partial = c.get(reverse("activity"), HTTP_HX_REQUEST="true")
    assert partial.status_code == 200 and "<html" not in partial.content.decode()
    assert "HX-Request" in partial["Vary"]


def test_a_node_filter_also_matches_the_name_the_fleet_gives_it(as_role, node, users):
    # Registered here as "mac-a"; its manager knows it (by node id) as "Build Mac A".
    Node.objects.filter(pk=node.pk).update(remote_node_id="N-A")
    Node.objects.create(name="boss", host="127.0.0.1", port=10, role="manager", fleet_overview={
        "managerNode": {"name": "boss", "nodeID": "N-B"},
        "workerNodes": [{"name": "Build Mac A", "nodeID": "N-A", "connectionState": "connected"}]},
        fleet_overview_at=datetime.now(UTC))
    FleetEvent.objects.create(source_node=node, remote_id="x", event_type="vm_started", node_name="Build Mac A",
                              message="fleet-named event", timestamp=datetime(2026, 1, 1, tzinfo=UTC))
    Operation.objects.create(kind="vm.start", user=users["admin"], username="admin1", node=node, node_name="mac-a",
                             status="succeeded")
    for value in ("mac-a", "Build Mac A"):
        body = as_role("viewer").get(reverse("activity"), {"node": value}).content.decode()
        assert "fleet-named event" in body and "2 matching entries" in body


def test_the_log_page_costs_a_fixed_number_of_queries(as_role, log, django_assert_num_queries):
    c = as_role("viewer")
    c.get(reverse("activity"))
    # session, user, user's groups (role); events page, operations page; events count, operations count;
    # filter options: event types, operation kinds, node names, usernames.
    with django_assert_num_queries(11):
        c.get(reverse("activity"))
    # The live refresh of the table skips the filter options.
    with django_assert_num_queries(7):
        c.get(reverse("activity"), HTTP_HX_REQUEST="true")


def test_the_csv_export_streams_the_filtered_view(as_role, log):
    response = as_role("viewer").get(reverse("activity-export"), {"node": "mac-a"})
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0] == ["time_utc", "source", "type", "node", "vm", "user", "status", "message"]
    assert len(rows) == 1 + 6 + 1
    assert {r[3] for r in rows[1:]} == {"mac-a"}
    assert rows[1][0] == "2026-12-01T12:05:00+00:00"


def test_the_csv_export_neutralises_formulas(as_role, node):
    FleetEvent.objects.create(source_node=node, remote_id="evil", event_type="vm_created", node_name="mac-a",
                              message="=HYPERLINK(\"http://x\")", timestamp=datetime(2026, 1, 1, tzinfo=UTC))
    body = b"".join(as_role("viewer").get(reverse("activity-export")).streaming_content).decode()
    assert "'=HYPERLINK" in body


def test_html_from_a_node_is_shown_inert(as_role, node):
    FleetEvent.objects.create(source_node=node, remote_id="xss", event_type="vm_created", node_name="mac-a",
                              vm_name="<script>alert(1)</script>", message="<img src=x onerror=alert(1)>",
                              timestamp=datetime(2026, 1, 1, tzinfo=UTC))
    body = as_role("viewer").get(reverse("activity")).content.decode()
    assert "<script>alert(1)</script>" not in body and "&lt;img src=x" in body


# ----------------------------------------------------------------------------- managers

def test_managers_show_their_workers_and_offer_registration_to_admins(as_role, node):
    Node.objects.filter(pk=node.pk).update(role="manager", remote_node_id="M-1", fleet_overview={
        "stats": {"connectedNodes": 2, "totalNodes": 3, "runningVMs": 1, "totalVMs": 4},
        "managerNode": {"name": "mac-a", "nodeID": "M-1"},
        "workerNodes": [
            {"name": "mac-b", "nodeID": "W-1", "ipAddress": "10.0.0.2", "port": 9473, "connectionState": "connected",
             "runningVMs": 1, "totalVMs": 2},
            {"name": "mac-<c>", "nodeID": "W-2", "ipAddress": "10.0.0.3", "port": 9500,
             "connectionState": "disconnected"},
            "garbage",
        ],
    }, fleet_overview_at=datetime.now(UTC))
    Node.objects.create(name="mac-b-here", host="10.0.0.9", port=9473, remote_node_id="W-1")
    admin = as_role("admin").get(reverse("managers")).content.decode()
    assert "registered as mac-b-here" in admin
    assert "disconnected" in admin and "mac-&lt;c&gt;" in admin
    link = f'{reverse("managers-register-worker")}?name=mac-%3Cc%3E&amp;host=10.0.0.3&amp;port=9500'
    assert link in admin
    form = as_role("admin").get(link.replace("&amp;", "&")).content.decode()
    assert 'value="mac-&lt;c&gt;"' in form and 'value="10.0.0.3"' in form and 'value="9500"' in form
    assert f'action="{reverse("node-add")}"' in form


def test_viewers_see_workers_without_the_register_button(as_role, node):
    Node.objects.filter(pk=node.pk).update(role="manager", fleet_overview={
        "workerNodes": [{"name": "mac-z", "ipAddress": "10.0.0.5", "port": 9473, "connectionState": "connected"}]},
        fleet_overview_at=datetime.now(UTC))
    body = as_role("viewer").get(reverse("managers")).content.decode()
    assert "mac-z" in body and "Register this worker" not in body and "not registered" in body


def test_no_manager_says_so(as_role, node):
    assert "No manager node is registered" in as_role("viewer").get(reverse("managers")).content.decode()


# ----------------------------------------------------------------------------- utilities

@pytest.fixture()
def vms(node):
    now = datetime.now(UTC)
    make = lambda name, intent, expires: VM.objects.create(  # noqa: E731
        node=node, remote_id=name, name=name, intent=intent, expires_at=expires, last_seen_at=now, changed_at=now,
        settings_at=now)
    return {
        "old-disposable": make("old-disposable", "disposable", now - timedelta(hours=1)),
        "old-persistent": make("old-persistent", "persistent", now - timedelta(hours=1)),
        "fresh-disposable": make("fresh-disposable", "disposable", now + timedelta(hours=1)),
        "no-ttl": make("no-ttl", "persistent", None),
    }


def test_the_dry_run_lists_exactly_what_would_go(as_role, node, vms):
    c = as_role("admin")
    body = c.get(reverse("utilities-cleanup", args=[node.pk])).content.decode()
    assert "old-disposable" in body and "old-persistent" not in body and "fresh-disposable" not in body
    body = c.get(reverse("utilities-cleanup", args=[node.pk]), {"force": "1"}).content.decode()
    assert "old-disposable" in body and "old-persistent" in body and "fresh-disposable" not in body


def test_a_cleanup_run_records_the_preview_with_the_operation(as_role, node, vms):
    response = as_role("admin").post(reverse("utilities-cleanup", args=[node.pk]), {})
    op = Operation.objects.get(kind="node.cleanup")
    assert response.status_code == 302 and response["Location"] == reverse("cleanup-result", args=[op.id])
    assert op.params["force"] is False and op.params["expected_count"] == 1
    assert op.params["expected"] == [{"id": "old-disposable", "name": "old-disposable"}]
    page = as_role("admin").get(reverse("cleanup-result", args=[op.id]))
    assert page.status_code == 200 and "old-disposable" in page.content.decode()


def test_force_needs_the_typed_node_name(as_role, node, vms):
    c = as_role("admin")
    for typed in ("", "MAC-A", "mac-b"):
        response = c.post(reverse("utilities-cleanup", args=[node.pk]), {"force": "1", "confirm_name": typed})
        assert response.status_code == 400 and "type the node" in response.content.decode()
    assert not Operation.objects.exists()
    response = c.post(reverse("utilities-cleanup", args=[node.pk]), {"force": "1", "confirm_name": "mac-a"})
    assert response.status_code == 302
    assert Operation.objects.get().params["expected_count"] == 2


def test_a_read_only_node_cannot_be_cleaned(as_role, node, vms):
    Node.objects.filter(pk=node.pk).update(token_permission="readOnly")
    response = as_role("admin").post(reverse("utilities-cleanup", args=[node.pk]), {})
    assert response.status_code == 400 and "read-only" in response.content.decode()
    assert not Operation.objects.exists()


def test_unpair_needs_confirmation_and_a_pairing(as_role, node):
    c = as_role("admin")
    response = c.post(reverse("utilities-unpair", args=[node.pk]), {})
    assert response.status_code == 400 and "Tick the box" in response.content.decode()
    response = c.post(reverse("utilities-unpair", args=[node.pk]), {"confirm": "1"})
    assert response.status_code == 400 and "not paired" in response.content.decode()
    assert not Operation.objects.exists()
    Node.objects.filter(pk=node.pk).update(paired_node_id_enc="enc", pairing_private_key_enc="enc")
    response = c.post(reverse("utilities-unpair", args=[node.pk]), {"confirm": "1", "forget": "1"})
    op = Operation.objects.get(kind="node.unpair")
    assert response.status_code == 302 and op.params["forget"] is True and op.username == "admin1"


def test_unknown_nodes_and_operations_are_404(as_role, node):
    c = as_role("admin")
    assert c.get(reverse("utilities-cleanup", args=[9999])).status_code == 404
    assert c.get(reverse("cleanup-result", args=["00000000-0000-0000-0000-000000000000"])).status_code == 404


def test_the_register_prefill_ignores_bad_values(as_role):
    response = as_role("admin").get(reverse("managers-register-worker"), {"name": "a\x01b", "host": "h" * 300,
                                                                          "port": "99999"})
    body = response.content.decode()
    assert response.status_code == 200 and 'value="9473"' in body and "h" * 254 not in body and "a\x01b" not in body



def test_reading_the_settings_again_is_for_admins_by_post(as_role, node):
    # The admin's POST and what it queues are exercised with the real worker in test_fleet_worker.py.
    url = reverse("utilities-cleanup-refresh", args=[node.pk])
    assert as_role("viewer").post(url).status_code == 403
    assert as_role("operator").post(url).status_code == 403
    assert as_role("admin").get(url).status_code == 405
