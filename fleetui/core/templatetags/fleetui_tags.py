"""Formatting for the fleet pages: ages ("12 s ago"), sizes, usage bars and server-rendered SVG charts.

Everything here returns escaped markup built with format_html, and the SVG uses presentation
attributes rather than style attributes so a strict Content-Security-Policy needs no 'unsafe-inline'.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from django import template
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

register = template.Library()


def _age_text(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min"
    if seconds < 86400:
        return f"{seconds // 3600} h"
    return f"{seconds // 86400} d"


@register.filter
def age(value: datetime | None) -> str:
    """'12 s', '3 min', '2 h', '5 d' since `value`; 'never' when it is None."""
    if value is None:
        return "never"
    return _age_text((timezone.now() - value).total_seconds())


@register.simple_tag
def ago(value: datetime | None, prefix: str = "") -> SafeString:
    """A <time> saying how long ago `value` was; fleetui.js keeps the text current between polls."""
    if value is None:
        return mark_safe('<span class="muted">never</span>')
    text = f"{prefix}{_age_text((timezone.now() - value).total_seconds())} ago"
    return format_html(
        '<time datetime="{}" data-ago="{}" title="{}">{}</time>',
        value.isoformat(),
        prefix,
        timezone.localtime(value).strftime("%Y-%m-%d %H:%M:%S %Z"),
        text,
    )


@register.simple_tag
def until(value: datetime | None) -> str:
    if value is None:
        return ""
    delta = (value - timezone.now()).total_seconds()
    return f"in {_age_text(delta)}" if delta >= 0 else f"{_age_text(-delta)} ago"


@register.filter
def gb(value: float | None, digits: int = 1) -> str:
    if value is None:
        return "–"
    return f"{value:.{digits}f} GB"


@register.filter
def mb_as_gb(value: int | None) -> str:
    if value is None:
        return "–"
    gib = value / 1024
    return f"{gib:.0f} GB" if gib == int(gib) else f"{gib:.1f} GB"


@register.filter
def pct(value: float | None, digits: int = 0) -> str:
    if value is None:
        return "–"
    return f"{value:.{digits}f}%"


@register.filter
def ratio_pct(used: float | None, total: float | None) -> float | None:
    if used is None or not total:
        return None
    return max(0.0, min(100.0, 100.0 * used / total))


def _level(percent: float) -> str:
    if percent >= 90:
        return "crit"
    if percent >= 75:
        return "warn"
    return "ok"


@register.simple_tag
def usage_bar(percent: float | None, label: str = "") -> SafeString:
    """A thin horizontal bar coloured by level (ok/warn/crit), drawn in SVG."""
    if percent is None:
        return format_html('<svg class="bar bar-empty" viewBox="0 0 100 6" preserveAspectRatio="none" '
                           'role="img" aria-label="{} unknown"><rect class="bar-bg" width="100" height="6"/></svg>',
                           label)
    value = max(0.0, min(100.0, float(percent)))
    return format_html(
        '<svg class="bar" viewBox="0 0 100 6" preserveAspectRatio="none" role="img" aria-label="{} {}%">'
        '<rect class="bar-bg" width="100" height="6"/>'
        '<rect class="bar-fill level-{}" width="{}" height="6"/></svg>',
        label,
        f"{value:.0f}",
        _level(value),
        f"{value:.2f}",
    )


def _points(values: Sequence[float], width: float, height: float, top: float, pad: float = 1.0) -> list[tuple]:
    n = len(values)
    step = (width - 2 * pad) / (n - 1) if n > 1 else 0
    out = []
    for i, v in enumerate(values):
        v = max(0.0, min(top, float(v)))
        out.append((round(pad + i * step, 2), round(height - pad - (height - 2 * pad) * v / top, 2)))
    return out


def downsample(values: Sequence[float], limit: int) -> list[float]:
    """At most `limit` points, averaging neighbours, so a chart's size does not grow with history."""
    values = list(values)
    if len(values) <= limit:
        return values
    size = len(values) / limit
    return [
        sum(chunk) / len(chunk)
        for chunk in (values[int(i * size): max(int((i + 1) * size), int(i * size) + 1)] for i in range(limit))
    ]


@register.simple_tag
def sparkline(values: Sequence[float] | None, width: int = 160, height: int = 36, top: float = 100.0,
              label: str = "history") -> SafeString:
    """A small filled line chart of percentages (oldest first)."""
    values = downsample(values or [], 60)
    if len(values) < 2:
        return format_html(
            '<svg class="spark spark-empty" viewBox="0 0 {} {}" width="{}" height="{}" role="img" aria-label="{}">'
            '<text x="50%" y="60%" text-anchor="middle">collecting…</text></svg>',
            width, height, width, height, f"{label}: not enough samples yet")
    pts = _points(values, width, height, top)
    line = " ".join(f"{x},{y}" for x, y in pts)
    area = f"{pts[0][0]},{height} " + line + f" {pts[-1][0]},{height}"
    return format_html(
        '<svg class="spark" viewBox="0 0 {w} {h}" width="{w}" height="{h}" preserveAspectRatio="none" '
        'role="img" aria-label="{label}: last {last}%"><polygon class="spark-area" points="{area}"/>'
        '<polyline class="spark-line" points="{line}"/></svg>',
        w=width, h=height, area=area, line=line, label=label, last=f"{max(0.0, min(top, values[-1])):.0f}",
    )


