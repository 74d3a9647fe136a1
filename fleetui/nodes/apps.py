from django.apps import AppConfig


class NodesConfig(AppConfig):
    name = "fleetui.nodes"
    label = "nodes"
