"""The three roles, as Django groups, and the server-side checks every view uses.

viewer reads everything; operator also acts on VMs, snapshots and images; admin also manages
nodes, credentials and users. Superusers are admins.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse

VIEWER = "viewer"
OPERATOR = "operator"
ADMIN = "admin"
ROLES = (VIEWER, OPERATOR, ADMIN)
_RANK = {None: 0, VIEWER: 1, OPERATOR: 2, ADMIN: 3}


def user_role(user: Any) -> str | None:
    """The highest role the user holds, or None (cached on the user object per request)."""
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return None
    cached = getattr(user, "_fleetui_role", False)
    if cached is not False:
        return cached
    if user.is_superuser:
        role: str | None = ADMIN
    else:
        names = set(user.groups.values_list("name", flat=True))
        role = next((r for r in (ADMIN, OPERATOR, VIEWER) if r in names), None)
    user._fleetui_role = role
    return role


def has_role(user: Any, needed: str) -> bool:
    return _RANK[user_role(user)] >= _RANK[needed]


def role_required(needed: str) -> Callable:
    """Decorator: 403 unless the logged-in user holds `needed` or a higher role.

    Anonymous users never get here: LoginRequiredMiddleware redirects them to the login page.
    """

    def decorator(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if not has_role(request.user, needed):
                raise PermissionDenied(f"This needs the {needed} role.")
            return view(request, *args, **kwargs)

        return wrapper

    return decorator


viewer_required = role_required(VIEWER)
operator_required = role_required(OPERATOR)
admin_required = role_required(ADMIN)
