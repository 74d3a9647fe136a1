from django.apps import AppConfig


class BatchesConfig(AppConfig):
    name = "fleetui.batches"
    label = "batches"
    verbose_name = "Bulk actions and fan-out commands"
