from django.apps import AppConfig


class SearchConfig(AppConfig):
    name = "fleetui.search"
    label = "search"
    verbose_name = "Fleet-wide search"
