from django.apps import AppConfig


class CatalogConfig(AppConfig):
    name = "fleetui.catalog"
    label = "catalog"
    verbose_name = "Templates, shared folders, IPSWs and image pushes"
