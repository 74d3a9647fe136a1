"""Webhook URLs: validation with the node host rules, encryption, and the masked form pages show."""

from __future__ import annotations

from urllib.parse import SplitResult, urlsplit

from django.core.exceptions import ValidationError
from django.views.decorators.debug import sensitive_variables

from fleetui.nodes.services import refused_resolved_address, validate_node_host

MAX_URL_LENGTH = 2000


def _reword(message: str) -> str:
    return (message.replace("not a node's address", "not allowed for webhooks")
            .replace("cannot be nodes", "are not allowed for webhooks")
            .replace(", not a node", ", not allowed for webhooks")
            .replace("the node's IP address or host name", "a host name or IP address"))


@sensitive_variables("url", "parts")
def _split(url: str) -> SplitResult:
    if not isinstance(url, str) or not url.strip():
        raise ValidationError("Enter the webhook's URL (http:// or https://).")
    value = url.strip()
    if len(value) > MAX_URL_LENGTH:
        raise ValidationError(f"A webhook URL has at most {MAX_URL_LENGTH} characters.")
    if any(ord(ch) < 33 or ord(ch) == 127 for ch in value):
        raise ValidationError("A webhook URL has no spaces or control characters.")
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError:
        raise ValidationError("That is not a valid URL (check the host and the port).") from None
    if parts.scheme.lower() not in ("http", "https"):
        raise ValidationError("A webhook URL starts with http:// or https://.")
    if not parts.hostname:
        raise ValidationError("The webhook URL needs a host, e.g. https://hooks.slack.com/services/...")
    if port is not None and not 1 <= port <= 65535:
        raise ValidationError("The port must be a number from 1 to 65535.")
    return parts


@sensitive_variables("url", "parts")
def validate_webhook_url(url: str) -> str:
    """The URL, trimmed; ValidationError in plain words (never quoting the path) for what cannot be a
    webhook: other schemes, and hosts the node rules refuse (link-local, cloud metadata, multicast...)."""
    parts = _split(url)
    try:
        validate_node_host(parts.hostname or "")
    except ValidationError as exc:
        raise ValidationError(_reword(" ".join(exc.messages))) from None
    check_resolved(parts.hostname or "", parts.port or (443 if parts.scheme.lower() == "https" else 80))
    return url.strip()


def check_resolved(host: str, port: int) -> None:
    """Refuse a host name resolving to an address the rules refuse. A name that does not resolve here
    is let through: sending then says so in the delivery log."""
    refused = refused_resolved_address(host, port)
    if refused is None:
        return
    address = refused[0]
    try:
        validate_node_host(address)  # the node rules' own words for what is wrong with it
    except ValidationError as exc:
        raise ValidationError(f"{host} resolves to {address}: " + _reword(" ".join(exc.messages))) from None


@sensitive_variables("url", "parts")
def masked_url(url: str) -> str:
    """scheme://host[:port]/… : the path, query and any user info are hidden (they are the secret)."""
    parts = _split(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    port = f":{parts.port}" if parts.port else ""
    hidden = parts.path not in ("", "/") or parts.query or parts.username
    return f"{parts.scheme.lower()}://{host}{port}/{'…' if hidden else ''}"
