"""Property-based tests of every form in the project (found by importing fleetui.*.forms): hostile
values — unicode and control characters, NUL bytes, huge and negative numbers, bad OCI references,
URLs and paths, overlong text, HTML — posted through the form's view as an admin. Each answer is a
page with a clear validation error or a correct result (a redirect, or the page again), never a 500."""

from __future__ import annotations

import copy
import importlib
import inspect
import pkgutil
from typing import Any

import pytest
from django import forms
from django.db import transaction
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from secdata import RichFleet, make_rich_fleet, url_for

import fleetui

EXAMPLES_PER_FORM = 15

# form -> [(endpoint, method, which VM it acts on)]; a form missing here fails test_it_knows_every_form.
FORM_ENDPOINTS: dict[str, list[tuple[str, str, str]]] = {
    "fleetui.access.forms.PairForm": [("access-pair", "POST", "")],
    "fleetui.access.forms.GenerateTokenForm": [("access-token-generate", "POST", "")],
    "fleetui.access.forms.RevokeTokenForm": [("access-token-revoke", "POST", "")],
    "fleetui.catalog.forms.TemplateCreateForm": [("vm-template-create", "POST", "stopped")],
    "fleetui.catalog.forms.TemplateLookupForm": [("template-lookup", "POST", "")],
    "fleetui.catalog.forms.FolderAddForm": [("vm-folder-add", "POST", "stopped")],
    "fleetui.catalog.forms.FolderNameForm": [("vm-folder-toggle", "POST", "stopped"),
                                            ("vm-folder-remove", "POST", "stopped")],
    "fleetui.catalog.forms.IPSWDownloadForm": [("image-ipsw-download", "POST", "")],
    "fleetui.catalog.forms.IPSWInfoForm": [("image-ipsw-info", "POST", "")],
    "fleetui.catalog.forms.ImagePushForm": [("vm-image-push", "POST", "stopped")],
    "fleetui.console.forms.ExecForm": [("vm-exec", "POST", "running")],
    "fleetui.fleet.forms.ActivityFilterForm": [("activity", "GET", ""), ("activity-export", "GET", "")],
    "fleetui.fleet.forms.CleanupForm": [("utilities-cleanup", "POST", "")],
    "fleetui.fleet.forms.UnpairForm": [("utilities-unpair", "POST", "")],
    "fleetui.images.forms.ImagePullForm": [("image-pull", "POST", "")],
    "fleetui.nodes.forms.NodeForm": [("node-add", "POST", "")],
    "fleetui.nodes.forms.NodeEditForm": [("node-edit", "POST", "")],
    "fleetui.provisioning.forms.VMCreateForm": [("vm-create", "POST", "")],
    "fleetui.provisioning.forms.VMNameForm": [("vm-rename", "POST", "stopped")],
    "fleetui.provisioning.forms.VMCloneForm": [("vm-clone", "POST", "stopped")],
    "fleetui.provisioning.forms.VMRenameForm": [("vm-rename", "POST", "stopped")],
    "fleetui.provisioning.forms.VMDeleteForm": [("vm-delete", "POST", "stopped")],
    "fleetui.provisioning.forms.VMSettingsForm": [("vm-settings-update", "POST", "stopped")],
    "fleetui.provisioning.forms.LeaseForm": [("vm-lease", "POST", "running")],
    "fleetui.provisioning.forms.CleanupWindowForm": [("vm-expiring", "GET", "")],
    "fleetui.vms.forms.VMFilterForm": [("vm-list", "GET", "")],
    "fleetui.vms.forms.SnapshotCreateForm": [("snapshot-create", "POST", "stopped")],
    "fleetui.vms.forms.SnapshotChoiceForm": [("snapshot-restore", "POST", "stopped"),
                                            ("snapshot-delete", "POST", "stopped")],
    "fleetui.batches.forms.BulkSelectionForm": [("batch-new", "POST", "")],
    "fleetui.batches.forms.BatchParamsForm": [("batch-new", "POST", "")],
    "fleetui.alerts.forms.WebhookForm": [("webhook-add", "POST", ""), ("webhook-edit", "POST", "")],
    "fleetui.search.forms.SearchForm": [("search", "GET", "")],
}

