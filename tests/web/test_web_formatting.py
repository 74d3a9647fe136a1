"""Formatting helpers of the pages, the full-page-or-partial helper, and the demo users command."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import RequestFactory
from django.utils import timezone

from fleetui.core.htmx import render_page_or_partial
from fleetui.core.roles import user_role
from fleetui.core.templatetags import fleetui_tags as tags


@pytest.mark.parametrize(
    ("seconds", "text"), [(0, "0 s"), (12, "12 s"), (59, "59 s"), (60, "1 min"), (3599, "59 min"),
                          (3600, "1 h"), (86399, "23 h"), (86400 * 3, "3 d")],
)
def test_it_says_how_old_a_figure_is(seconds: int, text: str) -> None:
    assert tags.age(timezone.now() - timedelta(seconds=seconds)) == text
    assert tags.age(None) == "never"
    assert f">{text} ago</time>" in tags.ago(timezone.now() - timedelta(seconds=seconds))


def test_it_draws_bars_and_charts_without_style_attributes() -> None:
    assert 'width="100.00"' in tags.usage_bar(250) and "level-crit" in tags.usage_bar(95)
    assert 'width="0.00"' in tags.usage_bar(-5) and "level-ok" in tags.usage_bar(10)
    assert "unknown" in tags.usage_bar(None)
    spark = tags.sparkline([0, 50, 100, 120, -3])
    assert "<polyline" in spark and "style=" not in spark and "last 0%" in spark
    assert "collecting" in tags.sparkline([5])
    now = timezone.now()
    chart = tags.stats_chart({"cpu": [1, 2, 3], "memory": [50, 50, 50], "disk": [10, 10, 10],
                              "start": now - timedelta(minutes=5), "end": now})
    assert chart.count("<polyline") == 3 and "style=" not in chart
    assert "Not enough samples" in tags.stats_chart({"cpu": [1]})


def test_it_downsamples_long_histories() -> None:
    values = list(range(1000))
    small = tags.downsample(values, 60)
    assert len(small) == 60 and small[0] < small[-1] and min(small) >= 0 and max(small) <= 999
    assert tags.downsample([1, 2], 60) == [1, 2]


def test_it_answers_the_partial_only_to_htmx(rf: RequestFactory) -> None:
    from django_htmx.middleware import HtmxDetails

    def answer(headers: dict[str, str], settled: bool = False) -> Any:
        request = rf.get("/", headers=headers)
        request.htmx = HtmxDetails(request)
        return render_page_or_partial(request, "core/_alert.html", {"text": "page"}, "core/_alert.html",
                                      settled=settled)

    assert answer({}).status_code == 200
    assert answer({}, settled=True).status_code == 200  # a browser never gets 286
    assert answer({"HX-Request": "true"}, settled=True).status_code == 286
    assert answer({"HX-Request": "true", "HX-Boosted": "true"}, settled=True).status_code == 200
    assert "HX-Request" in answer({})["Vary"]


def test_it_creates_the_demo_users(db: Any, settings: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FLEETUI_DEMO_PASSWORD", raising=False)
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    call_command("ensure_demo_users", "--password", "demo-pass-123")
    call_command("ensure_demo_users", "--password", "demo-pass-456", "--viewer-password", "viewer-pass-1")
    roles = {u.username: user_role(User.objects.get(pk=u.pk)) for u in User.objects.all()}
    assert roles == {"admin": "admin", "operator": "operator", "viewer": "viewer"}
    assert User.objects.get(username="operator").check_password("demo-pass-456")
    assert User.objects.get(username="viewer").check_password("viewer-pass-1")
    assert User.objects.get(username="admin").is_staff and not User.objects.get(username="viewer").is_staff
    with pytest.raises(CommandError, match="too short"):
        call_command("ensure_demo_users", "--password", "short")
    with pytest.raises(CommandError, match="No password"):
        call_command("ensure_demo_users")
