from django.urls import path

from fleetui.fleet import views

urlpatterns = [
    path("activity/", views.activity, name="activity"),
    path("activity/export.csv", views.activity_export, name="activity-export"),
    path("fleet/managers/", views.managers, name="managers"),
    path("fleet/managers/register/", views.register_worker, name="managers-register-worker"),
    path("fleet/utilities/", views.utilities, name="utilities"),
    path("fleet/utilities/nodes/<int:node_id>/cleanup/", views.cleanup, name="utilities-cleanup"),
    path("fleet/utilities/nodes/<int:node_id>/cleanup/refresh/", views.cleanup_refresh,
         name="utilities-cleanup-refresh"),
    path("fleet/utilities/nodes/<int:node_id>/unpair/", views.unpair, name="utilities-unpair"),
    path("fleet/utilities/cleanup/<uuid:operation_id>/", views.cleanup_result, name="cleanup-result"),
]
