"""The partials other pages include (VM detail, node detail) render on their own, per role."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from fleetui.catalog.models import SharedFolder

pytestmark = pytest.mark.django_db


def test_the_vm_partials_render_for_operators_and_viewers(node_factory: Any, vm_factory: Any) -> None:
    node = node_factory("mac-01")
    vm = vm_factory(node, "web-01", "running", expires_at=timezone.now() + timedelta(minutes=30))
    SharedFolder.objects.create(vm=vm, name="src", host_path="/Users/dev/src", seen_at=timezone.now())
    for can_operate in (True, False):
        context = {"vm": vm, "node": node, "can_operate": can_operate}
        actions = render_to_string("provisioning/_vm_actions.html", context)
        assert "data-expires-at" in actions and reverse("vm-settings", args=[vm.pk]) in actions
        assert (reverse("vm-exec", args=[vm.pk]) in actions) is can_operate
        assert (reverse("vm-delete", args=[vm.pk]) in actions) is can_operate
        folders = render_to_string("catalog/_vm_folders.html", context)
        assert "/Users/dev/src" in folders and reverse("vm-folders", args=[vm.pk]) in folders
        assert (reverse("vm-image-push", args=[vm.pk]) in folders) is can_operate
        node_links = render_to_string("catalog/_node_ipsw_actions.html", context)
        assert (reverse("image-ipsw-download", args=[node.pk]) in node_links) is can_operate
    stopped = vm_factory(node, "web-02", "stopped")
    link = render_to_string("console/_vm_exec_link.html", {"vm": stopped, "can_operate": True})
    assert "Commands run only on a running VM" in link and "href" not in link