# An answer to a hostile form: the page with its errors (200/400/409/422), a redirect after a
# correct change, or the HTMX "done" status.
ALLOWED_STATUSES = {200, 286, 302, 303, 400, 409, 422}
ERROR_MARKS = (b'class="errors"', b"alert-error", b"has-error", b"errorlist", b'role="alert"')

HOSTILE_TEXT = [
    "", " ", "\x00", "name\x00with-nul", "\x1b[31mred", "tab\tand\nnewline\r\n", "\u202eevil-rtl", "\ufeffbom",
    "zero\u200bwidth", "ünïcødé-名前-🚀", "<script>alert(1)</script>", '" onmouseover="alert(1)', "' OR 1=1 --",
    "../../../../etc/passwd", "/etc/shadow", "C:\\Windows\\system32", "%00", "%s%s%n", "{{ 7*7 }}", "${jndi:x}",
    "javascript:alert(1)", "file:///etc/passwd", "http://169.254.169.254/latest/meta-data/", "ftp://x/y.ipsw",
    "https://", "http://[::1", "https://example.com/" + "a" * 5000, "ghcr.io/../evil:tag", "UPPER/Case:Tag",
    "registry:99999/x:y", "a@sha256:zz", "ghcr.io/acme/base:" + "t" * 200, "-1", "0", "-99999999999999999999",
    "99999999999999999999999999999999", "1e309", "NaN", "inf", "0x10", "1.5", "٣", "a" * 100_000,
]
HOSTILE = st.one_of(
    st.sampled_from(HOSTILE_TEXT),
    st.text(st.characters(exclude_categories=("Cs",)), max_size=60),
    st.integers(min_value=-(10**40), max_value=10**40).map(str),
    st.text(st.characters(exclude_categories=("Cs",)), min_size=1, max_size=4).map(lambda s: s * 2000),
)


def all_forms() -> dict[str, type[forms.BaseForm]]:
    found = {}
    for module_info in pkgutil.iter_modules(fleetui.__path__):
        try:
            module = importlib.import_module(f"fleetui.{module_info.name}.forms")
        except ModuleNotFoundError:
            continue
        for name, value in vars(module).items():
            if inspect.isclass(value) and issubclass(value, forms.BaseForm) and value.__module__ == module.__name__:
                found[f"{module.__name__}.{name}"] = value
    return found


def test_it_knows_every_form() -> None:
    found = set(all_forms())
    assert sorted(found - set(FORM_ENDPOINTS)) == [], "forms without an endpoint to fuzz: add them to FORM_ENDPOINTS"
    assert sorted(set(FORM_ENDPOINTS) - found) == []
    assert len(found) >= 25


def _plausible(field: forms.Field, fleet: RichFleet) -> st.SearchStrategy[str]:
    """Values the field could accept, so hostile ones meet forms whose other fields are right."""
    if isinstance(field, forms.ModelChoiceField):
        return st.sampled_from([str(node.pk) for node in fleet.nodes])
    if isinstance(field, forms.BooleanField):
        return st.sampled_from(["on", ""])
    if isinstance(field, forms.ChoiceField) and list(field.choices):
        return st.sampled_from([str(key) for key, _ in field.choices if not isinstance(_, list | tuple)] or [""])
    if isinstance(field, forms.IntegerField):
        low = field.min_value if field.min_value is not None else 0
        high = field.max_value if field.max_value is not None else low + 1000
        return st.integers(min_value=int(low), max_value=int(high)).map(str)
    if isinstance(field, forms.DateTimeField):
        return st.sampled_from(["2026-01-02 03:04", "2026-01-02T03:04"])
    return st.sampled_from(["ok-name-1", "ghcr.io/acme/base:15", "https://updates.example.com/m.ipsw",
                            "/ipsw/0.ipsw", "echo hello", "csk_abcdefgh12345678", "123456", "15.3"])


