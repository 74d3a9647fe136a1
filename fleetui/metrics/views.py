"""GET /metrics: the Prometheus exposition, for a scraper holding FLEETUI_METRICS_TOKEN."""

from __future__ import annotations

import hmac

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, HttpResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from fleetui.metrics.collector import registry


def _authorized(request: HttpRequest) -> bool:
    expected = str(settings.METRICS_TOKEN or "")
    if not expected:
        return False  # no token configured: the endpoint is closed
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        return False
    # Constant time, so the token cannot be guessed byte by byte from response times.
    return hmac.compare_digest(given.strip().encode(), expected.encode())


@login_not_required
@never_cache
@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    if not _authorized(request):
        response = HttpResponse(
            "Unauthorized: send the header 'Authorization: Bearer <FLEETUI_METRICS_TOKEN>'.\n",
            status=401, content_type="text/plain; charset=utf-8",
        )
        response["WWW-Authenticate"] = 'Bearer realm="fleetui-metrics"'
        return response
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