@register.simple_tag
def stats_chart(series: dict[str, Any] | None, width: int = 640, height: int = 160) -> SafeString:
    """A line chart of CPU, memory and disk use (percent) over time, with gridlines and time labels.

    `series` is {"cpu": [...], "memory": [...], "disk": [...], "start": datetime, "end": datetime}.
    """
    if not series or len(series.get("cpu", [])) < 2:
        return mark_safe('<div class="chart-empty">Not enough samples for a chart yet.</div>')
    left, bottom, right, top_pad = 34, 18, 8, 6
    plot_w, plot_h = width - left - right, height - bottom - top_pad
    grid = format_html_join(
        "",
        '<line class="grid" x1="{}" x2="{}" y1="{}" y2="{}"/><text class="axis" x="{}" y="{}" '
        'text-anchor="end">{}%</text>',
        (
            (left, width - right, top_pad + plot_h * (1 - p / 100), top_pad + plot_h * (1 - p / 100),
             left - 4, top_pad + plot_h * (1 - p / 100) + 3, p)
            for p in (0, 25, 50, 75, 100)
        ),
    )
    lines = []
    for key in ("disk", "memory", "cpu"):
        values = downsample(series.get(key) or [], 120)
        if len(values) < 2:
            continue
        pts = _points(values, plot_w, plot_h, 100.0, pad=0)
        line = " ".join(f"{x + left},{y + top_pad}" for x, y in pts)
        lines.append(format_html('<polyline class="chart-line chart-{}" points="{}"/>', key, line))
    start, end = series.get("start"), series.get("end")
    labels = ""
    if start and end:
        labels = format_html(
            '<text class="axis" x="{}" y="{}">{}</text><text class="axis" x="{}" y="{}" text-anchor="end">{}</text>',
            left, height - 4, timezone.localtime(start).strftime("%H:%M"),
            width - right, height - 4, timezone.localtime(end).strftime("%H:%M"),
        )
    return format_html(
        '<svg class="chart" viewBox="0 0 {w} {h}" width="100%" height="{h}" preserveAspectRatio="none" role="img" '
        'aria-label="CPU, memory and disk use over time">{grid}{lines}{labels}</svg>',
        w=width, h=height, grid=grid, lines=mark_safe("".join(lines)), labels=labels,
    )


@register.filter
def state_class(value: str | None) -> str:
    """CSS modifier for a VM, task, operation or health state."""
    return {
        "running": "ok", "online": "ok", "succeeded": "ok", "completed": "ok",
        "starting": "busy", "stopping": "busy", "pending": "busy",
        "paused": "warn", "stale": "warn", "cancelled": "muted",
        "stopped": "idle",
        "error": "crit", "offline": "crit", "failed": "crit",
    }.get(value or "", "muted")


@register.filter
def status_class(value: str | None) -> str:
    """CSS modifier for an operation or node-task status."""
    return {
        "pending": "busy", "running": "busy", "succeeded": "ok", "completed": "ok",
        "failed": "crit", "cancelled": "muted",
    }.get(value or "", "muted")


@register.simple_tag(takes_context=True)
def nav_class(context: template.Context, *prefixes: str) -> str:
    """'active' when the current URL name starts with one of `prefixes`."""
    request = context.get("request")
    match = getattr(request, "resolver_match", None)
    name = getattr(match, "url_name", "") or ""
    return "active" if any(name.startswith(p) for p in prefixes) else ""


KIND_LABELS = {
    "vm.start": "Start VM",
    "vm.stop": "Stop VM",
    "vm.suspend": "Suspend VM",
    "vm.resume": "Resume VM",
    "vm.start_recovery": "Start VM in recovery",
    "snapshot.create": "Create snapshot",
    "snapshot.restore": "Restore snapshot",
    "snapshot.delete": "Delete snapshot",
    "image.pull": "Pull image",
}


@register.filter
def op_label(kind: str) -> str:
    """The human label of an Operation kind: the registry's when it has one, else ours, else the kind."""
    try:
        from fleetui.activity.registry import get_kind

        spec = get_kind(kind)
        if spec is not None and spec.label:
            return spec.label
    except ImportError:  # the worker side is not installed: our own labels will do
        pass
    return KIND_LABELS.get(kind, kind)


@register.filter
def op_target(op: Any) -> str:
    """What an operation acts on, in words: 'vm-01 on mac-mini-2', or the image reference."""
    params = op.params or {}
    if op.kind == "image.pull" and params.get("reference"):
        return f"{params['reference']} on {op.node_name}"
    if op.kind.startswith("snapshot.") and (params.get("name") or params.get("snapshot_name")):
        name = params.get("name") or params.get("snapshot_name")
        return f"{name} of {op.vm_name} on {op.node_name}"
    if op.vm_name:
        return f"{op.vm_name} on {op.node_name}"
    return op.node_name
