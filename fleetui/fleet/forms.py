"""Forms of the fleet app: activity filters, cleanup runs, unpairing."""

from __future__ import annotations

from typing import Any

from django import forms

from fleetui.fleet.selectors import ActivityFilter, node_aliases

_DATETIME_FORMATS = ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d"]


def _no_controls(value: str, label: str) -> str:
    value = value.strip()
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise forms.ValidationError(f"The {label} contains control characters.")
    return value


class ActivityFilterForm(forms.Form):
    node = forms.CharField(required=False, max_length=255, label="Node")
    type = forms.CharField(required=False, max_length=64, label="Event or operation")
    user = forms.CharField(required=False, max_length=150, label="User")
    source = forms.ChoiceField(
        required=False,
        choices=[("", "All"), ("events", "Node events"), ("operations", "Operations")],
        label="Source",
    )
    since = forms.DateTimeField(required=False, input_formats=_DATETIME_FORMATS, label="From (UTC)",
                                widget=forms.DateTimeInput(attrs={"type": "datetime-local"}))
    until = forms.DateTimeField(required=False, input_formats=_DATETIME_FORMATS, label="To (UTC)",
                                widget=forms.DateTimeInput(attrs={"type": "datetime-local"}))

    def clean_node(self) -> str:
        return _no_controls(self.cleaned_data["node"], "node name")

    def clean_type(self) -> str:
        return _no_controls(self.cleaned_data["type"], "event type")

    def clean_user(self) -> str:
        return _no_controls(self.cleaned_data["user"], "user name")

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        since, until = data.get("since"), data.get("until")
        if since and until and since > until:
            self.add_error("until", "“To” must be after “From”.")
        return data

    def to_filter(self) -> ActivityFilter:
        d = self.cleaned_data
        return ActivityFilter(node=d["node"], type=d["type"], user=d["user"], source=d["source"] or "",
                              since=d["since"], until=d["until"],
                              node_names=node_aliases(d["node"]) if d["node"] else ())


class CleanupForm(forms.Form):
    force = forms.BooleanField(required=False, label="Force: also remove expired VMs that are not disposable")
    confirm_name = forms.CharField(required=False, max_length=100, label="Type the node's name to confirm force")

    def __init__(self, *args: Any, node_name: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.node_name = node_name

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if data.get("force") and data.get("confirm_name", "").strip() != self.node_name:
            self.add_error(
                "confirm_name",
                f"A forced cleanup deletes persistent VMs too: type the node's name “{self.node_name}” to confirm.",
            )
        return data


class UnpairForm(forms.Form):
    confirm = forms.BooleanField(
        required=True, label="Yes, unpair this node",
        error_messages={"required": "Tick the box to confirm: token management stops working until you pair again."},
    )
    forget = forms.BooleanField(
        required=False, label="Forget the pairing here even if the node refuses or cannot be reached"
    )
