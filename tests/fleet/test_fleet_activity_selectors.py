"""The merged activity log: order, keyset paging both ways, filters, against a brute-force merge."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from fleetui.activity.models import FleetEvent, Operation
from fleetui.fleet.selectors import ActivityFilter, Cursor, activity_count, activity_iter, activity_page

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def make_log(n_events: int = 60, n_ops: int = 40, seed: int = 3) -> None:
    """Events and operations on a coarse clock, so many share an instant (ties must page right)."""
    rnd = random.Random(seed)
    FleetEvent.objects.bulk_create([
        FleetEvent(remote_id=f"ev-{i}", event_type=rnd.choice(["vm_started", "vm_stopped"]),
                   node_name=rnd.choice(["mac-a", "mac-b"]), message=f"event {i}", vm_name=f"vm-{i % 5}",
                   timestamp=T0 + timedelta(seconds=rnd.randint(0, 30)))
        for i in range(n_events)
    ])
    for i in range(n_ops):
        op = Operation.objects.create(kind=rnd.choice(["vm.start", "vm.stop"]), username=rnd.choice(["ann", "bob"]),
                                      node_name=rnd.choice(["mac-a", "mac-b"]), vm_name=f"vm-{i % 5}",
                                      status="succeeded")
        Operation.objects.filter(pk=op.pk).update(created_at=T0 + timedelta(seconds=rnd.randint(0, 30)))


def brute_force(flt: ActivityFilter) -> list[tuple]:
    rows = []
    if flt.wants_events:
        qs = FleetEvent.objects.all()
        if flt.node:
            qs = qs.filter(node_name=flt.node)
        if flt.type:
            qs = qs.filter(event_type=flt.type)
        rows += [(e.timestamp, "e", e.id) for e in qs]
    if flt.wants_operations:
        qs2 = Operation.objects.all()
        if flt.node:
            qs2 = qs2.filter(node_name=flt.node)
        if flt.type:
            qs2 = qs2.filter(kind=flt.type)
        if flt.user:
            qs2 = qs2.filter(username=flt.user)
        rows += [(o.created_at, "o", o.id) for o in qs2]
    rows.sort(reverse=True)
    return [(at, src, str(i)) for at, src, i in rows]


def keys(rows: list) -> list[tuple]:
    return [(r.at, r.source, r.id) for r in rows]


@pytest.mark.parametrize("flt", [
    ActivityFilter(),
    ActivityFilter(node="mac-a"),
    ActivityFilter(type="vm_started"),
    ActivityFilter(type="vm.start"),
    ActivityFilter(user="ann"),
    ActivityFilter(source="events", node="mac-b"),
    ActivityFilter(source="operations"),
])
def test_it_pages_older_then_newer_exactly_like_a_full_merge(flt: ActivityFilter) -> None:
    make_log()
    expected = brute_force(flt)
    assert activity_count(flt) == len(expected)

    pages = []
    page = activity_page(flt, size=7)
    pages.append(page)
    while page.older is not None:
        page = activity_page(flt, before=page.older, size=7)
        pages.append(page)
    walked = [k for p in pages for k in keys(p.rows)]
    assert walked == expected
    assert pages[0].newer is None

    # And back up again from the last page with ?after=.
    back = [keys(pages[-1].rows)]
    page = pages[-1]
    while page.newer is not None:
        page = activity_page(flt, after=page.newer, size=7)
        back.append(keys(page.rows))
    assert [k for chunk in reversed(back) for k in chunk] == expected


def test_it_iterates_everything_for_the_export() -> None:
    make_log(n_events=120, n_ops=30)
    assert keys(list(activity_iter(ActivityFilter(), chunk=25))) == brute_force(ActivityFilter())


def test_it_filters_by_time_range() -> None:
    make_log()
    since, until = T0 + timedelta(seconds=10), T0 + timedelta(seconds=20)
    rows = list(activity_iter(ActivityFilter(since=since, until=until)))
    assert rows and all(since <= r.at <= until for r in rows)
    assert len(rows) == len([k for k in brute_force(ActivityFilter()) if since <= k[0] <= until])


def test_a_user_filter_leaves_out_node_events() -> None:
    make_log()
    rows = list(activity_iter(ActivityFilter(user="bob")))
    assert rows and all(r.is_operation and r.username == "bob" for r in rows)


def test_bad_cursors_read_as_none() -> None:
    for raw in ["", "x", "2026-01-01T00:00:00~e~notanint", "2026-01-01T00:00:00~o~1",
                "2026-01-01T00:00:00~z~1", "2026-01-01T00:00:00~e~1", "garbage~e~1"]:
        assert Cursor.decode(raw) is None
    ok = Cursor.decode("2026-01-01T00:00:00+00:00~e~12")
    assert ok is not None and ok.id == "12"


def test_a_page_costs_two_queries_however_long_the_log() -> None:
    make_log(n_events=300, n_ops=100)
    # Query 1: events past the cursor (limit size+1); query 2: operations past the cursor.
    with CaptureQueriesContext(connection) as ctx:
        page = activity_page(ActivityFilter(), size=50)
        activity_page(ActivityFilter(), before=page.older, size=50)
    assert len(ctx.captured_queries) == 4
    assert all("LIMIT 51" in q["sql"] for q in ctx.captured_queries)