@pytest.fixture()
def fleet(users: dict[str, Any]) -> RichFleet:
    return make_rich_fleet(users)


@pytest.fixture()
def admin(users: dict[str, Any]) -> Client:
    client = Client()
    client.force_login(users["admin"])
    return client


@pytest.mark.parametrize("form_path", sorted(FORM_ENDPOINTS))
@settings(max_examples=EXAMPLES_PER_FORM, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.data_too_large])
@given(data=st.data())
def test_every_form_answers_hostile_input_without_failing(form_path: str, fleet: RichFleet, admin: Client,
                                                          data: st.DataObject) -> None:
    form_class = all_forms()[form_path]
    values: dict[str, str] = {}
    for name, field in form_class.base_fields.items():
        values[name] = data.draw(st.one_of(HOSTILE, _plausible(field, fleet)), label=name)
    endpoint_name, method, vm_kind = data.draw(st.sampled_from(FORM_ENDPOINTS[form_path]), label="endpoint")
    from secdata import all_endpoints

    endpoint = next(e for e in all_endpoints() if e.name == endpoint_name)
    vm = next(vm for vm in fleet.vms if vm.state == (vm_kind or "stopped"))
    url = url_for(endpoint, fleet, {"vm_id": vm.pk})
    cookies = copy.deepcopy(admin.cookies)
    headers = data.draw(st.sampled_from([{}, {"HX-Request": "true"}]), label="headers")
    with transaction.atomic():
        response = admin.get(url, values, headers=headers) if method == "GET" else \
            admin.post(url, values, headers=headers)
        transaction.set_rollback(True)
    status = response.status_code
    assert status in ALLOWED_STATUSES, (form_path, url, status, {k: v[:80] for k, v in values.items()})
    assert "/accounts/login/" not in response.get("Location", ""), "still signed in: the form was really tried"
    if status in (400, 422) and not response.streaming:
        assert any(mark in response.content for mark in ERROR_MARKS), (form_path, "a 400 says what is wrong")
    admin.cookies = cookies


def test_every_view_taking_a_secret_hides_it_from_error_reports(fleet: RichFleet, users: dict[str, Any]) -> None:
    """Every form field drawn as a password box (tokens, passwords, webhook URLs...) is named in its
    view's sensitive_post_parameters, so Django's error reports show it as stars."""
    from django.contrib.messages.storage.cookie import CookieStorage
    from django.test import RequestFactory
    from django.urls import resolve
    from secdata import all_endpoints

    checked = 0
    for form_path, targets in FORM_ENDPOINTS.items():
        form_class = all_forms()[form_path]
        secret_fields = {name for name, field in form_class.base_fields.items()
                         if isinstance(field.widget, forms.PasswordInput)}
        if not secret_fields:
            continue
        for endpoint_name, _method, vm_kind in targets:
            endpoint = next(e for e in all_endpoints() if e.name == endpoint_name)
            vm = next(vm for vm in fleet.vms if vm.state == (vm_kind or "stopped"))
            url = url_for(endpoint, fleet, {"vm_id": vm.pk})
            request = RequestFactory().post(url, {name: "x" for name in secret_fields})
            request.user = users["admin"]
            request._dont_enforce_csrf_checks = True
            request.session = {}  # type: ignore[assignment]
            request._messages = CookieStorage(request)  # type: ignore[attr-defined]
            match = resolve(url)
            with transaction.atomic():
                match.func(request, *match.args, **match.kwargs)
                transaction.set_rollback(True)
            hidden = getattr(request, "sensitive_post_parameters", None)
            assert hidden == "__ALL__" or secret_fields <= set(hidden or ()), (endpoint_name, secret_fields, hidden)
            checked += 1
    assert checked >= 6
