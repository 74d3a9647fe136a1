from django.urls import path

from fleetui.batches import views

urlpatterns = [
    path("batches/", views.batch_list, name="batch-list"),
    path("batches/new/", views.batch_new, name="batch-new"),
    path("batches/<uuid:batch_id>/", views.batch_detail, name="batch-detail"),
    path("batches/<uuid:batch_id>/cancel/", views.batch_cancel_view, name="batch-cancel"),
    path("batches/<uuid:batch_id>/export/", views.batch_export, name="batch-export"),
]
