"""The lease countdown: server-rendered text that static/js/lease-countdown.js keeps current."""

from __future__ import annotations

from datetime import datetime

from django import template
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString

register = template.Library()


def lease_text(expires_at: datetime, now: datetime | None = None) -> str:
    """Same wording as the JavaScript: '2 h 05 min 09 s left', 'expired 3 min 10 s ago'."""
    left = (expires_at - (now or timezone.now())).total_seconds()
    s = int(abs(left))
    d, h, m, r = s // 86400, (s % 86400) // 3600, (s % 3600) // 60, s % 60
    if d:
        span = f"{d} d {h} h {m:02d} min"
    elif h:
        span = f"{h} h {m:02d} min {r:02d} s"
    elif m:
        span = f"{m} min {r:02d} s"
    else:
        span = f"{r} s"
    return f"{span} left" if left > 0 else f"expired {span} ago"


@register.simple_tag
def lease_countdown(expires_at: datetime | None, empty: str = "no lease") -> SafeString:
    if expires_at is None:
        return format_html('<span class="muted lease-none">{}</span>', empty)
    now = timezone.now()
    left = (expires_at - now).total_seconds()
    level = "lease-expired" if left <= 0 else ("lease-soon" if left <= 3600 else "")
    return format_html(
        '<time class="lease-countdown {}" datetime="{}" data-expires-at="{}" title="expires {}">{}</time>',
        level,
        expires_at.isoformat(),
        expires_at.isoformat(),
        timezone.localtime(expires_at).strftime("%Y-%m-%d %H:%M:%S %Z"),
        lease_text(expires_at, now),
    )
