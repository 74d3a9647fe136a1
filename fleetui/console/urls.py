from django.urls import path

from fleetui.console import views

urlpatterns = [
    path("vms/<int:vm_id>/exec/", views.vm_exec, name="vm-exec"),
    path("vms/exec/<uuid:operation_id>/", views.exec_result, name="vm-exec-result"),
]
