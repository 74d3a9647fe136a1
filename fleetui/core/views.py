"""The fleet overview (the home page)."""

from __future__ import annotations

import hashlib
import logging
import time

from django.core.cache import cache
from django.db import connection
from django.http import HttpRequest, HttpResponse
from django.template.loader import render_to_string
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_GET

from fleetui.activity.models import Operation
from fleetui.core.broker import broker_reachable
from fleetui.core.htmx import render_page_or_partial, wants_partial
from fleetui.core.roles import user_role, viewer_required
from fleetui.nodes import selectors
from fleetui.nodes.models import Node

logger = logging.getLogger(__name__)

# Every open overview polls its partial each interval, and at a few hundred viewers the same HTML
# would be rendered over and over. It is shared for this many seconds per role, page and node set,
# so what a viewer sees is at most this much older than the database (which the workers refresh
# every POLL_INTERVAL anyway). Past that, one request renders it afresh while the others keep
# getting the previous copy (never older than OVERVIEW_PARTIAL_STALE_SECONDS), so a crowd of
# viewers never renders it all at once.
OVERVIEW_PARTIAL_SECONDS = 2.0
OVERVIEW_PARTIAL_STALE_SECONDS = 20


def _partial_key(request: HttpRequest, page: str) -> str:
    """Role and page, plus what changes at once when nodes are registered, edited or removed, or a
    click records an operation (one cheap query on indexed columns)."""
    node, operation = Node._meta.db_table, Operation._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT (SELECT COUNT(*) FROM {node}), (SELECT MAX(updated_at) FROM {node}), "
            f"(SELECT MAX(created_at) FROM {operation})"
        )
        stamp = "|".join(str(value) for value in cursor.fetchone())
    digest = hashlib.blake2b(stamp.encode(), digest_size=8).hexdigest()
    return f"overview-partial:{user_role(request.user)}:{page}:{digest}"


@require_GET
@viewer_required
def fleet_overview(request: HttpRequest) -> HttpResponse:
    page = request.GET.get("page", "1")
    page = page if page.isdigit() and len(page) <= 6 else "1"
    if not wants_partial(request):
        context = selectors.fleet_overview(page=page)
        return render_page_or_partial(request, "core/fleet_overview.html", context, "core/_fleet_overview.html")
    # The cache lives in Redis: skipped while Redis is down, so the page never waits on it.
    if broker_reachable():
        html = _shared_partial(request, page)
    else:
        html = _render_partial(request, page)
    response = HttpResponse(html)
    patch_vary_headers(response, ("HX-Request",))
    return response


def _render_partial(request: HttpRequest, page: str) -> str:
    return render_to_string("core/_fleet_overview.html", selectors.fleet_overview(page=page), request)


def _shared_partial(request: HttpRequest, page: str) -> str:
    key = _partial_key(request, page)
    try:
        entry = cache.get(key)
        if entry is not None and (
            time.time() - entry[0] < OVERVIEW_PARTIAL_SECONDS or not cache.add(f"{key}:render", 1, 10)
        ):
            return entry[1]  # fresh, or another request is rendering it right now
    except Exception:  # noqa: BLE001 - a cache failure costs a render, never the page
        logger.warning("overview cache unavailable", exc_info=True)
        return _render_partial(request, page)
    html = _render_partial(request, page)
    try:
        cache.set(key, (time.time(), html), OVERVIEW_PARTIAL_STALE_SECONDS)
        cache.delete(f"{key}:render")
    except Exception:  # noqa: BLE001
        logger.warning("overview cache unavailable", exc_info=True)
    return html
