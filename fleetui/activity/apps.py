from django.apps import AppConfig


class ActivityConfig(AppConfig):
    name = "fleetui.activity"
    label = "activity"
