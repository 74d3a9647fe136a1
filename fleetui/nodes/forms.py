"""Node registration and editing forms (admins). The API token is write-only: never rendered back."""

from __future__ import annotations

from typing import Any

from django import forms

from fleetui.core.forms import PlainCharField, SecretField
from fleetui.nodes.models import Node
from fleetui.nodes.services import validate_node_host


class NodeForm(forms.Form):
    name = PlainCharField(max_length=100, help_text="How the node is called here, e.g. mac-mini-03.")
    host = PlainCharField(max_length=253, help_text="IP address or hostname the dashboard reaches it at.")
    port = forms.IntegerField(min_value=1, max_value=65535, initial=9473)
    api_token = SecretField(
        label="API token", max_length=512, help_text="A csk_… token from the node; read-only tokens are accepted."
    )

    def __init__(self, *args: Any, instance: Node | None = None, **kwargs: Any) -> None:
        self.instance = instance
        super().__init__(*args, **kwargs)

    def clean_name(self) -> str:
        name = self.cleaned_data["name"]
        taken = Node.objects.filter(name__iexact=name)
        if self.instance is not None:
            taken = taken.exclude(pk=self.instance.pk)
        if taken.exists():
            raise forms.ValidationError("A node with this name is already registered.")
        return name

    def clean_host(self) -> str:
        return validate_node_host(self.cleaned_data["host"].strip())

    def clean_api_token(self) -> str:
        token = self.cleaned_data.get("api_token", "").strip()
        if token and (" " in token or len(token) < 8):
            raise forms.ValidationError("That does not look like an API token (they start with csk_).")
        return token


class NodeEditForm(NodeForm):
    """As NodeForm, but an empty token keeps the stored one."""

    def __init__(self, *args: Any, instance: Node, **kwargs: Any) -> None:
        kwargs.setdefault("initial", {"name": instance.name, "host": instance.host, "port": instance.port})
        super().__init__(*args, instance=instance, **kwargs)
        self.fields["api_token"].required = False
        self.fields["api_token"].help_text = (
            "Leave empty to keep the stored token"
            + (f" ({instance.api_token_prefix}…)." if instance.api_token_prefix else ".")
        )
