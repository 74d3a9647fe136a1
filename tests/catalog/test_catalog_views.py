"""Pages of the catalog app: templates, shared folders, IPSW download and info, image push."""

from __future__ import annotations

from typing import Any

import pytest
from django.urls import reverse
from django.utils import timezone

from fleetui.activity.models import Operation
from fleetui.catalog.models import SharedFolder, SharedFolderSync, TemplateSync, VMTemplate
from fleetui.images.models import IPSW

pytestmark = pytest.mark.django_db


@pytest.fixture()
def world(node_factory: Any, vm_factory: Any) -> dict[str, Any]:
    now = timezone.now()
    node = node_factory("mac-01")
    stopped = vm_factory(node, "build-01", "stopped")
    running = vm_factory(node, "build-02", "running")
    template = VMTemplate.objects.create(node=node, remote_id="T-1", name="CI Runner <Base>", category="cicd",
                                         description="Xcode", default_cpu=4, default_memory_mb=8192,
                                         default_disk_gb=64, seen_at=now)
    TemplateSync.objects.create(node=node, synced_at=now)
    SharedFolder.objects.create(vm=stopped, name="src", host_path="/Users/dev/src", seen_at=now)
    SharedFolderSync.objects.create(vm=stopped, synced_at=now)
    IPSW.objects.create(node=node, path="/ipsw/UniversalMac_15.2.ipsw", name="macOS 15.2", version="15.2",
                        seen_at=now)
    return {"node": node, "stopped": stopped, "running": running, "template": template,
            "ro_node": node_factory("mac-ro", read_only=True)}


def _url(world: dict[str, Any], name: str, key: str | None) -> str:
    return reverse(name, args=[world[key].pk]) if key else reverse(name)


VIEWER_PAGES = [("template-list", None), ("vm-folders", "stopped"), ("image-ipsw-list", None)]
OPERATOR_PAGES = [("vm-template-create", "stopped"), ("template-delete", "template"),
                  ("image-ipsw-download", "node"), ("vm-image-push", "stopped")]


@pytest.mark.parametrize(("name", "key"), VIEWER_PAGES + OPERATOR_PAGES)
def test_it_checks_roles_on_pages(as_role: Any, world: dict[str, Any], name: str, key: str | None) -> None:
    url = _url(world, name, key)
    assert as_role("anonymous").get(url).status_code == 302
    assert as_role("none").get(url).status_code == 403
    assert as_role("viewer").get(url).status_code == (200 if (name, key) in VIEWER_PAGES else 403)
    assert as_role("operator").get(url).status_code == 200


MUTATIONS = [
    ("vm-template-create", "stopped", {"name": "Golden", "description": "", "category": "base",
                                       "keep_original": "on"}, "template.create"),
    ("template-delete", "template", {"confirm": "yes"}, "template.delete"),
    ("vm-folder-add", "stopped", {"name": "data", "host_path": "/Users/Shared/data", "mount_tag": "data1"},
     "folder.add"),
    ("vm-folder-toggle", "stopped", {"name": "src", "enabled": "0"}, "folder.enable"),
    ("vm-folder-remove", "stopped", {"name": "src"}, "folder.remove"),
    ("image-ipsw-download", "node", {"url": "https://updates.cdn-apple.com/x/UniversalMac_15.3_Restore.ipsw",
                                     "name": "macOS 15.3", "version": "15.3"}, "ipsw.download"),
    ("vm-image-push", "stopped", {"image_name": "ghcr.io/acme/build:1", "insecure": "on"}, "image.push"),
]


@pytest.mark.parametrize(("name", "key", "data", "kind"), MUTATIONS)
def test_it_lets_only_operators_mutate(as_role: Any, world: dict[str, Any], name: str, key: str, data: dict,
                                       kind: str) -> None:
    url = _url(world, name, key)
    assert as_role("anonymous").post(url, data).status_code == 302
    assert as_role("none").post(url, data).status_code == 403
    assert as_role("viewer").post(url, data).status_code == 403
    assert Operation.objects.count() == 0
    response = as_role("operator").post(url, data)
    assert response.status_code == 302, response.content.decode()[:1500]
    op = Operation.objects.get()
    assert op.kind == kind and response["Location"] == reverse("vm-operation-follow", args=[op.pk])


