from django.apps import AppConfig


class ProvisioningConfig(AppConfig):
    name = "fleetui.provisioning"
    label = "provisioning"
    verbose_name = "VM provisioning, settings and leases"
