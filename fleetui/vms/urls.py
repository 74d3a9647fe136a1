from django.urls import path

from fleetui.vms import views

urlpatterns = [
    path("", views.vm_list, name="vm-list"),
    path("<int:vm_id>/", views.vm_detail, name="vm-detail"),
    path("<int:vm_id>/action/<slug:action>/", views.vm_action, name="vm-action"),
    path("<int:vm_id>/snapshots/create/", views.snapshot_create, name="snapshot-create"),
    path("<int:vm_id>/snapshots/<int:snapshot_id>/restore/", views.snapshot_restore, name="snapshot-restore"),
    path("<int:vm_id>/snapshots/<int:snapshot_id>/delete/", views.snapshot_delete, name="snapshot-delete"),
]
