from django.apps import AppConfig


class MetricsConfig(AppConfig):
    name = "fleetui.metrics"
    label = "metrics"
    verbose_name = "Prometheus metrics"