def test_it_records_what_each_form_asked(as_role: Any, world: dict[str, Any]) -> None:
    client = as_role("operator")
    client.post(_url(world, "vm-template-create", "stopped"), {"name": " Golden ", "description": "line1\r\nline2",
                                                               "category": "dev"})
    client.post(_url(world, "vm-folder-toggle", "stopped"), {"name": "src", "enabled": "1"})
    client.post(_url(world, "vm-image-push", "stopped"), {"image_name": "ghcr.io/acme/build:1"})
    params = {op.kind: op.params for op in Operation.objects.all()}
    assert params["template.create"] == {"name": "Golden", "description": "line1\nline2", "category": "dev",
                                         "keep_original": False}
    assert params["folder.enable"] == {"name": "src", "enabled": True}
    assert params["image.push"] == {"image_name": "ghcr.io/acme/build:1", "insecure": False}


@pytest.mark.parametrize(("name", "key", "data", "message"), [
    ("vm-template-create", "stopped", {"name": "", "category": "base"}, "This field is required"),
    ("vm-template-create", "stopped", {"name": "a\x01b", "category": "base"}, "control or invisible"),
    ("vm-template-create", "stopped", {"name": "ok", "category": "everything"}, "Select a valid choice"),
    ("vm-template-create", "running", {"name": "ok", "category": "base"}, "Stop build-02 before making a template"),
    ("template-delete", "template", {}, "Tick the box"),
    ("vm-folder-add", "stopped", {"name": "x", "host_path": "relative/path"}, "absolute path"),
    ("vm-folder-add", "stopped", {"name": "x", "host_path": "/a/../etc"}, "must not contain"),
    ("vm-folder-add", "stopped", {"name": "x", "host_path": "/a", "mount_tag": "bad tag!"}, "Mount tag"),
    ("vm-folder-add", "stopped", {"name": "src", "host_path": "/a"}, "already has a shared folder named src"),
    ("vm-folder-toggle", "stopped", {"name": "nope", "enabled": "1"}, "has no shared folder named nope"),
    ("vm-folder-toggle", "stopped", {"name": "src", "enabled": "maybe"}, "Select a valid choice"),
    ("vm-folder-remove", "stopped", {"name": ""}, "required"),
    ("image-ipsw-download", "node", {"url": "ftp://x/y.ipsw", "name": "n", "version": "1"}, "http:// or https://"),
    ("image-ipsw-download", "node", {"url": "https://x.example/y.zip", "name": "n", "version": "1"}, ".ipsw file"),
    ("image-ipsw-download", "node", {"url": "https://u:p@x.example/y.ipsw", "name": "n", "version": "1"},
     "username or password"),
    ("image-ipsw-download", "node", {"url": "https://x.example/y.ipsw", "name": "n", "version": "1;rm"}, "Version"),
    ("image-ipsw-download", "ro_node", {"url": "https://x.example/y.ipsw", "name": "n", "version": "1"},
     "read-only token"),
    ("vm-image-push", "stopped", {"image_name": "no_registry"}, "not a valid OCI reference"),
    ("vm-image-push", "stopped", {"image_name": "ghcr.io/a/b@sha256:" + "0" * 64}, "not a digest"),
    ("vm-image-push", "running", {"image_name": "ghcr.io/a/b:1"}, "Stop build-02 before pushing"),
    ("image-ipsw-info", "node", {"path": "/ipsw/other.ipsw"}, "has no IPSW at"),
])
def test_it_refuses_bad_input(as_role: Any, world: dict[str, Any], name: str, key: str, data: dict,
                              message: str) -> None:
    response = as_role("operator").post(_url(world, name, key), data)
    assert response.status_code == 400, response.status_code
    assert message in response.content.decode()
    assert Operation.objects.count() == 0


