"""The bulk-action forms: the selection the VM list posts, and the action's parameters (with the
typed confirmation for deletes) on the review page."""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.exceptions import ValidationError

from fleetui.batches.models import BatchAction
from fleetui.batches.selectors import MAX_BATCH_VMS, SelectionError, matching_vm_ids, too_many
from fleetui.console.forms import COMMAND_MAX, SSH_USER_RE, TIMEOUT_DEFAULT, TIMEOUT_MAX, TIMEOUT_MIN
from fleetui.core.forms import PlainCharField, PlainTextField, SecretField
from fleetui.provisioning.forms import LEASE_MAX_SECONDS, LEASE_MIN_SECONDS, LEASE_UNITS
from fleetui.provisioning.validators import validate_display_name, validate_free_text

UNIT_SECONDS = {"minutes": 60, "hours": 3600, "days": 86400}
SCOPES = (("selected", "The VMs ticked"), ("matching", "Every VM matching the filter"))
MATCH_MAX = 2000


class VMIdListField(forms.Field):
    """The ticked VMs: repeated `vm` values, each a VM id."""

    widget = forms.MultipleHiddenInput

    def to_python(self, value: Any) -> list[int]:
        if value in (None, "", []):
            return []
        values = value if isinstance(value, list | tuple) else [value]
        if len(values) > MAX_BATCH_VMS:
            raise ValidationError(too_many(len(values)))
        ids: list[int] = []
        for raw in values:
            text = str(raw).strip()
            if not text.isascii() or not text.isdigit() or len(text) > 12:
                raise ValidationError("The selection is not a list of VMs; go back to the VM list and select again.")
            ids.append(int(text))
        return list(dict.fromkeys(ids))


class BulkSelectionForm(forms.Form):
    """What the VM list posts: an action and either the ticked VMs or its filter (every page of it)."""

    action = forms.ChoiceField(choices=[("", "Choose an action…"), *BatchAction.choices], required=False)
    vm = VMIdListField(required=False)
    scope = forms.ChoiceField(choices=SCOPES, required=False)
    match = forms.CharField(required=False, max_length=MATCH_MAX, strip=False)

    def clean_action(self) -> str:
        action = self.cleaned_data["action"]
        if not action:
            raise ValidationError("Choose what to do with the selected VMs.")
        return action

    def clean_match(self) -> str:
        match = self.cleaned_data.get("match") or ""
        if "\x00" in match:
            raise ValidationError("The filter is not valid; go back to the VM list and filter again.")
        return match

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if self.errors:
            return data
        if data.get("scope") == "matching":
            try:
                data["vm_ids"] = matching_vm_ids(data.get("match") or "")
            except SelectionError as exc:
                raise ValidationError(exc.message) from None
            if not data["vm_ids"]:
                raise ValidationError("No VM matches this filter.")
        else:
            data["vm_ids"] = data.get("vm") or []
            if not data["vm_ids"]:
                raise ValidationError("Select at least one VM: tick them in the list, or choose “every VM matching "
                                      "the filter”.")
        return data


