"""Templates across the fleet, a VM's shared folders, IPSW downloads and info, and image pushes."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from fleetui.activity.models import Operation
from fleetui.activity.services import OperationError
from fleetui.catalog import selectors, services
from fleetui.catalog.forms import (
    FolderAddForm,
    FolderNameForm,
    ImagePushForm,
    IPSWDownloadForm,
    IPSWInfoForm,
    TemplateCreateForm,
    TemplateLookupForm,
)
from fleetui.catalog.models import TemplateCategory, VMTemplate
from fleetui.core.htmx import render_page_or_partial
from fleetui.core.roles import operator_required, viewer_required
from fleetui.nodes.models import Node
from fleetui.vms.models import VM

FOLDER_KINDS = ("folder.add", "folder.remove", "folder.enable")


def _vm(vm_id: int) -> VM:
    return get_object_or_404(VM.objects.select_related("node"), pk=vm_id)


def _follow(op: Operation) -> HttpResponse:
    return redirect("vm-operation-follow", operation_id=op.pk)


def _enqueue_once(key: str, seconds: int, task: Any, *args: Any) -> bool:
    """Enqueue a refresh unless one was asked within `seconds`; a Redis outage leaves the page as it is."""
    try:
        if not cache.add(key, 1, timeout=seconds):
            return False
        # Reads go with the polls, never behind long actions.
        task.apply_async(args=list(args), queue="polls")
        return True
    except Exception:  # noqa: BLE001 - the broker or cache is down: show what we have
        return False


def _refresh_templates(nodes: list[Node], *, force: bool = False) -> int:
    from fleetui.catalog.tasks import refresh_templates

    window = 5 if force else int(selectors.stale_after().total_seconds())
    return sum(_enqueue_once(f"catalog:templates-asked:{n.pk}:{int(force)}", window, refresh_templates, n.pk)
               for n in nodes)


def _int_param(request: HttpRequest, name: str) -> int | None:
    value = request.GET.get(name, "")
    return int(value) if value.isdigit() else None


def _template_list_context(request: HttpRequest, lookup_form: TemplateLookupForm | None = None) -> dict[str, Any]:
    node_id = _int_param(request, "node")
    category = request.GET.get("category", "")
    if category not in TemplateCategory.values:
        category = ""
    nodes = list(Node.objects.order_by("name"))
    syncs = selectors.template_syncs()
    _refresh_templates(selectors.nodes_with_stale_templates(nodes, syncs))
    return {
        "templates": list(selectors.templates(node_id=node_id, category=category)),
        "nodes": nodes, "syncs": [(n, syncs.get(n.pk)) for n in nodes], "node_id": node_id, "category": category,
        "categories": TemplateCategory.choices, "lookup_form": lookup_form or TemplateLookupForm(),
        # Poll fast until every node's list has been read once.
        "any_unsynced": any(syncs.get(n.pk) is None or (syncs[n.pk].synced_at is None and not syncs[n.pk].error)
                            for n in nodes),
    }


@require_GET
@viewer_required
def template_list(request: HttpRequest) -> HttpResponse:
    return render_page_or_partial(request, "catalog/template_list.html", _template_list_context(request),
                                  "catalog/_template_table.html")


@require_POST
@viewer_required
def template_refresh(request: HttpRequest) -> HttpResponse:
    """Re-read every node's template list now (a read, so viewers may ask for it)."""
    asked = _refresh_templates(list(Node.objects.all()), force=True)
    messages.info(request, f"Asked {asked} node{'s' if asked != 1 else ''} for their templates." if asked
                  else "A refresh was asked a moment ago; the list updates by itself.")
    return redirect("template-list")


@require_GET
@viewer_required
def template_detail(request: HttpRequest, template_id: int) -> HttpResponse:
    template = get_object_or_404(VMTemplate.objects.select_related("node"), pk=template_id)
    recent = list(Operation.objects.filter(kind="template.read", node=template.node,
                                           params__template_id=template.remote_id).order_by("-created_at")[:5])
    return render(request, "catalog/template_detail.html", {"template": template, "recent": recent})


