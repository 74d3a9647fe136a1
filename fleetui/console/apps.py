from django.apps import AppConfig


class ConsoleConfig(AppConfig):
    name = "fleetui.console"
    label = "console"
    verbose_name = "Commands on VMs"
