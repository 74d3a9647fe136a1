"""Security middleware: the client's address behind trusted proxies, a request id on every
request, and a strict Content-Security-Policy.

TrustedProxyMiddleware: behind a TLS-terminating proxy REMOTE_ADDR is the proxy's address. When
the direct peer is one of settings.TRUSTED_PROXIES, the client is the right-most address of
X-Forwarded-For that is not itself a trusted proxy; REMOTE_ADDR becomes that, so audit records
(Operation.source_ip) and sign-in throttling see the client. From any other peer the header is
ignored (anyone can send it).

RequestIDMiddleware honours a sane X-Request-ID from a proxy (or makes one), keeps it on
`request.request_id` (operation_create stores it on the Operation), and sends it back on the
response so a user's report can be matched with the audit trail and the logs.

ContentSecurityPolicyMiddleware allows scripts and styles from our own origin only: no inline
scripts, no inline event handlers, no eval (htmx runs with allowEval=false and
includeIndicatorStyles=false, set in base.html's htmx-config meta tag).
"""

from __future__ import annotations

import ipaddress
import logging
import re
import uuid
from collections.abc import Callable
from contextvars import ContextVar
from functools import lru_cache

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, HttpResponse

REQUEST_ID_HEADER = "X-Request-ID"
# The id of the request being answered, for log lines (RequestIDLogFilter); "-" outside requests.
current_request_id: ContextVar[str] = ContextVar("fleetui_request_id", default="-")
# What a proxy's request id may look like: short, printable, no spaces (it ends up in logs and the DB).
_SANE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{8,64}$")

DEFAULT_CSP = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)


IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@lru_cache(maxsize=8)
def _networks(entries: tuple[str, ...]) -> tuple[IPNetwork, ...]:
    try:
        return tuple(ipaddress.ip_network(entry.strip(), strict=False) for entry in entries if entry.strip())
    except ValueError as exc:
        raise ImproperlyConfigured(f"FLEETUI_TRUSTED_PROXIES must list IP addresses or networks: {exc}") from None


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text.strip())
    except ValueError:
        return None


def client_address(remote_addr: str, forwarded_for: str, trusted: tuple[IPNetwork, ...]) -> str:
    """The client's address: `remote_addr`, or when that is a trusted proxy, the right-most
    X-Forwarded-For entry that is not one (a malformed entry ends the walk: nothing left of it is believed)."""
    peer = _address(remote_addr)
    if peer is None or not any(peer in network for network in trusted):
        return remote_addr
    client = peer
    for entry in reversed([part for part in forwarded_for.split(",") if part.strip()]):
        address = _address(entry)
        if address is None:
            break
        client = address
        if not any(address in network for network in trusted):
            break
    return str(client)


class TrustedProxyMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        _networks(tuple(getattr(settings, "TRUSTED_PROXIES", ())))  # a bad setting fails at start-up

    def __call__(self, request: HttpRequest) -> HttpResponse:
        trusted = _networks(tuple(getattr(settings, "TRUSTED_PROXIES", ())))
        if trusted:
            remote = request.META.get("REMOTE_ADDR", "")
            request.META["REMOTE_ADDR"] = client_address(remote, request.META.get("HTTP_X_FORWARDED_FOR", ""),
                                                         trusted)
        return self.get_response(request)


def request_id_from(request: HttpRequest) -> str:
    """The caller's X-Request-ID when it is sane, else a fresh one."""
    given = request.META.get("HTTP_X_REQUEST_ID", "")
    if isinstance(given, str) and _SANE_REQUEST_ID.match(given):
        return given
    return uuid.uuid4().hex


class RequestIDMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request.request_id = request_id_from(request)  # type: ignore[attr-defined]
        token = current_request_id.set(request.request_id)  # type: ignore[attr-defined]
        try:
            response = self.get_response(request)
        finally:
            current_request_id.reset(token)
        response[REQUEST_ID_HEADER] = request.request_id  # type: ignore[attr-defined]
        return response


class RequestIDLogFilter(logging.Filter):
    """Puts the current request's id on every log record (`%(request_id)s` in the format)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = current_request_id.get()
        return True


class ContentSecurityPolicyMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.policy = getattr(settings, "CONTENT_SECURITY_POLICY", "") or DEFAULT_CSP

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if "Content-Security-Policy" not in response:
            response["Content-Security-Policy"] = self.policy
        return response
