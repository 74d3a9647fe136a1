"""What nodes last told us about their templates and VMs' shared folders (read by pages, written by workers)."""

from __future__ import annotations

from django.db import models

from fleetui.nodes.models import Node
from fleetui.vms.models import VM


class TemplateCategory(models.TextChoices):
    BASE = "base", "Base"
    DEV = "dev", "Development"
    CICD = "cicd", "CI/CD"
    TESTING = "testing", "Testing"
    CUSTOM = "custom", "Custom"


class VMTemplate(models.Model):
    node = models.ForeignKey(Node, on_delete=models.CASCADE, related_name="catalog_templates")
    remote_id = models.CharField(max_length=64)
    name = models.CharField(max_length=255)
    description = models.TextField(blank=True, default="")
    macos_version = models.CharField(max_length=64, blank=True, default="")
    icon_name = models.CharField(max_length=64, blank=True, default="")
    category = models.CharField(max_length=32, blank=True, default="")
    source_type = models.CharField(max_length=32, blank=True, default="")
    created_at = models.DateTimeField(null=True, blank=True)
    modified_at = models.DateTimeField(null=True, blank=True)
    disk_size_bytes = models.BigIntegerField(null=True, blank=True)
    default_cpu = models.PositiveIntegerField(null=True, blank=True)
    default_memory_mb = models.PositiveIntegerField(null=True, blank=True)
    default_disk_gb = models.PositiveIntegerField(null=True, blank=True)
    seen_at = models.DateTimeField()

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["node", "remote_id"], name="template_unique_per_node")]

    def __str__(self) -> str:
        return self.name


class TemplateSync(models.Model):
    """When a node's template list was last read, and why the last read failed."""

    node = models.OneToOneField(Node, on_delete=models.CASCADE, related_name="catalog_template_sync")
    synced_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True, default="")
    error_at = models.DateTimeField(null=True, blank=True)


class SharedFolder(models.Model):
    vm = models.ForeignKey(VM, on_delete=models.CASCADE, related_name="catalog_folders")
    name = models.CharField(max_length=255)
    host_path = models.CharField(max_length=1024)
    read_only = models.BooleanField(default=False)
    is_enabled = models.BooleanField(default=True)
    mount_tag = models.CharField(max_length=255, blank=True, default="")
    seen_at = models.DateTimeField()

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["vm", "name"], name="shared_folder_unique_per_vm")]

    def __str__(self) -> str:
        return self.name


class SharedFolderSync(models.Model):
    """When a VM's shared folders were last read, and why the last read failed."""

    vm = models.OneToOneField(VM, on_delete=models.CASCADE, related_name="catalog_folder_sync")
    synced_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True, default="")
    error_at = models.DateTimeField(null=True, blank=True)