def test_ipsw_info_is_a_read_viewers_may_ask_for(as_role: Any, world: dict[str, Any]) -> None:
    url = _url(world, "image-ipsw-info", "node")
    assert as_role("none").post(url, {"path": "/ipsw/UniversalMac_15.2.ipsw"}).status_code == 403
    assert as_role("viewer").get(url).status_code == 405
    response = as_role("viewer").post(url, {"path": "/ipsw/UniversalMac_15.2.ipsw"})
    assert response.status_code == 302
    assert Operation.objects.get().params == {"path": "/ipsw/UniversalMac_15.2.ipsw"}


@pytest.mark.parametrize(("name", "key", "method"), [
    ("template-list", None, "post"), ("template-refresh", None, "get"), ("vm-folder-add", "stopped", "get"),
    ("vm-folder-remove", "stopped", "get"), ("vm-folder-toggle", "stopped", "get"), ("vm-folders", "stopped", "post"),
    ("image-ipsw-list", None, "post"), ("vm-image-push", "stopped", "put"),
])
def test_it_answers_405_on_the_wrong_method(as_role: Any, world: dict[str, Any], name: str, key: str | None,
                                            method: str) -> None:
    assert getattr(as_role("operator"), method)(_url(world, name, key)).status_code == 405


def test_the_template_list_filters_and_shows_names_inert(as_role: Any, world: dict[str, Any], node_factory: Any
                                                         ) -> None:
    other = node_factory("mac-02")
    VMTemplate.objects.create(node=other, remote_id="T-2", name="Dev Box", category="dev", seen_at=timezone.now())
    client = as_role("viewer")
    page = client.get(reverse("template-list")).content.decode()
    assert "CI Runner &lt;Base&gt;" in page and "Dev Box" in page
    assert "Delete…" not in page  # viewers do not get the delete button
    page = client.get(reverse("template-list"), {"category": "dev"}).content.decode()
    assert "Dev Box" in page and "CI Runner" not in page
    page = client.get(reverse("template-list"), {"node": world["node"].pk}).content.decode()
    assert "CI Runner" in page and "Dev Box" not in page
    assert "Delete…" in as_role("operator").get(reverse("template-list")).content.decode()


def test_a_refresh_is_a_read_viewers_may_ask_for(as_role: Any, world: dict[str, Any]) -> None:
    assert as_role("none").post(reverse("template-refresh")).status_code == 403
    response = as_role("viewer").post(reverse("template-refresh"))
    assert response.status_code == 302 and response["Location"] == reverse("template-list")
    assert Operation.objects.count() == 0  # a refresh is a read, not an Operation


def test_the_folder_page_lists_the_cache(as_role: Any, world: dict[str, Any]) -> None:
    page = as_role("viewer").get(_url(world, "vm-folders", "stopped")).content.decode()
    assert "/Users/dev/src" in page and "Add a shared folder" not in page and "Remove" not in page
    page = as_role("operator").get(_url(world, "vm-folders", "stopped")).content.decode()
    assert "Add a shared folder" in page and "Disable" in page and "Remove" in page


def test_template_reads_are_reads_viewers_may_ask_for(as_role: Any, world: dict[str, Any]) -> None:
    template = world["template"]
    assert as_role("viewer").get(reverse("template-detail", args=[template.pk])).status_code == 200
    assert as_role("none").get(reverse("template-detail", args=[template.pk])).status_code == 403
    assert as_role("viewer").get(reverse("template-read", args=[template.pk])).status_code == 405
    assert as_role("none").post(reverse("template-read", args=[template.pk])).status_code == 403
    response = as_role("viewer").post(reverse("template-read", args=[template.pk]))
    assert response.status_code == 302
    assert Operation.objects.get().params == {"template_id": "T-1"}
    bad = as_role("viewer").post(reverse("template-lookup"), {"node": world["node"].pk, "name": "\x07"})
    assert bad.status_code == 400 and "control or invisible" in bad.content.decode()
    assert Operation.objects.count() == 1
    response = as_role("viewer").post(reverse("template-lookup"), {"node": world["node"].pk, "name": "Golden"})
    assert response.status_code == 302
    assert Operation.objects.filter(kind="template.read", params__name="Golden").count() == 1