class BatchParamsForm(forms.Form):
    """The action's parameters; which fields count depends on the action."""

    snapshot_name = PlainCharField(label="Snapshot name", max_length=100, required=False,
                                   help_text="The same name on every VM, e.g. before-xcode-16")
    snapshot_description = PlainTextField(label="Description", max_length=1000, required=False)
    amount = forms.IntegerField(label="Lease", min_value=1, max_value=LEASE_MAX_SECONDS // 60, required=False,
                                initial=1)
    unit = forms.ChoiceField(choices=LEASE_UNITS, required=False, initial="hours")
    command = forms.CharField(max_length=COMMAND_MAX * 2, strip=False, required=False,
                              widget=forms.Textarea(attrs={"rows": 3, "maxlength": COMMAND_MAX, "spellcheck": "false",
                                                           "autocomplete": "off", "class": "mono"}))
    ssh_user = forms.CharField(label="SSH user", max_length=128, initial="cideradmin", required=False)
    ssh_password = SecretField(label="SSH password", required=False, max_length=1024,
                               help_text="Used for this command only: never stored, logged or shown.")
    timeout = forms.IntegerField(label="Timeout (seconds)", min_value=TIMEOUT_MIN, max_value=TIMEOUT_MAX,
                                 initial=TIMEOUT_DEFAULT, required=False)
    confirm = forms.CharField(label="Confirm", max_length=64, required=False,
                              widget=forms.TextInput(attrs={"autocomplete": "off"}))

    FIELDS_BY_ACTION: dict[str, tuple[str, ...]] = {
        BatchAction.SNAPSHOT: ("snapshot_name", "snapshot_description"),
        BatchAction.TTL_SET: ("amount", "unit"),
        BatchAction.TTL_EXTEND: ("amount", "unit"),
        BatchAction.DELETE: ("confirm",),
        BatchAction.EXEC: ("command", "ssh_user", "ssh_password", "timeout"),
    }

    REQUIRED: dict[str, dict[str, str]] = {
        BatchAction.SNAPSHOT: {"snapshot_name": "Give the snapshots a name."},
        BatchAction.TTL_SET: {"amount": "How long? Give a number.", "unit": "Choose minutes, hours or days."},
        BatchAction.TTL_EXTEND: {"amount": "How long? Give a number.", "unit": "Choose minutes, hours or days."},
        BatchAction.EXEC: {"command": "Command is required.", "ssh_user": "Give the SSH user.",
                           "timeout": "Give a timeout in seconds."},
    }

    def __init__(self, *args: Any, action: str, run_count: int, **kwargs: Any) -> None:
        self.action = action
        self.run_count = run_count
        super().__init__(*args, **kwargs)
        if action == BatchAction.DELETE:
            self.fields["confirm"].label = f"Type {self.confirm_phrase} to confirm"
            self.fields["confirm"].required = True
            self.fields["confirm"].error_messages["required"] = self._confirm_error()
        for name, message in self.REQUIRED.get(action, {}).items():
            self.fields[name].required = True
            self.fields[name].error_messages["required"] = message

    @property
    def confirm_phrase(self) -> str:
        return f"delete {self.run_count}"

    def _confirm_error(self) -> str:
        vms = f"these {self.run_count} VMs" if self.run_count != 1 else "this VM"
        return f"Type {self.confirm_phrase} exactly to delete {vms}."

    def shown_fields(self) -> list[forms.BoundField]:
        return [self[name] for name in self.FIELDS_BY_ACTION.get(self.action, ())]

    def _need(self, name: str, message: str) -> Any:
        value = self.cleaned_data.get(name)
        if value in (None, "") and name not in self.errors:
            self.add_error(name, message)
        return value

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        action = self.action
        params: dict[str, Any] = {}
        secrets: dict[str, str] = {}
        if action == BatchAction.SNAPSHOT:
            name = self._need("snapshot_name", "Give the snapshots a name.")
            if name:
                params = {"name": name.strip(), "description": (data.get("snapshot_description") or "").strip()}
        elif action in (BatchAction.TTL_SET, BatchAction.TTL_EXTEND):
            amount = self._need("amount", "How long? Give a number.")
            unit = self._need("unit", "Choose minutes, hours or days.")
            if amount and unit:
                seconds = amount * UNIT_SECONDS[unit]
                if not LEASE_MIN_SECONDS <= seconds <= LEASE_MAX_SECONDS:
                    self.add_error("amount", "A lease lasts between 1 minute and 90 days.")
                else:
                    params = {"seconds": seconds, "amount": amount, "unit": unit}
        elif action == BatchAction.DELETE:
            typed = " ".join((data.get("confirm") or "").split()).lower()
            if typed != self.confirm_phrase and "confirm" not in self.errors:
                self.add_error("confirm", self._confirm_error())
        elif action == BatchAction.EXEC:
            command = self._need("command", "Command is required.")
            if command:
                try:
                    command = validate_free_text(command, max_length=COMMAND_MAX, what="Command")
                except ValidationError as exc:
                    self.add_error("command", exc)
                    command = ""
                if not command and "command" not in self.errors:
                    self.add_error("command", "Command is required.")
            ssh_user = self._need("ssh_user", "Give the SSH user.")
            if ssh_user:
                try:
                    ssh_user = validate_display_name(ssh_user, max_length=32, what="SSH user")
                    if not SSH_USER_RE.fullmatch(ssh_user):
                        raise ValidationError("SSH user must be a login name: letters, digits, _ . - (starting with "
                                              "a letter or _).")
                except ValidationError as exc:
                    self.add_error("ssh_user", exc)
            timeout = self._need("timeout", "Give a timeout in seconds.")
            if not self.errors:
                params = {"command": command, "ssh_user": ssh_user, "timeout": timeout}
                if data.get("ssh_password"):
                    secrets = {"password": data["ssh_password"]}
        data["params"] = params
        data["secrets"] = secrets
        return data
