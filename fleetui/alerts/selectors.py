from __future__ import annotations

from django.db.models import Count, Q, QuerySet

from fleetui.alerts.models import UNSETTLED_DELIVERY_STATUSES, Delivery, DeliveryStatus, Incident, Webhook

DELIVERY_LOG_LIMIT = 50
INCIDENT_LIMIT = 30


def webhook_list() -> QuerySet[Webhook]:
    return Webhook.objects.annotate(
        delivered=Count("deliveries", filter=Q(deliveries__status=DeliveryStatus.DELIVERED)),
        failed=Count("deliveries", filter=Q(deliveries__status=DeliveryStatus.FAILED)),
    ).order_by("name")


def incident_list() -> list[Incident]:
    return list(Incident.objects.order_by("-opened_at")[:INCIDENT_LIMIT])


def delivery_log(webhook: Webhook) -> list[Delivery]:
    return list(webhook.deliveries.select_related("incident").order_by("-created_at", "-id")[:DELIVERY_LOG_LIMIT])


def log_settled(deliveries: list[Delivery]) -> bool:
    return not any(d.status in UNSETTLED_DELIVERY_STATUSES for d in deliveries)
