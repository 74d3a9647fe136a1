from django.apps import AppConfig


class AccessConfig(AppConfig):
    name = "fleetui.access"
    label = "access"
