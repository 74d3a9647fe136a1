from django.apps import AppConfig


class AlertsConfig(AppConfig):
    name = "fleetui.alerts"
    label = "alerts"
    verbose_name = "Alerts (webhooks)"
