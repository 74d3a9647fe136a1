"""GET /search/?q=...: the header box's live results (HTMX partial) or a page of results (no JS)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.views.decorators.http import require_GET

from fleetui.core.htmx import render_page_or_partial
from fleetui.core.roles import viewer_required
from fleetui.search.forms import SearchForm
from fleetui.search.selectors import PER_KIND, first_hit, fleet_search


@require_GET
@viewer_required
def search(request: HttpRequest) -> HttpResponse:
    form = SearchForm(request.GET)
    text = form.cleaned_data["q"] if form.is_valid() else ""
    groups = fleet_search(text)
    if form.is_valid() and form.cleaned_data["jump"]:
        best = first_hit(groups)
        if best is not None:
            return redirect(best.url)
    context = {"form": form, "q": text, "search_q": text, "groups": groups, "per_kind": PER_KIND,
               "count": sum(len(g.hits) for g in groups)}
    return render_page_or_partial(request, "search/search_page.html", context, "search/_results.html")
