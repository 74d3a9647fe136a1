from django.urls import path

from fleetui.images.views import image_pull
from fleetui.nodes import views

urlpatterns = [
    path("", views.node_list, name="node-list"),
    path("add/", views.node_add, name="node-add"),
    path("<int:node_id>/", views.node_detail, name="node-detail"),
    path("<int:node_id>/edit/", views.node_edit, name="node-edit"),
    path("<int:node_id>/remove/", views.node_remove, name="node-remove"),
    path("<int:node_id>/pull/", image_pull, name="image-pull"),
]
