"""Fleet-wide search: nodes, VMs, snapshots, templates and images by name; viewers may search; ranked
exact, prefix, then contains; capped per kind; a fixed number of queries however much matches; names
are inert HTML; without JavaScript it is a GET form to a page of results."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from fleetui.catalog.models import VMTemplate
from fleetui.images.models import IPSW, OCIImage
from fleetui.nodes.models import Node
from fleetui.search.selectors import PER_KIND, fleet_search
from fleetui.vms.models import VM, Snapshot, VMState

pytestmark = pytest.mark.django_db


def make_fleet(prefix: str = "alpha", vms: int = 3) -> dict[str, Any]:
    now = timezone.now()
    node = Node.objects.create(name=f"{prefix}-node", host="10.2.0.1")
    made = {"node": node, "vms": []}
    for i in range(vms):
        made["vms"].append(VM.objects.create(node=node, remote_id=f"{prefix}-{i}", name=f"{prefix}-vm-{i}",
                                             state=VMState.RUNNING, last_seen_at=now, changed_at=now))
    made["snapshot"] = Snapshot.objects.create(vm=made["vms"][0], remote_id="s1", name=f"{prefix}-snap", seen_at=now)
    made["template"] = VMTemplate.objects.create(node=node, remote_id="t1", name=f"{prefix}-template", seen_at=now)
    made["image"] = OCIImage.objects.create(node=node, reference=f"ghcr.io/acme/{prefix}:15", seen_at=now)
    made["ipsw"] = IPSW.objects.create(node=node, path=f"/ipsw/{prefix}.ipsw", name=f"{prefix}-restore", seen_at=now)
    return made


def test_viewers_search_others_cannot(as_role: Any) -> None:
    make_fleet()
    assert as_role("viewer").get("/search/", {"q": "alpha"}).status_code == 200
    assert as_role("none").get("/search/", {"q": "alpha"}).status_code == 403
    assert as_role("anonymous").get("/search/", {"q": "alpha"})["Location"].startswith("/accounts/login/")
    assert as_role("viewer").post("/search/", {"q": "alpha"}).status_code == 405


def test_it_finds_every_kind_and_links_there(as_role: Any) -> None:
    made = make_fleet()
    page = as_role("viewer").get("/search/", {"q": "ALPHA"}).content.decode()
    for group in ("Nodes", "VMs", "Snapshots", "Templates", "Images", "IPSW restore images"):
        assert f">{group}<" in page, group
    assert f'href="/nodes/{made["node"].pk}/"' in page
    assert f'href="/vms/{made["vms"][1].pk}/"' in page
    assert f'href="/vms/{made["vms"][0].pk}/">alpha-snap' in page  # a snapshot opens its VM
    assert f'href="/templates/{made["template"].pk}/"' in page
    assert "ghcr.io/acme/alpha:15" in page and "alpha-restore" in page
    assert "8 results" in page


def test_it_ranks_exact_then_prefix_then_contains() -> None:
    now = timezone.now()
    node = Node.objects.create(name="n", host="10.3.0.1")
    for name in ("zz-build", "build-2", "build", "a-build-b", "Build-1"):
        VM.objects.create(node=node, remote_id=name, name=name, last_seen_at=now, changed_at=now)
    groups = fleet_search("build")
    assert [hit.name for hit in groups[0].hits] == ["build", "Build-1", "build-2", "a-build-b", "zz-build"]
    # The group holding the exact match comes first, so Enter opens it.
    Node.objects.create(name="build-node", host="10.3.0.2")
    assert [g.kind for g in fleet_search("build")][:2] == ["vm", "node"]
    assert [g.kind for g in fleet_search("build-n")] == ["node"]


def test_gone_vms_are_left_out_and_results_are_capped() -> None:
    now = timezone.now()
    node = Node.objects.create(name="n", host="10.3.0.1")
    for i in range(PER_KIND + 5):
        VM.objects.create(node=node, remote_id=f"r{i}", name=f"ci-{i:02d}", last_seen_at=now, changed_at=now)
    VM.objects.create(node=node, remote_id="gone", name="ci-gone", last_seen_at=now, changed_at=now, gone_at=now)
    (group,) = fleet_search("ci-")
    assert len(group.hits) == PER_KIND and group.more
    assert "ci-gone" not in [h.name for h in group.hits]


def test_the_query_count_does_not_grow_with_matches(as_role: Any) -> None:
    client = as_role("viewer")
    make_fleet("beta", vms=1)

    def count() -> int:
        with CaptureQueriesContext(connection) as ctx:
            assert client.get("/search/", {"q": "beta"}, HTTP_HX_REQUEST="true").status_code == 200
        return len(ctx.captured_queries)

    few = count()
    for i in range(4):
        make_fleet(f"beta{i}", vms=10)
    many = count()
    # session, user, role groups + 6 searches (nodes, VMs, snapshots, templates, images, IPSWs).
    assert few == many
    assert many == 9


def test_html_in_names_is_inert(as_role: Any) -> None:
    evil = '<img src=x onerror="alert(1)">'
    make_fleet(evil, vms=1)
    client = as_role("viewer")
    for extra in ({}, {"HTTP_HX_REQUEST": "true"}):
        page = client.get("/search/", {"q": "<img"}, **extra).content.decode()
        assert "<img" not in page
        assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in page


def test_htmx_gets_the_dropdown_partial(as_role: Any) -> None:
    make_fleet()
    response = as_role("viewer").get("/search/", {"q": "  alpha-vm  "}, HTTP_HX_REQUEST="true")
    body = response.content.decode()
    assert "<html" not in body and 'data-q="alpha-vm"' in body
    assert len(re.findall(r'class="search-hit"', body)) == 3
    assert "HX-Request" in response["Vary"]
    assert "Nothing named like" in as_role("viewer").get("/search/", {"q": "zzz"}, HTTP_HX_REQUEST="true") \
        .content.decode()


def test_jump_goes_to_the_best_match_or_shows_the_page(as_role: Any) -> None:
    made = make_fleet()
    client = as_role("viewer")
    response = client.get("/search/", {"q": "alpha-vm-2", "jump": "on"})
    assert response.status_code == 302 and response["Location"] == f"/vms/{made['vms'][2].pk}/"
    response = client.get("/search/", {"q": "nothing-like-it", "jump": "on"})
    assert response.status_code == 200 and "0 results" in response.content.decode()


def test_hostile_queries_never_fail(as_role: Any) -> None:
    make_fleet()
    client = as_role("viewer")
    for q in ("", " ", "%", "_", "\\", "'; DROP TABLE x; --", "\x00", "a" * 5000, "🚀", "%alpha%"):
        response = client.get("/search/", {"q": q})
        assert response.status_code == 200, repr(q)
    assert "0 results" in client.get("/search/", {"q": "%"}).content.decode()


def test_the_header_box_is_on_every_page_for_roles(as_role: Any) -> None:
    page = as_role("viewer").get("/").content.decode()
    assert 'id="search-input"' in page and 'action="/search/"' in page and "js/search.js" in page
    assert "<script>" not in page.split('id="search-form"')[1].split("</form>")[0]
    assert 'id="search-input"' not in as_role("none").get("/accounts/login/").content.decode()
