from __future__ import annotations

from typing import Any

from django import forms
from django.core.exceptions import ValidationError

from fleetui.alerts.models import MAX_LEASE_WINDOW_MINUTES, WebhookFormat
from fleetui.alerts.urls_safety import MAX_URL_LENGTH, validate_webhook_url


class WebhookForm(forms.Form):
    name = forms.CharField(max_length=100)
    url = forms.CharField(
        label="URL", max_length=MAX_URL_LENGTH, required=True,
        # Never rendered back: the URL (a Slack URL's path is its secret) is shown masked only.
        widget=forms.PasswordInput(attrs={"autocomplete": "off", "spellcheck": "false",
                                          "placeholder": "https://hooks.slack.com/services/..."}),
        help_text="http:// or https://. Stored encrypted; afterwards only its host is shown.",
    )
    format = forms.ChoiceField(choices=WebhookFormat.choices, initial=WebhookFormat.GENERIC)
    on_node_offline = forms.BooleanField(label="A node goes offline, and comes back", required=False, initial=True)
    on_task_failed = forms.BooleanField(label="A node task fails", required=False, initial=True)
    on_operation_failed = forms.BooleanField(label="An operation fails", required=False, initial=True)
    on_lease_expiring = forms.BooleanField(label="A VM's lease ends soon", required=False)
    lease_window_minutes = forms.IntegerField(
        label="Lease window (minutes)", min_value=1, max_value=MAX_LEASE_WINDOW_MINUTES, initial=60,
        help_text="Alert when a VM's lease ends within this many minutes.",
    )
    enabled = forms.BooleanField(required=False, initial=True)

    def __init__(self, *args: Any, editing: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.editing = editing
        if editing:
            self.fields["url"].required = False
            self.fields["url"].help_text = "Leave empty to keep the stored URL."

    def clean_name(self) -> str:
        value = self.cleaned_data["name"].strip()
        if not value:
            raise ValidationError("Give the webhook a name.")
        if any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
            raise ValidationError("Remove the control characters from the name.")
        return value

    def clean_url(self) -> str:
        value = self.cleaned_data.get("url") or ""
        if not value and self.editing:
            return ""
        return validate_webhook_url(value)

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        flags = ("on_node_offline", "on_task_failed", "on_operation_failed", "on_lease_expiring")
        if not any(data.get(flag) for flag in flags):
            raise ValidationError("Choose at least one event to alert on.")
        return data
