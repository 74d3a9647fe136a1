"""Forms for templates, shared folders, IPSW downloads and info, and image pushes."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from django import forms
from django.core.exceptions import ValidationError

from fleetui.catalog.models import TemplateCategory
from fleetui.images.models import IPSW
from fleetui.nodes.models import Node
from fleetui.provisioning.validators import (
    validate_absolute_path,
    validate_display_name,
    validate_free_text,
    validate_http_url,
    validate_oci_reference,
)
from fleetui.vms.models import VM, VMState

MOUNT_TAG_RE = re.compile(r"^[A-Za-z0-9._-]{1,36}$")
VERSION_RE = re.compile(r"^[0-9A-Za-z][0-9A-Za-z._ ()-]{0,31}$")


def _check_vm(vm: VM) -> None:
    if vm.is_gone:
        raise ValidationError(f"VM {vm.name} is no longer on its node.")
    if vm.node.is_read_only:
        raise ValidationError(f"Node {vm.node.name} is registered with a read-only token: it cannot change anything.")


class TemplateCreateForm(forms.Form):
    name = forms.CharField(max_length=400, widget=forms.TextInput(attrs={"maxlength": 100, "autocomplete": "off"}))
    description = forms.CharField(required=False, max_length=2000, widget=forms.Textarea(attrs={"rows": 2}))
    category = forms.ChoiceField(choices=TemplateCategory.choices, initial=TemplateCategory.CUSTOM)
    keep_original = forms.BooleanField(label="Keep the original VM", required=False, initial=True,
                                       help_text="Untick to have the node delete the VM once the template exists.")

    def __init__(self, *args: Any, vm: VM, **kwargs: Any) -> None:
        self.vm = vm
        super().__init__(*args, **kwargs)

    def clean_name(self) -> str:
        return validate_display_name(self.cleaned_data["name"], max_length=100, what="Template name")

    def clean_description(self) -> str:
        return validate_free_text(self.cleaned_data.get("description") or "", max_length=500, what="Description")

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        _check_vm(self.vm)
        if self.vm.state != VMState.STOPPED:
            raise ValidationError(f"Stop {self.vm.name} before making a template of it "
                                  f"(it is {self.vm.get_state_display().lower()}).")
        return data


class TemplateLookupForm(forms.Form):
    node = forms.ModelChoiceField(queryset=Node.objects.none(), empty_label=None)
    name = forms.CharField(label="Template name", max_length=400)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["node"].queryset = Node.objects.order_by("name")

    def clean_name(self) -> str:
        return validate_display_name(self.cleaned_data["name"], max_length=100, what="Template name")


class FolderAddForm(forms.Form):
    name = forms.CharField(max_length=400, widget=forms.TextInput(attrs={"maxlength": 64, "autocomplete": "off"}))
    host_path = forms.CharField(label="Host path", max_length=4096,
                                help_text="Absolute path on the node, e.g. /Users/Shared/project")
    read_only = forms.BooleanField(label="Read-only", required=False)
    mount_tag = forms.CharField(label="Mount tag", required=False, max_length=200,
                                help_text="VirtioFS tag the guest mounts (optional; letters, digits, . _ -; up to 36).")

    def __init__(self, *args: Any, vm: VM, **kwargs: Any) -> None:
        self.vm = vm
        super().__init__(*args, **kwargs)

    def clean_name(self) -> str:
        return validate_display_name(self.cleaned_data["name"], max_length=64, what="Folder name")

    def clean_host_path(self) -> str:
        return validate_absolute_path(self.cleaned_data["host_path"])

    def clean_mount_tag(self) -> str:
        tag = (self.cleaned_data.get("mount_tag") or "").strip()
        if tag and not MOUNT_TAG_RE.fullmatch(tag):
            raise ValidationError("Mount tag: 1 to 36 letters, digits, dots, underscores or dashes.")
        return tag

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        _check_vm(self.vm)
        name = data.get("name")
        if name and self.vm.catalog_folders.filter(name=name).exists():
            self.add_error("name", f"{self.vm.name} already has a shared folder named {name}.")
        return data


class FolderNameForm(forms.Form):
    """Enable, disable or remove one folder, named as the node knows it."""

    name = forms.CharField(max_length=400)
    enabled = forms.TypedChoiceField(choices=(("1", "enable"), ("0", "disable")), coerce=lambda v: v == "1",
                                     required=False)

    def __init__(self, *args: Any, vm: VM, **kwargs: Any) -> None:
        self.vm = vm
        super().__init__(*args, **kwargs)

    def clean_name(self) -> str:
        name = validate_display_name(self.cleaned_data["name"], max_length=255, what="Folder name")
        if not self.vm.catalog_folders.filter(name=name).exists():
            raise ValidationError(f"{self.vm.name} has no shared folder named {name} (as last read).")
        return name

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        _check_vm(self.vm)
        return data


class IPSWDownloadForm(forms.Form):
    url = forms.CharField(label="Download URL", max_length=4096,
                          help_text="http(s) URL of a .ipsw file, e.g. from Apple's update CDN")
    name = forms.CharField(max_length=400, help_text="e.g. macOS 15.2")
    version = forms.CharField(max_length=200, help_text="e.g. 15.2")

    def __init__(self, *args: Any, node: Node, **kwargs: Any) -> None:
        self.node = node
        super().__init__(*args, **kwargs)

    def clean_url(self) -> str:
        url = validate_http_url(self.cleaned_data["url"], what="Download URL")
        if not urlsplit(url).path.lower().endswith(".ipsw"):
            raise ValidationError("Download URL must point to an .ipsw file.")
        return url

    def clean_name(self) -> str:
        return validate_display_name(self.cleaned_data["name"], max_length=100, what="Name")

    def clean_version(self) -> str:
        version = validate_display_name(self.cleaned_data["version"], max_length=32, what="Version")
        if not VERSION_RE.fullmatch(version):
            raise ValidationError("Version: letters, digits, dots and dashes, e.g. 15.2 or 15.2 (24C101).")
        return version

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if self.node.is_read_only:
            raise ValidationError(f"Node {self.node.name} is registered with a read-only token: it cannot download.")
        return data


class IPSWInfoForm(forms.Form):
    path = forms.CharField(max_length=4096)

    def __init__(self, *args: Any, node: Node, **kwargs: Any) -> None:
        self.node = node
        super().__init__(*args, **kwargs)

    def clean_path(self) -> str:
        path = validate_absolute_path(self.cleaned_data["path"], what="IPSW path")
        if not IPSW.objects.filter(node=self.node, path=path).exists():
            raise ValidationError(f"Node {self.node.name} has no IPSW at {path} (as last polled).")
        return path


class ImagePushForm(forms.Form):
    image_name = forms.CharField(label="Image name", max_length=1024,
                                 help_text="registry/repository:tag to push to, e.g. ghcr.io/myorg/my-vm:latest")
    insecure = forms.BooleanField(label="Insecure registry (plain HTTP, no TLS verification)", required=False)

    def __init__(self, *args: Any, vm: VM, **kwargs: Any) -> None:
        self.vm = vm
        super().__init__(*args, **kwargs)

    def clean_image_name(self) -> str:
        name = validate_oci_reference(self.cleaned_data["image_name"], what="Image name")
        if "@" in name:
            raise ValidationError("Push to a tag, not a digest: drop the @sha256:… part.")
        return name

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        _check_vm(self.vm)
        if self.vm.state != VMState.STOPPED:
            raise ValidationError(f"Stop {self.vm.name} before pushing it "
                                  f"(it is {self.vm.get_state_display().lower()}).")
        return data
