from django.apps import AppConfig


class FleetConfig(AppConfig):
    name = "fleetui.fleet"
    label = "fleet"
    verbose_name = "Fleet utilities, activity log and managers' overview"
