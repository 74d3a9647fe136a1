"""VM list filters and the snapshot form."""

from __future__ import annotations

from django import forms

from fleetui.core.forms import PlainCharField, PlainTextField
from fleetui.vms.models import VMState
from fleetui.vms.selectors import VM_SORTS


class VMFilterForm(forms.Form):
    """GET filters of the VM list; anything invalid falls back to the default rather than erroring."""

    q = PlainCharField(required=False, max_length=100, label="Search")
    node = forms.TypedChoiceField(required=False, coerce=int, empty_value=None, choices=())
    state = forms.ChoiceField(required=False, choices=[("", "Any state"), *VMState.choices])
    sort = forms.ChoiceField(required=False, choices=[(k, k) for k in VM_SORTS] + [(f"-{k}", k) for k in VM_SORTS])
    page = forms.IntegerField(required=False, min_value=1)
    gone = forms.BooleanField(required=False, label="Include gone")

    def __init__(self, *args: object, node_choices: list[tuple[int, str]], **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.fields["node"].choices = [("", "All nodes"), *node_choices]

    def filters(self) -> dict[str, object]:
        self.is_valid()  # cleaned_data keeps the fields that are valid; the others fall back
        data = self.cleaned_data
        sort = data.get("sort") or "name"
        return {
            "q": (data.get("q") or "").strip(),
            "node_id": data.get("node"),
            "state": data.get("state") or "",
            "sort": sort.lstrip("-"),
            "descending": sort.startswith("-"),
            "include_gone": bool(data.get("gone")),
            "page": data.get("page") or 1,
        }


class SnapshotCreateForm(forms.Form):
    name = PlainCharField(max_length=100, help_text="e.g. before-xcode-16")
    description = PlainTextField(required=False, max_length=1000)


class SnapshotChoiceForm(forms.Form):
    """Posted by restore/delete: nothing to fill in, the snapshot is in the URL."""
