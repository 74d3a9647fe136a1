"""Shared form pieces: plain-text fields that refuse control characters and NUL bytes."""

from __future__ import annotations

import unicodedata
from typing import Any

from django import forms
from django.core.exceptions import ValidationError


def refuse_control_characters(value: str) -> None:
    if any(unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co") for ch in value):
        raise ValidationError("Remove the control or invisible characters from this field.")


class PlainCharField(forms.CharField):
    """A single-line text field: trimmed, no control characters (NUL included)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.validators.append(refuse_control_characters)


def refuse_control_characters_multiline(value: str) -> None:
    refuse_control_characters(value.replace("\n", "").replace("\r", "").replace("\t", ""))


class PlainTextField(forms.CharField):
    """A multi-line text field: newlines and tabs allowed, other control characters refused."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("widget", forms.Textarea(attrs={"rows": 2}))
        super().__init__(*args, **kwargs)
        self.validators.append(refuse_control_characters_multiline)


class SecretField(forms.CharField):
    """A password-like field that is never rendered back into the page."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("widget", forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}))
        kwargs.setdefault("strip", False)
        super().__init__(*args, **kwargs)
        self.validators.append(refuse_control_characters)
