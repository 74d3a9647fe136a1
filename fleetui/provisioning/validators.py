"""Validators shared by the provisioning, console and catalog forms.

Each raises django.core.exceptions.ValidationError with a message a person can act on.
"""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import urlsplit

from django.core.exceptions import ValidationError

# Unicode categories refused in names: control (Cc), format (Cf: zero-width and bidi overrides,
# which make a name look like another) and surrogates (Cs).
_REFUSED_CATEGORIES = {"Cc", "Cf", "Cs"}

# An OCI image reference as registries accept it: registry host[:port], one or more lowercase path
# components, then an optional tag and/or sha256 digest. The registry part is required (nodes pull
# from a registry, there is no implicit Docker Hub).
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
OCI_REFERENCE_RE = re.compile(
    rf"^(?P<registry>[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*"
    rf"(?::[0-9]{{1,5}})?)"
    rf"(?P<path>(?:/{_COMPONENT})+)"
    r"(?::(?P<tag>[\w][\w.-]{0,127}))?"
    r"(?:@(?P<digest>sha256:[0-9a-f]{64}))?$"
)
OCI_REFERENCE_MAX = 255
OCI_REFERENCE_HELP = "registry/repository[:tag], e.g. ghcr.io/myorg/macos-base:latest"


def validate_display_name(value: str, *, max_length: int = 64, what: str = "Name") -> str:
    """A name: trimmed, 1..max_length characters, no control or invisible formatting characters."""
    text = (value or "").strip()
    if not text:
        raise ValidationError(f"{what} is required.")
    if len(text) > max_length:
        raise ValidationError(f"{what} must be at most {max_length} characters (it has {len(text)}).")
    for char in text:
        if unicodedata.category(char) in _REFUSED_CATEGORIES:
            raise ValidationError(f"{what} must not contain control or invisible characters (found U+{ord(char):04X}).")
    return text


def validate_free_text(value: str, *, max_length: int, what: str) -> str:
    """A description: may be empty or multi-line, but no other control characters."""
    text = (value or "").strip()
    if len(text) > max_length:
        raise ValidationError(f"{what} must be at most {max_length} characters (it has {len(text)}).")
    for char in text:
        if char in "\n\t":
            continue
        if unicodedata.category(char) in _REFUSED_CATEGORIES and char != "\r":
            raise ValidationError(f"{what} must not contain control or invisible characters (found U+{ord(char):04X}).")
    return text.replace("\r\n", "\n").replace("\r", "\n")


def validate_oci_reference(value: str, *, what: str = "Image reference") -> str:
    text = (value or "").strip()
    if not text:
        raise ValidationError(f"{what} is required.")
    if len(text) > OCI_REFERENCE_MAX:
        raise ValidationError(f"{what} must be at most {OCI_REFERENCE_MAX} characters.")
    if not OCI_REFERENCE_RE.fullmatch(text):
        raise ValidationError(f"{what} is not a valid OCI reference; expected {OCI_REFERENCE_HELP}.")
    return text


def validate_absolute_path(value: str, *, what: str = "Host path", max_length: int = 1024) -> str:
    text = (value or "").strip()
    if not text:
        raise ValidationError(f"{what} is required.")
    if len(text) > max_length:
        raise ValidationError(f"{what} must be at most {max_length} characters.")
    if not text.startswith("/"):
        raise ValidationError(f"{what} must be an absolute path starting with /, e.g. /Users/dev/project.")
    for char in text:
        if unicodedata.category(char) in _REFUSED_CATEGORIES:
            raise ValidationError(f"{what} must not contain control characters.")
    if any(part == ".." for part in text.split("/")):
        raise ValidationError(f"{what} must not contain '..' components.")
    return text


def validate_http_url(value: str, *, what: str = "URL", max_length: int = 2048) -> str:
    text = (value or "").strip()
    if not text:
        raise ValidationError(f"{what} is required.")
    if len(text) > max_length:
        raise ValidationError(f"{what} must be at most {max_length} characters.")
    if any(unicodedata.category(c) in _REFUSED_CATEGORIES or c.isspace() for c in text):
        raise ValidationError(f"{what} must not contain spaces or control characters.")
    try:
        parts = urlsplit(text)
        port = parts.port  # raises ValueError on a bad port
    except ValueError:
        raise ValidationError(f"{what} is not a valid URL.") from None
    if parts.scheme.lower() not in ("http", "https"):
        raise ValidationError(f"{what} must start with http:// or https://.")
    if not parts.hostname:
        raise ValidationError(f"{what} must name a host, e.g. https://updates.cdn-apple.com/....")
    if parts.username or parts.password:
        raise ValidationError(f"{what} must not carry a username or password.")
    del port
    return text
