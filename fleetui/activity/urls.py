from django.urls import path

from fleetui.activity import views

urlpatterns = [
    path("operations/<uuid:operation_id>/", views.operation_detail, name="operation-detail"),
]