@require_POST
@viewer_required
def template_read(request: HttpRequest, template_id: int) -> HttpResponse:
    """Re-read one template from its node (GetTemplate; a read, so viewers may ask)."""
    template = get_object_or_404(VMTemplate.objects.select_related("node"), pk=template_id)
    try:
        return _follow(services.template_read_request(node=template.node, user=request.user, request=request,
                                                      template_id=template.remote_id))
    except OperationError as exc:
        messages.error(request, exc.message)
        return redirect("template-detail", template_id=template.pk)


@require_POST
@viewer_required
def template_lookup(request: HttpRequest) -> HttpResponse:
    """Look a template up by name on a node (GetTemplate by name)."""
    form = TemplateLookupForm(request.POST)
    if form.is_valid():
        try:
            return _follow(services.template_read_request(node=form.cleaned_data["node"], user=request.user,
                                                          request=request, name=form.cleaned_data["name"]))
        except OperationError as exc:
            form.add_error(None, exc.message)
    context = _template_list_context(request, lookup_form=form)
    return render(request, "catalog/template_list.html", context, status=400)


@require_http_methods(["GET", "POST"])
@operator_required
def template_create(request: HttpRequest, vm_id: int) -> HttpResponse:
    vm = _vm(vm_id)
    form = TemplateCreateForm(request.POST if request.method == "POST" else None, vm=vm)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            return _follow(services.template_create_request(
                vm=vm, user=request.user, request=request, name=data["name"], description=data["description"],
                category=data["category"], keep_original=data["keep_original"]))
        except OperationError as exc:
            form.add_error(None, exc.message)
    return render(request, "catalog/template_create.html", {"vm": vm, "form": form},
                  status=400 if form.is_bound else 200)


@require_http_methods(["GET", "POST"])
@operator_required
def template_delete(request: HttpRequest, template_id: int) -> HttpResponse:
    template = get_object_or_404(VMTemplate.objects.select_related("node"), pk=template_id)
    error = ""
    if request.method == "POST":
        if template.node.is_read_only:
            error = f"Node {template.node.name} is registered with a read-only token: it cannot delete templates."
        elif request.POST.get("confirm") != "yes":
            error = "Tick the box to confirm."
        else:
            try:
                return _follow(services.template_delete_request(template=template, user=request.user,
                                                                request=request))
            except OperationError as exc:
                error = exc.message
    return render(request, "catalog/template_delete.html", {"template": template, "error": error},
                  status=400 if error else 200)


def _folders_context(vm: VM, add_form: FolderAddForm | None = None, error: str = "") -> dict[str, Any]:
    sync = selectors.folder_sync(vm)
    return {"vm": vm, "folders": selectors.folders(vm), "sync": sync,
            "add_form": add_form or FolderAddForm(vm=vm), "error": error,
            "recent": list(Operation.objects.filter(vm=vm, kind__in=FOLDER_KINDS).order_by("-created_at")[:5])}


@require_GET
@viewer_required
def vm_folders(request: HttpRequest, vm_id: int) -> HttpResponse:
    vm = _vm(vm_id)
    context = _folders_context(vm)
    if not vm.is_gone and selectors.folders_stale(context["sync"]):
        from fleetui.catalog.tasks import refresh_shared_folders

        _enqueue_once(f"catalog:folders-asked:{vm.pk}", int(selectors.stale_after().total_seconds()),
                      refresh_shared_folders, vm.pk)
    return render_page_or_partial(request, "catalog/vm_folders.html", context, "catalog/_folder_table.html")


@require_POST
@operator_required
def folder_add(request: HttpRequest, vm_id: int) -> HttpResponse:
    vm = _vm(vm_id)
    form = FolderAddForm(request.POST, vm=vm)
    if form.is_valid():
        data = form.cleaned_data
        try:
            return _follow(services.folder_add_request(vm=vm, user=request.user, request=request, name=data["name"],
                                                       host_path=data["host_path"], read_only=data["read_only"],
                                                       mount_tag=data["mount_tag"]))
        except OperationError as exc:
            form.add_error(None, exc.message)
    return render(request, "catalog/vm_folders.html", _folders_context(vm, add_form=form), status=400)


