"""Hostile input to every form of the provisioning, console and catalog apps (property-based).

Whatever arrives (unicode, control characters, NUL bytes, huge and negative numbers, bad references
and URLs, overlong names), a form either refuses it with messages or cleans it into values that
keep their promises. It never raises.
"""

from __future__ import annotations

import unicodedata
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fleetui.catalog.forms import FolderAddForm, ImagePushForm, IPSWDownloadForm, TemplateCreateForm
from fleetui.console.forms import ExecForm
from fleetui.provisioning.forms import LeaseForm, VMCreateForm, VMDeleteForm, VMSettingsForm
from fleetui.provisioning.validators import (
    OCI_REFERENCE_RE,
    validate_absolute_path,
    validate_display_name,
    validate_http_url,
    validate_oci_reference,
)

pytestmark = pytest.mark.django_db

FAST = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
hostile_text = st.one_of(
    st.text(max_size=80),
    st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=0x3F), max_size=20),
    st.sampled_from(["", " ", "\x00", "a\x00b", "<script>alert(1)</script>", "x" * 5000, "\u202eevil", "..", "/",
                     "-1", "0", "99999999999999999999", "1e9", "NaN", "ghcr.io/a/b:1", "https://x/y.ipsw"]),
)
numberish = st.one_of(st.integers(min_value=-(10**30), max_value=10**30).map(str), hostile_text)


def _no_bad_chars(value: str) -> bool:
    return all(unicodedata.category(c) not in ("Cc", "Cf", "Cs") for c in value)


@FAST
@given(value=hostile_text)
def test_validators_refuse_or_clean(value: str) -> None:
    for validate in (validate_display_name, validate_oci_reference, validate_absolute_path, validate_http_url):
        try:
            cleaned = validate(value)
        except ValidationError as exc:
            assert exc.messages and all(m for m in exc.messages)
            continue
        assert cleaned and cleaned == cleaned.strip()
        assert _no_bad_chars(cleaned)
        if validate is validate_oci_reference:
            assert OCI_REFERENCE_RE.fullmatch(cleaned)
        if validate is validate_absolute_path:
            assert cleaned.startswith("/") and ".." not in cleaned.split("/")
        if validate is validate_http_url:
            assert cleaned.lower().startswith(("http://", "https://"))


@pytest.fixture()
def targets(node_factory: Any, vm_factory: Any) -> dict[str, Any]:
    node = node_factory("mac-01")
    return {"node": node, "stopped": vm_factory(node, "vm-a", "stopped"), "running": vm_factory(node, "vm-b",
                                                                                              "running")}


@FAST
@given(data=st.fixed_dictionaries({"name": hostile_text, "cpu_count": numberish, "memory_gb": numberish,
                                   "disk_gb": numberish, "source": hostile_text, "pull_reference": hostile_text}))
def test_the_create_form_never_raises(targets: dict[str, Any], data: dict[str, str]) -> None:
    form = VMCreateForm({**data, "node": targets["node"].pk})
    if form.is_valid():
        cleaned = form.cleaned_data
        assert 1 <= len(cleaned["name"]) <= 64 and _no_bad_chars(cleaned["name"])
        assert 1 <= cleaned["cpu_count"] <= 12 and 2 <= cleaned["memory_gb"] <= 64
        assert not cleaned["oci"] or OCI_REFERENCE_RE.fullmatch(cleaned["oci"])
    else:
        assert form.errors


@FAST
@given(data=st.fixed_dictionaries({"cpu_count": numberish, "memory_gb": numberish, "display_width": numberish,
                                   "display_height": numberish, "intent": hostile_text}),
       lease=st.fixed_dictionaries({"action": hostile_text, "amount": numberish, "unit": hostile_text}),
       confirm=hostile_text)
def test_settings_lease_and_delete_forms_never_raise(targets: dict[str, Any], data: dict, lease: dict,
                                                     confirm: str) -> None:
    vm = targets["stopped"]
    form = VMSettingsForm(data, vm=vm)
    if form.is_valid():
        assert form.cleaned_data["changes"]
    lease_form = LeaseForm(lease, vm=vm)
    if lease_form.is_valid() and lease_form.cleaned_data["action"] == "set":
        assert 60 <= lease_form.cleaned_data["seconds"] <= 90 * 86400
    delete = VMDeleteForm({"confirm_name": confirm}, vm=vm)
    assert delete.is_valid() == (confirm.strip() == vm.name)


@FAST
@given(data=st.fixed_dictionaries({"command": hostile_text, "ssh_user": hostile_text, "ssh_password": hostile_text,
                                   "timeout": numberish}))
def test_the_exec_form_never_raises(targets: dict[str, Any], data: dict[str, str]) -> None:
    form = ExecForm(data, vm=targets["running"])
    if form.is_valid():
        assert 1 <= form.cleaned_data["timeout"] <= 600
        assert "\x00" not in form.cleaned_data["command"]
    else:
        assert form.errors
        assert "value=" not in str(form["ssh_password"])  # the password is never rendered back


@FAST
@given(folder=st.fixed_dictionaries({"name": hostile_text, "host_path": hostile_text, "mount_tag": hostile_text}),
       ipsw=st.fixed_dictionaries({"url": hostile_text, "name": hostile_text, "version": hostile_text}),
       push=hostile_text, template=hostile_text)
def test_catalog_forms_never_raise(targets: dict[str, Any], folder: dict, ipsw: dict, push: str,
                                   template: str) -> None:
    vm = targets["stopped"]
    form = FolderAddForm(folder, vm=vm)
    if form.is_valid():
        assert form.cleaned_data["host_path"].startswith("/")
    form = IPSWDownloadForm(ipsw, node=targets["node"])
    if form.is_valid():
        assert form.cleaned_data["url"].lower().startswith(("http://", "https://"))
    form = ImagePushForm({"image_name": push}, vm=vm)
    if form.is_valid():
        assert OCI_REFERENCE_RE.fullmatch(form.cleaned_data["image_name"])
    form = TemplateCreateForm({"name": template, "category": "custom", "description": template}, vm=vm)
    if form.is_valid():
        assert _no_bad_chars(form.cleaned_data["name"])
