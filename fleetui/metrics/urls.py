from django.urls import path

from fleetui.metrics import views

urlpatterns = [
    path("metrics", views.metrics, name="metrics"),
]
