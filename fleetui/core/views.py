"""The fleet overview (the home page)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_GET

from fleetui.core.htmx import render_page_or_partial
from fleetui.core.roles import viewer_required
from fleetui.nodes import selectors


@require_GET
@viewer_required
def fleet_overview(request: HttpRequest) -> HttpResponse:
    page = request.GET.get("page", "1")
    page = page if page.isdigit() and len(page) <= 6 else "1"
    context = selectors.fleet_overview(page=page)
    return render_page_or_partial(request, "core/fleet_overview.html", context, "core/_fleet_overview.html")
