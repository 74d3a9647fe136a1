from django.conf import settings
from django.http import HttpRequest

from fleetui.core.broker import broker_down
from fleetui.core.roles import ADMIN, OPERATOR, has_role, user_role


def fleetui(request: HttpRequest) -> dict:
    user = getattr(request, "user", None)
    return {
        "role": user_role(user) if user else None,
        "can_operate": has_role(user, OPERATOR) if user else False,
        "can_admin": has_role(user, ADMIN) if user else False,
        "poll_interval": settings.POLL_INTERVAL,
        # A callable: the template calls it only where the banner is shown (base.html).
        "broker_down": broker_down,
    }
