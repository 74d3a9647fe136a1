"""FleetUI: a web dashboard for fleets of CiderStack Fleet nodes."""

from fleetui.celery import app as celery_app

__all__ = ["celery_app"]
