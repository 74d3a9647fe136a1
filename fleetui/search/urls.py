from django.urls import path

from fleetui.search import views

urlpatterns = [
    path("search/", views.search, name="search"),
]
