"""The form to run a command on a VM."""

from __future__ import annotations

import re
from typing import Any

from django import forms
from django.core.exceptions import ValidationError

from fleetui.core.forms import SecretField
from fleetui.provisioning.validators import validate_display_name, validate_free_text
from fleetui.vms.models import VM, VMState

COMMAND_MAX = 4096
TIMEOUT_MIN, TIMEOUT_MAX, TIMEOUT_DEFAULT = 1, 600, 60
SSH_USER_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,31}$")


class ExecForm(forms.Form):
    command = forms.CharField(max_length=COMMAND_MAX * 2, strip=False,
                              widget=forms.Textarea(attrs={"rows": 3, "maxlength": COMMAND_MAX, "spellcheck": "false",
                                                           "autocomplete": "off", "class": "mono"}))
    ssh_user = forms.CharField(label="SSH user", max_length=128, initial="cideradmin")
    ssh_password = SecretField(label="SSH password", required=False, max_length=1024,
                               help_text="Used for this command only: never stored, logged or shown.")
    timeout = forms.IntegerField(label="Timeout (seconds)", min_value=TIMEOUT_MIN, max_value=TIMEOUT_MAX,
                                 initial=TIMEOUT_DEFAULT)

    def __init__(self, *args: Any, vm: VM, **kwargs: Any) -> None:
        self.vm = vm
        super().__init__(*args, **kwargs)

    def clean_command(self) -> str:
        command = validate_free_text(self.cleaned_data["command"], max_length=COMMAND_MAX, what="Command")
        if not command:
            raise ValidationError("Command is required.")
        return command

    def clean_ssh_user(self) -> str:
        user = validate_display_name(self.cleaned_data["ssh_user"], max_length=32, what="SSH user")
        if not SSH_USER_RE.fullmatch(user):
            raise ValidationError("SSH user must be a login name: letters, digits, _ . - "
                                  "(starting with a letter or _).")
        return user

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if self.vm.is_gone:
            raise ValidationError(f"VM {self.vm.name} is no longer on its node.")
        if self.vm.node.is_read_only:
            raise ValidationError(f"Node {self.vm.node.name} is registered with a read-only token: "
                                  "it cannot run commands.")
        if self.vm.state != VMState.RUNNING:
            raise ValidationError(f"Start {self.vm.name} first: commands run only on a running VM "
                                  f"(it is {self.vm.get_state_display().lower()}).")
        return data
