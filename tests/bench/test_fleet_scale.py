"""What keeps FleetUI fast at fleet scale (see docs/performance.md), pinned so it stays that way:
paged node cards on the fleet page, the shared overview partial, large node columns kept out of
lists, and commits that do not wait for a disk flush in the pollers."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import Group, User
from django.core.cache import cache
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from fleetui.activity.models import Operation
from fleetui.core.crypto import encrypt
from fleetui.nodes import selectors
from fleetui.nodes.models import Node, NodeStatsSample
from fleetui.vms.models import VM

TOKEN = "csk_scale_test_token_0123456789abcdef"


@pytest.fixture(autouse=True)
def _settings(settings: Any) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.POLL_INTERVAL = 10


def _client(role: str, name: str | None = None) -> Client:
    user = User.objects.create_user(name or f"{role}-scale")
    user.groups.add(Group.objects.get_or_create(name=role)[0])
    client = Client()
    client.force_login(user)
    return client


def _node(name: str, *, online: bool = True, **fields: Any) -> Node:
    now = timezone.now()
    seen = now - timedelta(seconds=3) if online else now - timedelta(hours=2)
    values: dict[str, Any] = {
        "name": name, "host": "10.0.0.1", "port": 9473, "api_token_enc": encrypt(TOKEN),
        "api_token_prefix": TOKEN[:12], "token_permission": Node.Permission.FULL_ACCESS, "role": Node.Role.WORKER,
        "cpu_usage_percent": 20.0, "memory_used_gb": 8.0, "memory_total_gb": 32.0, "disk_used_gb": 100.0,
        "disk_total_gb": 1000.0, "stats_at": seen, "last_poll_at": seen, "last_success_at": seen,
    }
    values.update(fields)
    return Node.objects.create(**values)


def _queries(client: Client, url: str, **headers: str) -> tuple[int, str]:
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url, headers=headers)
    assert response.status_code == 200
    return len(ctx), response.content.decode()


@pytest.mark.django_db
def test_it_pages_the_node_cards_with_the_nodes_needing_attention_first() -> None:
    size = selectors.OVERVIEW_PAGE_SIZE
    for i in range(size + 2):
        _node(f"mac-{i:03d}")
    _node("zz-down-1", online=False, last_error="connection refused", last_error_at=timezone.now())
    _node("zz-down-2", online=False, last_error="timed out", last_error_at=timezone.now())
    client = _client("viewer")

    first_queries, first = _queries(client, reverse("fleet-overview"))
    assert first.count('class="card node-card') == size
    # The two offline nodes sort last by name but show first: that is what an operator looks for.
    assert first.index('data-node="zz-down-1"') < first.index('data-node="mac-000"')
    assert 'data-node="zz-down-2"' in first
    assert f"of {size + 4}" in first  # the pager counts every node
    second_queries, second = _queries(client, reverse("fleet-overview") + "?page=2")
    assert second.count('class="card node-card') == 4
    assert 'data-node="mac-049"' in second and 'data-node="zz-down-1"' not in second
    # The live region keeps polling the page it shows.
    assert 'hx-get="/?page=2"' in second
    # Totals are over the whole fleet, whatever page is shown.
    context = selectors.fleet_overview(page=2)
    assert context["totals"].nodes_total == size + 4 and context["totals"].nodes_online == size + 2
    assert first_queries == second_queries


@pytest.mark.django_db
def test_it_reads_sparkline_samples_for_the_shown_page_only() -> None:
    nodes = [_node(f"mac-{i:03d}") for i in range(selectors.OVERVIEW_PAGE_SIZE + 1)]
    now = timezone.now()
    for node in nodes:
        NodeStatsSample.objects.bulk_create([
            NodeStatsSample(node=node, at=now - timedelta(minutes=m), cpu_usage_percent=float(m),
                            memory_used_gb=8.0, memory_total_gb=32.0, disk_used_gb=1.0, disk_total_gb=2.0,
                            running_vm_count=0, total_vm_count=0)
            for m in (40, 20, 10, 1)  # the first is outside the 30-minute window
        ])
    context = selectors.fleet_overview(now=now)
    shown = context["nodes"]
    assert len(shown) == selectors.OVERVIEW_PAGE_SIZE
    assert shown[0].cpu_history == [20.0, 10.0, 1.0]  # oldest first, window only
    assert shown[0].memory_history == [25.0, 25.0, 25.0]


@pytest.mark.django_db
def test_it_shares_the_overview_partial_between_viewers_of_a_role_and_renews_it_on_change() -> None:
    cache.clear()
    _node("mac-001")
    olga, piet = _client("viewer", "olga"), _client("viewer", "piet")
    rendered, first = _queries(olga, reverse("fleet-overview"), HX_Request="true")
    shared, second = _queries(piet, reverse("fleet-overview"), HX_Request="true")
    assert second == first
    # 1. session, 2. user, 3. groups, 4. the change stamp (node count and edits, newest operation)
    assert shared == 4 < rendered
    # A registered node or a recorded operation shows at once, not after the sharing period.
    _node("mac-002")
    _, third = _queries(piet, reverse("fleet-overview"), HX_Request="true")
    assert 'data-node="mac-002"' in third
    Operation.objects.create(kind="vm.start", node_name="mac-002", username="olga")
    _, fourth = _queries(piet, reverse("fleet-overview"), HX_Request="true")
    assert "olga" in fourth
    # Each role has its own copy (what a page offers depends on the role).
    admin_queries, _ = _queries(_client("admin"), reverse("fleet-overview"), HX_Request="true")
    assert admin_queries > 4


@pytest.mark.django_db
def test_it_renders_the_partial_itself_while_redis_is_down(monkeypatch: pytest.MonkeyPatch) -> None:
    import fleetui.core.views as views

    monkeypatch.setattr(views, "broker_reachable", lambda: False)
    monkeypatch.setattr(views.cache, "get", lambda *a, **k: pytest.fail("the cache was asked while Redis is down"))
    _node("mac-001")
    _, html = _queries(_client("viewer"), reverse("fleet-overview"), HX_Request="true")
    assert 'data-node="mac-001"' in html


@pytest.mark.django_db
def test_lists_of_vms_and_nodes_leave_the_large_node_columns_in_the_database() -> None:
    node = _node("pear-manager", role=Node.Role.MANAGER, fleet_overview={"workerNodes": ["x" * 100] * 50})
    VM.objects.create(node=node, remote_id="v1", name="ci-1", state="stopped", last_seen_at=timezone.now(),
                      changed_at=timezone.now())
    client = _client("viewer")
    for url in (reverse("vm-list"), reverse("node-list"), reverse("fleet-overview")):
        with CaptureQueriesContext(connection) as ctx:
            assert client.get(url).status_code == 200
        read = [q["sql"] for q in ctx.captured_queries if re.search(r'"(fleet_overview|resources)"(?!_)', q["sql"])]
        assert read == [], url


@pytest.mark.django_db
def test_a_poll_commits_without_waiting_for_a_disk_flush(sim_fleet: Any) -> None:
    """SQLite runs WAL with synchronous=NORMAL; on PostgreSQL the poll's own transaction turns
    synchronous_commit off. Either way a poll's commit costs microseconds, not a flush."""
    from fleetui.nodes.services import node_poll

    sim = sim_fleet(nodes=1, vms_per_node=2).nodes[0]
    node = Node.objects.create(name=sim.name, host=sim.host, port=sim.port, api_token_enc=encrypt(sim.api_token),
                               token_permission=Node.Permission.FULL_ACCESS)
    with CaptureQueriesContext(connection) as ctx:
        assert node_poll(node_id=node.pk).ok
    relaxed = [q["sql"] for q in ctx.captured_queries if "synchronous_commit" in q["sql"]]
    if connection.vendor == "postgresql":
        assert relaxed == ["SET LOCAL synchronous_commit TO OFF"]
    else:
        assert relaxed == []
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA journal_mode")
            assert cursor.fetchone()[0] == "wal"
            cursor.execute("PRAGMA synchronous")
            assert cursor.fetchone()[0] == 1  # NORMAL
    assert VM.objects.filter(node=node).count() == 2
