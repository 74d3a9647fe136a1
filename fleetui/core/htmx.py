"""One place decides whether a view answers with its full page or only a partial (HTMX)."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.cache import patch_vary_headers
from django_htmx.http import trigger_client_event

# HTMX stops polling an element whose request answers 286.
STOP_POLLING = 286


def wants_partial(request: HttpRequest) -> bool:
    """An HTMX request that is not a boosted navigation wants only the fragment."""
    htmx = getattr(request, "htmx", None)
    return bool(htmx) and not htmx.boosted


def render_page_or_partial(
    request: HttpRequest,
    template: str,
    context: dict[str, Any],
    partial_template: str,
    *,
    settled: bool = False,
    status: int = 200,
) -> HttpResponse:
    """The full page for a browser, the partial for HTMX.

    `settled`: what the partial shows will not change any more, so an HTMX poll answers 286
    and the element stops polling. Vary: HX-Request is patched (never overwritten) so caches
    keep the two answers apart.
    """
    if wants_partial(request):
        response = render(request, partial_template, context, status=STOP_POLLING if settled else status)
    else:
        response = render(request, template, context, status=status)
    patch_vary_headers(response, ("HX-Request",))
    return response


def with_client_event(response: HttpResponse, name: str, params: dict[str, Any] | None = None) -> HttpResponse:
    """Fire a DOM event on the client (HX-Trigger) so other live parts refresh at once."""
    return trigger_client_event(response, name, params or {})
