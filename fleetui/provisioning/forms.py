"""Forms for VM creation, clone, rename, delete, settings and the TTL lease.

Every bound is checked here, so a bad value is a message next to its field and nothing is sent.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.exceptions import ValidationError

from fleetui.images.models import IPSW, OCIImage
from fleetui.nodes.models import Node
from fleetui.provisioning.validators import validate_display_name, validate_oci_reference
from fleetui.vms.models import VM, VMState

VM_NAME_MAX = 64
CPU_MAX = 64
MEMORY_GB_MIN, MEMORY_GB_MAX = 2, 1024
DISK_GB_MIN, DISK_GB_MAX = 20, 16384
DISPLAY_WIDTH = (640, 6144)
DISPLAY_HEIGHT = (480, 3456)
INTENTS = (("interactive", "Interactive"), ("disposable", "Disposable"), ("ci", "CI"), ("persistent", "Persistent"))

# Lease durations: an amount and a unit, bounded to 1 minute .. 90 days.
LEASE_UNITS = (("minutes", "minutes"), ("hours", "hours"), ("days", "days"))
_UNIT_SECONDS = {"minutes": 60, "hours": 3600, "days": 86400}
LEASE_MIN_SECONDS = 60
LEASE_MAX_SECONDS = 90 * 86400


def _name_field(label: str = "Name") -> forms.CharField:
    return forms.CharField(label=label, max_length=VM_NAME_MAX * 4, strip=True,
                           widget=forms.TextInput(attrs={"maxlength": VM_NAME_MAX, "autocomplete": "off"}))


def _clean_vm_name(value: str) -> str:
    return validate_display_name(value, max_length=VM_NAME_MAX, what="VM name")


def _check_node_writable(node: Node) -> None:
    if node.is_read_only:
        raise ValidationError(f"Node {node.name} is registered with a read-only token: it cannot change anything.")


def _check_vm_usable(vm: VM) -> None:
    if vm.is_gone:
        raise ValidationError(f"VM {vm.name} is no longer on its node.")
    _check_node_writable(vm.node)


class VMCreateForm(forms.Form):
    SOURCE_IMAGE = "image"
    SOURCE_PULL = "pull"
    SOURCE_IPSW = "ipsw"
    SOURCES = (
        (SOURCE_IMAGE, "An OCI image the node has"),
        (SOURCE_PULL, "An OCI image reference to pull"),
        (SOURCE_IPSW, "An IPSW the node has"),
    )

    node = forms.ModelChoiceField(queryset=Node.objects.none(), empty_label=None)
    name = _name_field()
    cpu_count = forms.IntegerField(label="CPUs", min_value=1, max_value=CPU_MAX, initial=4)
    memory_gb = forms.IntegerField(label="Memory (GB)", min_value=MEMORY_GB_MIN, max_value=MEMORY_GB_MAX, initial=8)
    disk_gb = forms.IntegerField(label="Disk (GB)", min_value=DISK_GB_MIN, max_value=DISK_GB_MAX, initial=64)
    source = forms.ChoiceField(choices=SOURCES, widget=forms.RadioSelect, initial=SOURCE_IMAGE)
    oci_image = forms.ChoiceField(label="OCI image on the node", required=False)
    pull_reference = forms.CharField(label="Reference to pull", required=False, max_length=1024,
                                     help_text="registry/repository[:tag], e.g. ghcr.io/myorg/macos-base:latest")
    ipsw_path = forms.ChoiceField(label="IPSW on the node", required=False)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["node"].queryset = Node.objects.order_by("name")
        # Every node's images and IPSWs, each labelled with the nodes that have it (the page works
        # without JavaScript, so the lists cannot follow the node picked); clean() checks the pair.
        on_nodes: dict[str, list[str]] = {}
        for ref, node_name in OCIImage.objects.order_by("reference", "node__name").values_list("reference",
                                                                                               "node__name"):
            on_nodes.setdefault(ref, []).append(node_name)
        self.fields["oci_image"].choices = [("", "—")] + [
            (ref, f"{ref} (on {', '.join(names)})") for ref, names in on_nodes.items()]
        ipsws: dict[str, tuple[str, list[str]]] = {}
        for path, name, version, node_name in IPSW.objects.order_by("name", "path", "node__name").values_list(
                "path", "name", "version", "node__name"):
            label = f"{name or path.rsplit('/', 1)[-1]} {version}".strip()
            ipsws.setdefault(path, (label, []))[1].append(node_name)
        self.fields["ipsw_path"].choices = [("", "—")] + sorted(
            ((path, f"{label} (on {', '.join(names)})") for path, (label, names) in ipsws.items()),
            key=lambda item: item[1])

    def clean_name(self) -> str:
        return _clean_vm_name(self.cleaned_data["name"])

    def clean_node(self) -> Node:
        node: Node = self.cleaned_data["node"]
        _check_node_writable(node)
        return node

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        node: Node | None = data.get("node")
        source = data.get("source")
        if node is None or not source:
            return data
        data["oci"] = ""
        data["ipsw"] = ""
        if source == self.SOURCE_IMAGE:
            ref = data.get("oci_image") or ""
            if not ref:
                self.add_error("oci_image", "Choose one of the node's OCI images.")
            elif not OCIImage.objects.filter(node=node, reference=ref).exists():
                self.add_error("oci_image", f"Node {node.name} does not have {ref}; choose “pull” to fetch it.")
            else:
                data["oci"] = ref
        elif source == self.SOURCE_PULL:
            try:
                data["oci"] = validate_oci_reference(data.get("pull_reference") or "")
            except ValidationError as exc:
                self.add_error("pull_reference", exc)
        elif source == self.SOURCE_IPSW:
            path = data.get("ipsw_path") or ""
            if not path:
                self.add_error("ipsw_path", "Choose one of the node's IPSWs.")
            elif not IPSW.objects.filter(node=node, path=path).exists():
                self.add_error("ipsw_path", f"Node {node.name} does not have this IPSW.")
            else:
                data["ipsw"] = path
        if node.cpu_cores and data.get("cpu_count") and data["cpu_count"] > node.cpu_cores:
            self.add_error("cpu_count", f"Node {node.name} has {node.cpu_cores} CPU cores.")
        if node.total_memory_gb and data.get("memory_gb") and data["memory_gb"] > node.total_memory_gb:
            self.add_error("memory_gb", f"Node {node.name} has {node.total_memory_gb:g} GB of memory.")
        if node.disk_total_gb and data.get("disk_gb") and data["disk_gb"] > node.disk_total_gb:
            self.add_error("disk_gb", f"Node {node.name} has {node.disk_total_gb:g} GB of disk.")
        return data


class VMNameForm(forms.Form):
    """Clone (name of the copy) and rename (new name)."""

    new_name = _name_field("New name")

    def __init__(self, *args: Any, vm: VM, **kwargs: Any) -> None:
        self.vm = vm
        super().__init__(*args, **kwargs)

    def clean_new_name(self) -> str:
        return _clean_vm_name(self.cleaned_data["new_name"])

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        _check_vm_usable(self.vm)
        name = data.get("new_name")
        if name and VM.objects.filter(node_id=self.vm.node_id, name=name, gone_at__isnull=True).exclude(
                pk=self.vm.pk).exists():
            self.add_error("new_name", f"Node {self.vm.node.name} already has a VM named {name}.")
        return data


class VMCloneForm(VMNameForm):
    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if self.vm.state != VMState.STOPPED:
            raise ValidationError(f"Stop {self.vm.name} before cloning it (it is {self.vm.get_state_display()}).")
        return data


class VMRenameForm(VMNameForm):
    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if data.get("new_name") == self.vm.name:
            self.add_error("new_name", "That is already its name.")
        return data


class VMDeleteForm(forms.Form):
    confirm_name = forms.CharField(label="Type the VM's name to confirm", max_length=VM_NAME_MAX * 4, strip=True,
                                   widget=forms.TextInput(attrs={"autocomplete": "off"}))

    def __init__(self, *args: Any, vm: VM, **kwargs: Any) -> None:
        self.vm = vm
        super().__init__(*args, **kwargs)

    def clean_confirm_name(self) -> str:
        value = self.cleaned_data["confirm_name"]
        if value != self.vm.name:
            raise ValidationError(f"Type {self.vm.name} exactly to delete it.")
        return value

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        _check_vm_usable(self.vm)
        if self.vm.state not in (VMState.STOPPED, VMState.ERROR):
            raise ValidationError(f"Stop {self.vm.name} before deleting it (it is {self.vm.get_state_display()}).")
        return data


class VMSettingsForm(forms.Form):
    """CPU, memory, display and intent; only what differs from the current values is sent."""

    cpu_count = forms.IntegerField(label="CPUs", min_value=1, max_value=CPU_MAX)
    memory_gb = forms.IntegerField(label="Memory (GB)", min_value=MEMORY_GB_MIN, max_value=MEMORY_GB_MAX)
    display_width = forms.IntegerField(label="Display width (px)", min_value=DISPLAY_WIDTH[0],
                                       max_value=DISPLAY_WIDTH[1])
    display_height = forms.IntegerField(label="Display height (px)", min_value=DISPLAY_HEIGHT[0],
                                        max_value=DISPLAY_HEIGHT[1])
    intent = forms.ChoiceField(choices=INTENTS)

    def __init__(self, *args: Any, vm: VM, **kwargs: Any) -> None:
        self.vm = vm
        kwargs.setdefault("initial", self.current(vm))
        super().__init__(*args, **kwargs)
        # A field the node has not reported yet may be left empty (it is then not sent).
        for name in self.fields:
            if self.initial.get(name) in (None, ""):
                self.fields[name].required = False

    @staticmethod
    def current(vm: VM) -> dict[str, Any]:
        return {
            "cpu_count": vm.cpu_count,
            "memory_gb": (vm.memory_mb // 1024) if vm.memory_mb and vm.memory_mb % 1024 == 0 else
            (round(vm.memory_mb / 1024) if vm.memory_mb else None),
            "display_width": vm.display_width,
            "display_height": vm.display_height,
            "intent": vm.intent or None,
        }

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        _check_vm_usable(self.vm)
        node = self.vm.node
        if node.cpu_cores and data.get("cpu_count") and data["cpu_count"] > node.cpu_cores:
            self.add_error("cpu_count", f"Node {node.name} has {node.cpu_cores} CPU cores.")
        if node.total_memory_gb and data.get("memory_gb") and data["memory_gb"] > node.total_memory_gb:
            self.add_error("memory_gb", f"Node {node.name} has {node.total_memory_gb:g} GB of memory.")
        if self.errors:
            return data
        current = self.current(self.vm)
        changes: dict[str, Any] = {}
        for name in ("cpu_count", "display_width", "display_height", "intent"):
            value = data.get(name)
            if value not in (None, "") and value != current[name]:
                changes[name] = value
        if data.get("memory_gb") not in (None, "") and data["memory_gb"] != current["memory_gb"]:
            changes["memory_mb"] = data["memory_gb"] * 1024
        if not changes:
            raise ValidationError("Nothing to change: every value is what the VM already has.")
        data["changes"] = changes
        return data


class LeaseForm(forms.Form):
    """Set a lease (TTL from now), extend it (from the current expiry), or clear it."""

    ACTIONS = (("set", "Set"), ("extend", "Extend"), ("clear", "Clear"))

    action = forms.ChoiceField(choices=ACTIONS)
    amount = forms.IntegerField(min_value=1, max_value=LEASE_MAX_SECONDS // 60, required=False, initial=1)
    unit = forms.ChoiceField(choices=LEASE_UNITS, required=False, initial="hours")

    def __init__(self, *args: Any, vm: VM, **kwargs: Any) -> None:
        self.vm = vm
        super().__init__(*args, **kwargs)

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        _check_vm_usable(self.vm)
        action = data.get("action")
        if action in ("set", "extend"):
            amount, unit = data.get("amount"), data.get("unit")
            if amount is None and "amount" not in self.errors:
                self.add_error("amount", "How long? Give a number.")
            if not unit and "unit" not in self.errors:
                self.add_error("unit", "Choose minutes, hours or days.")
            if self.errors:
                return data
            seconds = amount * _UNIT_SECONDS[unit]
            if not LEASE_MIN_SECONDS <= seconds <= LEASE_MAX_SECONDS:
                self.add_error("amount", "A lease lasts between 1 minute and 90 days.")
                return data
            if action == "extend" and self.vm.expires_at is None:
                raise ValidationError(f"{self.vm.name} has no lease to extend; set one first.")
            data["seconds"] = seconds
        elif action == "clear" and self.vm.expires_at is None and self.vm.ttl_seconds is None:
            raise ValidationError(f"{self.vm.name} has no lease to clear.")
        return data


class CleanupWindowForm(forms.Form):
    """The window of the "expiring soon" view."""

    WINDOWS = ((900, "15 minutes"), (3600, "1 hour"), (6 * 3600, "6 hours"), (86400, "24 hours"),
               (7 * 86400, "7 days"))

    within = forms.TypedChoiceField(choices=WINDOWS, coerce=int, initial=86400, required=False)
