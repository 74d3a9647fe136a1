"""Image pulls (registry credentials used once, never stored or shown), the images and tasks pages."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from fleetui.activity.models import Operation
from fleetui.activity.secrets import secrets_take

HX = {"HX-Request": "true"}
PASSWORD = "hunter2-registry-pass"


def test_it_records_a_pull(as_role: Callable[[str], Client], fleet: Any) -> None:
    node = fleet.nodes[0]
    response = as_role("operator").post(reverse("image-pull", args=[node.pk]), {"reference": "ghcr.io/acme/x:1"})
    assert response.status_code == 302 and response["Location"] == reverse("node-detail", args=[node.pk])
    op = Operation.objects.get()
    assert (op.kind, op.node, op.params) == ("image.pull", node, {"reference": "ghcr.io/acme/x:1"})


def test_it_passes_registry_credentials_as_one_time_secrets(as_role: Callable[[str], Client], fleet: Any) -> None:
    node = fleet.nodes[0]
    response = as_role("operator").post(
        reverse("image-pull", args=[node.pk]),
        {"reference": "registry.example.com:5000/team/img@sha256:" + "a" * 64, "username": "bob",
         "password": PASSWORD},
        headers=HX,
    )
    assert response.status_code == 200
    assert PASSWORD.encode() not in response.content and b'name="password"' in response.content
    assert b'hx-trigger="every 1s"' in response.content  # the operation follows itself live
    op = Operation.objects.get()
    assert PASSWORD not in str(op.params) and "bob" not in str(op.params)
    assert secrets_take(op.id) == {"username": "bob", "password": PASSWORD}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"reference": ""}, "This field is required."),
        ({"reference": "not a reference"}, "Not an OCI image reference"),
        ({"reference": "UPPER/Case:tag"}, "Not an OCI image reference"),
        ({"reference": "ghcr.io/a/b:1", "username": "bob"}, "both the registry username and password"),
        ({"reference": "ghcr.io/a/b:1", "password": PASSWORD}, "both the registry username and password"),
        ({"reference": "ghcr.io/a/b:1\x00"}, "control"),
    ],
)
def test_it_rerenders_a_bad_pull_form(as_role: Callable[[str], Client], fleet: Any, body: dict,
                                      message: str) -> None:
    client = as_role("operator")
    url = reverse("image-pull", args=[fleet.nodes[0].pk])
    for headers in ({}, HX):
        response = client.post(url, body, headers=headers)
        assert response.status_code == 200
        assert message in response.content.decode()
        assert PASSWORD.encode() not in response.content
    assert Operation.objects.count() == 0


def test_it_refuses_a_pull_on_a_read_only_node(as_role: Callable[[str], Client], node_factory: Any) -> None:
    node = node_factory("ro", read_only=True)
    response = as_role("operator").post(reverse("image-pull", args=[node.pk]), {"reference": "ghcr.io/a/b:1"})
    assert response.status_code == 200 and b"read-only" in response.content
    assert Operation.objects.count() == 0


def test_it_lists_images_per_node(as_role: Callable[[str], Client], fleet: Any) -> None:
    html = as_role("viewer").get(reverse("image-list")).content.decode()
    assert "ghcr.io/acme/base:15" in html and "macOS 15.3" in html
    assert html.count('name="reference"') == 2


def test_it_lists_and_filters_tasks(as_role: Callable[[str], Client], fleet: Any) -> None:
    client = as_role("viewer")
    active = client.get(reverse("task-list")).content.decode()
    assert "Pull ghcr.io/acme/base:15" in active and 'value="42"' in active
    other = client.get(reverse("task-list"), {"node": fleet.nodes[1].pk}).content.decode()
    assert "Pull ghcr.io/acme/base:15" not in other and "No tasks running." in other
    done = client.get(reverse("task-list"), {"status": "completed"}).content.decode()
    assert "Pull ghcr.io/acme/base:15" not in done
    for params in [{"status": "bogus"}, {"node": "x"}, {"node": "99999"}]:
        assert client.get(reverse("task-list"), params).status_code == 200
    partial = client.get(reverse("task-list"), headers=HX)
    assert b'id="task-table"' in partial.content and b"tasks-changed from:body" in partial.content
