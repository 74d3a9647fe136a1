"""Forms of the access app: pairing code, token generation, revocation."""

from __future__ import annotations

import re

from django import forms

from fleetui.access.models import TokenPermission

_CODE = re.compile(r"[0-9]{6}")  # ASCII only: \d would also take Arabic-Indic and other digits


class PairForm(forms.Form):
    code = forms.CharField(
        max_length=20, label="Pairing code",
        help_text="The 6-digit code the node shows in CiderStack Fleet's pairing window.",
        widget=forms.TextInput(attrs={"inputmode": "numeric", "autocomplete": "off", "pattern": r"[0-9 ]{6,7}",
                                      # Kept as typed while the panel refreshes itself (HTMX polling).
                                      "hx-preserve": "true"}),
    )

    def clean_code(self) -> str:
        code = self.cleaned_data["code"].replace(" ", "").replace("-", "")
        if not _CODE.fullmatch(code):
            raise forms.ValidationError("The pairing code is the 6 digits the node shows, e.g. 123456.")
        return code


class GenerateTokenForm(forms.Form):
    # hx-preserve: what is typed survives the panel's live refresh while an operation runs.
    name = forms.CharField(max_length=64, label="Name", help_text="Who or what will use it, e.g. “ci-runner”.",
                           widget=forms.TextInput(attrs={"hx-preserve": "true", "autocomplete": "off"}))
    permission = forms.ChoiceField(choices=TokenPermission.choices, initial=TokenPermission.READ_ONLY,
                                   label="Permission", widget=forms.Select(attrs={"hx-preserve": "true"}))
    adopt = forms.BooleanField(
        required=False, label="Use it as the dashboard's own token for this node (replaces the stored one)",
        widget=forms.CheckboxInput(attrs={"hx-preserve": "true"}),
    )

    def clean_name(self) -> str:
        name = self.cleaned_data["name"].strip()
        if not name:
            raise forms.ValidationError("Give the token a name.")
        if any(ord(c) < 32 or ord(c) == 127 for c in name):
            raise forms.ValidationError("The name cannot contain control characters.")
        return name


class RevokeTokenForm(forms.Form):
    confirm = forms.BooleanField(
        required=True, label="Yes, revoke this token",
        error_messages={"required": "Tick the box to confirm: whatever uses this token stops working at once."},
    )
