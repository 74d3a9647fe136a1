from django.urls import path

from fleetui.alerts import views

urlpatterns = [
    path("alerts/", views.alert_index, name="alert-index"),
    path("alerts/webhooks/add/", views.webhook_add, name="webhook-add"),
    path("alerts/webhooks/<int:webhook_id>/", views.webhook_detail, name="webhook-detail"),
    path("alerts/webhooks/<int:webhook_id>/edit/", views.webhook_edit, name="webhook-edit"),
    path("alerts/webhooks/<int:webhook_id>/delete/", views.webhook_delete_view, name="webhook-delete"),
    path("alerts/webhooks/<int:webhook_id>/test/", views.webhook_test, name="webhook-test"),
]
