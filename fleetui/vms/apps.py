from django.apps import AppConfig


class VmsConfig(AppConfig):
    name = "fleetui.vms"
    label = "vms"
