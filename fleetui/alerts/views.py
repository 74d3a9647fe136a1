"""Alerts pages (admins only): webhooks, their delivery log with a "send test" button, recent incidents."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from fleetui.alerts import selectors
from fleetui.alerts.forms import WebhookForm
from fleetui.alerts.models import WEBHOOK_INITIAL_FIELDS, Webhook
from fleetui.alerts.services import WebhookError, webhook_create, webhook_delete, webhook_send_test, webhook_update
from fleetui.core.htmx import render_page_or_partial
from fleetui.core.roles import admin_required


@require_GET
@admin_required
def alert_index(request: HttpRequest) -> HttpResponse:
    return render(request, "alerts/alert_index.html",
                  {"webhooks": selectors.webhook_list(), "incidents": selectors.incident_list()})


@sensitive_post_parameters("url")
@require_http_methods(["GET", "POST"])
@admin_required
def webhook_add(request: HttpRequest) -> HttpResponse:
    form = WebhookForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            webhook = webhook_create(data=form.cleaned_data, user=request.user)
        except WebhookError as exc:
            form.add_error(None, exc.message)
        else:
            messages.success(request, f"Webhook {webhook.name} saved. Send a test to check it.")
            return redirect("webhook-detail", webhook_id=webhook.pk)
    status = 400 if request.method == "POST" else 200
    return render(request, "alerts/webhook_form.html", {"form": form, "webhook": None}, status=status)


@sensitive_post_parameters("url")
@require_http_methods(["GET", "POST"])
@admin_required
def webhook_edit(request: HttpRequest, webhook_id: int) -> HttpResponse:
    webhook = get_object_or_404(Webhook, pk=webhook_id)
    initial = {field: getattr(webhook, field) for field in WEBHOOK_INITIAL_FIELDS}
    form = WebhookForm(request.POST or None, initial=initial, editing=True)
    if request.method == "POST" and form.is_valid():
        try:
            webhook_update(webhook=webhook, data=form.cleaned_data, user=request.user)
        except WebhookError as exc:
            form.add_error(None, exc.message)
        else:
            messages.success(request, f"Webhook {webhook.name} saved.")
            return redirect("webhook-detail", webhook_id=webhook.pk)
        webhook.refresh_from_db()
    status = 400 if request.method == "POST" else 200
    return render(request, "alerts/webhook_form.html", {"form": form, "webhook": webhook}, status=status)


@require_GET
@admin_required
def webhook_detail(request: HttpRequest, webhook_id: int) -> HttpResponse:
    webhook = get_object_or_404(Webhook, pk=webhook_id)
    deliveries = selectors.delivery_log(webhook)
    settled = selectors.log_settled(deliveries)
    context = {"webhook": webhook, "deliveries": deliveries, "settled": settled}
    return render_page_or_partial(request, "alerts/webhook_detail.html", context, "alerts/_delivery_log.html",
                                  settled=settled)


@require_POST
@admin_required
def webhook_test(request: HttpRequest, webhook_id: int) -> HttpResponse:
    webhook = get_object_or_404(Webhook, pk=webhook_id)
    webhook_send_test(webhook=webhook, user=request.user)
    messages.info(request, "Test queued; its delivery appears in the log below.")
    return redirect("webhook-detail", webhook_id=webhook.pk)


@require_http_methods(["GET", "POST"])
@admin_required
def webhook_delete_view(request: HttpRequest, webhook_id: int) -> HttpResponse:
    webhook = get_object_or_404(Webhook, pk=webhook_id)
    if request.method == "POST":
        name = webhook.name
        webhook_delete(webhook=webhook, user=request.user)
        messages.success(request, f"Webhook {name} deleted.")
        return redirect("alert-index")
    return render(request, "alerts/webhook_confirm_delete.html", {"webhook": webhook})
