"""Fleet-wide search by name: one query per kind of thing, whatever matches, each capped and ranked
(exact name first, then names starting with the text, then the rest, alphabetically)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Case, IntegerField, Model, QuerySet, Value, When
from django.urls import reverse

from fleetui.catalog.models import VMTemplate
from fleetui.images.models import IPSW, OCIImage
from fleetui.nodes.models import Node
from fleetui.vms.models import VM, Snapshot

PER_KIND = 8
MAX_QUERY_LENGTH = 100


@dataclass
class Hit:
    name: str
    url: str
    context: str = ""
    rank: int = 2  # 0: the exact name, 1: starts with the text, 2: contains it


@dataclass
class Group:
    kind: str
    label: str
    hits: list[Hit] = field(default_factory=list)
    more: bool = False  # more matched than are shown


def _ranked(qs: QuerySet[Model], column: str, text: str) -> QuerySet[Model]:
    rank = Case(
        When(**{f"{column}__iexact": text}, then=Value(0)),
        When(**{f"{column}__istartswith": text}, then=Value(1)),
        default=Value(2),
        output_field=IntegerField(),
    )
    # One row beyond the cap tells whether there are more.
    return qs.filter(**{f"{column}__icontains": text}).annotate(rank=rank).order_by("rank", column, "pk")[
        : PER_KIND + 1
    ]


def _group(kind: str, label: str, rows: list[Any], make: Callable[[Any], Hit]) -> Group:
    hits = []
    for row in rows[:PER_KIND]:
        hit = make(row)
        hit.rank = row.rank
        hits.append(hit)
    return Group(kind, label, hits, more=len(rows) > PER_KIND)


def clean_query(raw: str | None) -> str:
    return " ".join(str(raw or "").split())[:MAX_QUERY_LENGTH]


def fleet_search(text: str) -> list[Group]:
    """Groups that matched, in a fixed order (nodes, VMs, snapshots, templates, images). Six queries."""
    if not text:
        return []
    nodes = list(_ranked(Node.objects.only("id", "name", "host", "port"), "name", text))
    vms = list(_ranked(VM.objects.filter(gone_at__isnull=True).select_related("node")
                       .only("id", "name", "state", "node__id", "node__name"), "name", text))
    snapshots = list(_ranked(Snapshot.objects.select_related("vm", "vm__node")
                             .only("id", "name", "vm__id", "vm__name", "vm__node__id", "vm__node__name"),
                             "name", text))
    templates = list(_ranked(VMTemplate.objects.select_related("node")
                             .only("id", "name", "macos_version", "node__id", "node__name"), "name", text))
    images = list(_ranked(OCIImage.objects.select_related("node")
                          .only("id", "reference", "node__id", "node__name"), "reference", text))
    ipsws = list(_ranked(IPSW.objects.select_related("node")
                         .only("id", "name", "version", "node__id", "node__name"), "name", text))
    image_list = reverse("image-list")
    ipsw_list = reverse("image-ipsw-list")
    groups = [
        _group("node", "Nodes", nodes, lambda n: Hit(n.name, reverse("node-detail", args=[n.pk]), n.address)),
        _group("vm", "VMs", vms, lambda v: Hit(v.name, reverse("vm-detail", args=[v.pk]),
                                               f"{v.get_state_display()} on {v.node.name}")),
        _group("snapshot", "Snapshots", snapshots,
               lambda s: Hit(s.name, reverse("vm-detail", args=[s.vm_id]), f"of {s.vm.name} on {s.vm.node.name}")),
        _group("template", "Templates", templates,
               lambda t: Hit(t.name, reverse("template-detail", args=[t.pk]),
                             " · ".join(x for x in (t.macos_version, f"on {t.node.name}") if x))),
        _group("image", "Images", images, lambda i: Hit(i.reference, image_list, f"on {i.node.name}")),
        _group("ipsw", "IPSW restore images", ipsws,
               lambda i: Hit(i.name or i.version, ipsw_list, " · ".join(x for x in (i.version, f"on {i.node.name}")
                                                                       if x))),
    ]
    # Groups whose best hit is the exact name come first, then a prefix, then the rest (stable: in the
    # order above), so "the first result" is the best one.
    return sorted((group for group in groups if group.hits), key=lambda group: group.hits[0].rank)


def first_hit(groups: list[Group]) -> Hit | None:
    return groups[0].hits[0] if groups else None