def _folder_change(request: HttpRequest, vm_id: int, *, remove: bool) -> HttpResponse:
    vm = _vm(vm_id)
    form = FolderNameForm(request.POST, vm=vm)
    if not form.is_valid() or (not remove and request.POST.get("enabled") not in ("0", "1")):
        errors = [e for errs in form.errors.values() for e in errs] or ["Say whether to enable or disable it."]
        return render(request, "catalog/vm_folders.html", _folders_context(vm, error=" ".join(errors)), status=400)
    name = form.cleaned_data["name"]
    try:
        if remove:
            op = services.folder_remove_request(vm=vm, user=request.user, request=request, name=name)
        else:
            op = services.folder_enable_request(vm=vm, user=request.user, request=request, name=name,
                                                enabled=form.cleaned_data["enabled"])
    except OperationError as exc:
        return render(request, "catalog/vm_folders.html", _folders_context(vm, error=exc.message), status=400)
    return _follow(op)


@require_POST
@operator_required
def folder_toggle(request: HttpRequest, vm_id: int) -> HttpResponse:
    return _folder_change(request, vm_id, remove=False)


@require_POST
@operator_required
def folder_remove(request: HttpRequest, vm_id: int) -> HttpResponse:
    return _folder_change(request, vm_id, remove=True)


@require_GET
@viewer_required
def ipsw_list(request: HttpRequest) -> HttpResponse:
    node_id = _int_param(request, "node")
    recent = list(Operation.objects.filter(kind__in=("ipsw.download", "ipsw.info")).order_by("-created_at")[:10])
    return render(request, "catalog/ipsw_list.html", {
        "ipsws": list(selectors.ipsws(node_id=node_id)), "nodes": list(Node.objects.order_by("name")),
        "node_id": node_id, "recent": recent})


@require_http_methods(["GET", "POST"])
@operator_required
def ipsw_download(request: HttpRequest, node_id: int) -> HttpResponse:
    node = get_object_or_404(Node, pk=node_id)
    form = IPSWDownloadForm(request.POST if request.method == "POST" else None, node=node)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            return _follow(services.ipsw_download_request(node=node, user=request.user, request=request,
                                                          url=data["url"], name=data["name"], version=data["version"]))
        except OperationError as exc:
            form.add_error(None, exc.message)
    return render(request, "catalog/ipsw_download.html", {"node": node, "form": form},
                  status=400 if form.is_bound else 200)


@require_POST
@viewer_required
def ipsw_info(request: HttpRequest, node_id: int) -> HttpResponse:
    """Ask the node for an IPSW's metadata (a read: viewers may ask); the answer shows on the follow page."""
    node = get_object_or_404(Node, pk=node_id)
    form = IPSWInfoForm(request.POST, node=node)
    if form.is_valid():
        try:
            return _follow(services.ipsw_info_request(node=node, user=request.user, request=request,
                                                      path=form.cleaned_data["path"]))
        except OperationError as exc:
            error = exc.message
    else:
        error = " ".join(form.errors.get("path", ["Choose an IPSW."]))
    return render(request, "catalog/ipsw_list.html", {
        "ipsws": list(selectors.ipsws()), "nodes": list(Node.objects.order_by("name")), "node_id": None,
        "error": error, "recent": []}, status=400)


@require_http_methods(["GET", "POST"])
@operator_required
def image_push(request: HttpRequest, vm_id: int) -> HttpResponse:
    vm = _vm(vm_id)
    form = ImagePushForm(request.POST if request.method == "POST" else None, vm=vm)
    if request.method == "POST" and form.is_valid():
        try:
            return _follow(services.image_push_request(vm=vm, user=request.user, request=request,
                                                       image_name=form.cleaned_data["image_name"],
                                                       insecure=form.cleaned_data["insecure"]))
        except OperationError as exc:
            form.add_error(None, exc.message)
    return render(request, "catalog/image_push.html", {"vm": vm, "form": form}, status=400 if form.is_bound else 200)
