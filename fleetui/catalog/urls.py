from django.urls import path

from fleetui.catalog import views

urlpatterns = [
    path("templates/", views.template_list, name="template-list"),
    path("templates/refresh/", views.template_refresh, name="template-refresh"),
    path("templates/lookup/", views.template_lookup, name="template-lookup"),
    path("templates/<int:template_id>/", views.template_detail, name="template-detail"),
    path("templates/<int:template_id>/read/", views.template_read, name="template-read"),
    path("templates/<int:template_id>/delete/", views.template_delete, name="template-delete"),
    path("vms/<int:vm_id>/template/", views.template_create, name="vm-template-create"),
    path("vms/<int:vm_id>/folders/", views.vm_folders, name="vm-folders"),
    path("vms/<int:vm_id>/folders/add/", views.folder_add, name="vm-folder-add"),
    path("vms/<int:vm_id>/folders/toggle/", views.folder_toggle, name="vm-folder-toggle"),
    path("vms/<int:vm_id>/folders/remove/", views.folder_remove, name="vm-folder-remove"),
    path("vms/<int:vm_id>/push/", views.image_push, name="vm-image-push"),
    path("images/ipsw/", views.ipsw_list, name="image-ipsw-list"),
    path("nodes/<int:node_id>/ipsw/download/", views.ipsw_download, name="image-ipsw-download"),
    path("nodes/<int:node_id>/ipsw/info/", views.ipsw_info, name="image-ipsw-info"),
]
