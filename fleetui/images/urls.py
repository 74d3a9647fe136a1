from django.urls import path

from fleetui.images import views

urlpatterns = [
    path("images/", views.image_list, name="image-list"),
    path("tasks/", views.task_list, name="task-list"),
]
