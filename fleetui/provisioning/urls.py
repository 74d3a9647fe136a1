from django.urls import path

from fleetui.provisioning import views

urlpatterns = [
    path("vms/new/", views.vm_create, name="vm-create"),
    path("vms/expiring/", views.vm_expiring, name="vm-expiring"),
    path("vms/<int:vm_id>/clone/", views.vm_clone, name="vm-clone"),
    path("vms/<int:vm_id>/rename/", views.vm_rename, name="vm-rename"),
    path("vms/<int:vm_id>/delete/", views.vm_delete, name="vm-delete"),
    path("vms/<int:vm_id>/settings/", views.vm_settings, name="vm-settings"),
    path("vms/<int:vm_id>/settings/update/", views.vm_settings_update, name="vm-settings-update"),
    path("vms/<int:vm_id>/lease/", views.vm_lease, name="vm-lease"),
    path("vms/operations/<uuid:operation_id>/", views.operation_follow, name="vm-operation-follow"),
]
