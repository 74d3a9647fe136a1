"""The Celery app: workers poll nodes (queue "polls") and run Operations (queue "actions")."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "fleetui.settings")

app = Celery("fleetui")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
