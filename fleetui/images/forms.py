"""The image pull form. Registry credentials are used once: passed to the worker as Operation secrets,
never stored, never rendered back."""

from __future__ import annotations

import re
from typing import Any

from django import forms

from fleetui.core.forms import PlainCharField, SecretField

# registry/namespace/name[:tag][@sha256:digest], lowercase path components as the OCI distribution spec has it.
OCI_REFERENCE = re.compile(
    r"^(?:(?P<registry>[a-zA-Z0-9.-]+(?::[0-9]{1,5})?)/)?"
    r"(?P<path>[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*)"
    r"(?::(?P<tag>[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}))?"
    r"(?:@(?P<digest>[a-z0-9]+(?:[+._-][a-z0-9]+)*:[0-9a-fA-F]{32,}))?$"
)


class ImagePullForm(forms.Form):
    reference = PlainCharField(
        max_length=512, label="Image reference", help_text="e.g. ghcr.io/cirruslabs/macos-sequoia-base:latest"
    )
    username = PlainCharField(required=False, max_length=256, label="Registry username")
    password = SecretField(required=False, max_length=1024, label="Registry password or token")

    def clean_reference(self) -> str:
        reference = self.cleaned_data["reference"].strip()
        if not OCI_REFERENCE.match(reference):
            raise forms.ValidationError(
                "Not an OCI image reference. Use registry/name:tag, e.g. ghcr.io/org/image:latest."
            )
        return reference

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if bool(data.get("username")) != bool(data.get("password")):
            raise forms.ValidationError("Give both the registry username and password, or neither.")
        return data

    def secrets(self) -> dict[str, str]:
        if self.cleaned_data.get("username"):
            return {"username": self.cleaned_data["username"], "password": self.cleaned_data["password"]}
        return {}
