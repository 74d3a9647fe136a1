from django.apps import AppConfig


class ImagesConfig(AppConfig):
    name = "fleetui.images"
    label = "images"
