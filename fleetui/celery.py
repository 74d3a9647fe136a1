"""The Celery app: workers poll nodes (queue "polls") and run Operations (queue "actions")."""

import os

from celery import Celery

from fleetui.core.kombu_fixes import patch_redis_restore_unacked

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "fleetui.settings")

app = Celery("fleetui")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
# Without it a worker exits, instead of reconnecting, when Redis goes away mid-task (see the module).
patch_redis_restore_unacked()
