"""Security pieces that are not middleware: login throttling, the error-report filter, and the
discovery of every stored credential (for `manage.py rotate_keys`).

Login throttling: after LOGIN_FAILURE_LIMIT failed sign-ins for one username from one address
(or 4x that many from one address, whatever the usernames) within LOGIN_LOCKOUT_SECONDS, further
attempts are refused with HTTP 429 and a page that says so, without even checking the password.
The counters live in the cache (Redis); when it is down, sign-in still works (and says so in the log).
"""

from __future__ import annotations

import hashlib
import logging
import re
from types import FrameType
from typing import Any

from django.apps import apps
from django.conf import settings
from django.contrib.auth.views import LoginView
from django.core.cache import cache
from django.db import models
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.debug import SafeExceptionReporterFilter

logger = logging.getLogger(__name__)

# ---------------------------------------------------------------- login throttling


def _limits() -> tuple[int, int]:
    return int(getattr(settings, "LOGIN_FAILURE_LIMIT", 5)), int(getattr(settings, "LOGIN_LOCKOUT_SECONDS", 900))


def _client_ip(request: HttpRequest) -> str:
    return str(request.META.get("REMOTE_ADDR", "") or "unknown")


def throttle_keys(ip: str, username: str) -> tuple[str, str]:
    """The cache keys counting failures for (address, username) and for the address alone."""
    digest = hashlib.sha256(f"{ip}\x00{username.strip().lower()}".encode()).hexdigest()[:32]
    return f"login-fail:pair:{digest}", f"login-fail:ip:{hashlib.sha256(ip.encode()).hexdigest()[:32]}"


def login_locked(request: HttpRequest, username: str) -> bool:
    limit, _ = _limits()
    pair_key, ip_key = throttle_keys(_client_ip(request), username)
    try:
        counts = cache.get_many([pair_key, ip_key])
    except Exception:  # noqa: BLE001 - the cache (Redis) is down: sign-in must still work
        logger.warning("login throttling is off: the cache cannot be reached")
        return False
    return int(counts.get(pair_key) or 0) >= limit or int(counts.get(ip_key) or 0) >= 4 * limit


def login_failed(request: HttpRequest, username: str) -> None:
    _, window = _limits()
    for key in throttle_keys(_client_ip(request), username):
        try:
            if not cache.add(key, 1, timeout=window):
                cache.incr(key)
        except ValueError:  # expired between add and incr
            cache.add(key, 1, timeout=window)
        except Exception:  # noqa: BLE001 - the cache (Redis) is down
            logger.warning("login throttling is off: the cache cannot be reached")
            return
    logger.warning("failed sign-in for %r from %s", username[:150], _client_ip(request))


def login_succeeded(request: HttpRequest, username: str) -> None:
    pair_key, _ = throttle_keys(_client_ip(request), username)
    try:
        cache.delete(pair_key)
    except Exception:  # noqa: BLE001 - the cache (Redis) is down
        pass


class ThrottledLoginView(LoginView):
    """Django's LoginView (sensitive_post_parameters, CSRF, never-cache) plus lockout after failures."""

    redirect_authenticated_user = True
    lockout_template_name = "registration/locked_out.html"

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        username = str(request.POST.get("username", ""))
        if login_locked(request, username):
            _, window = _limits()
            response = render(request, self.lockout_template_name, {"minutes": max(1, window // 60)}, status=429)
            response["Retry-After"] = str(window)
            return response
        return super().post(request, *args, **kwargs)

    def form_invalid(self, form: Any) -> HttpResponse:
        username = str(self.request.POST.get("username", ""))
        # A guess needs both fields; an empty or half-filled form is not counted.
        if username and self.request.POST.get("password"):
            login_failed(self.request, username)
        return super().form_invalid(form)

    def form_valid(self, form: Any) -> HttpResponse:
        login_succeeded(self.request, form.get_user().get_username())
        return super().form_valid(form)


# ---------------------------------------------------------------- error reports

# Locals of frames in these modules are never shown in an error report: they handle tokens and
# passwords in request bodies and headers (the SDK and the HTTP stack under it).
_OPAQUE_FRAME_MODULES = re.compile(r"^(ciderstack|requests|urllib3|http\.client|cryptography|kombu|redis)(\.|$)")
# Settings, dict keys and (with "code", as in pairing code) local variable names that hold secrets.
_SENSITIVE_SETTING = re.compile(r"API|AUTH|TOKEN|KEY|SECRET|PASS|SIGNATURE|CREDENTIAL|PRIVATE|COOKIE", re.I)
_SENSITIVE_NAME = re.compile(_SENSITIVE_SETTING.pattern + r"|CODE", re.I)


class SecretsExceptionReporterFilter(SafeExceptionReporterFilter):
    """Django's filter (sensitive_variables, sensitive_post_parameters, settings) plus two nets for
    code that forgot to mark a secret: locals whose names say secret, and dicts with such keys, are
    cleansed everywhere; frames of the SDK and the HTTP stack show no locals at all."""

    hidden_settings = _SENSITIVE_SETTING

    def get_traceback_frame_variables(self, request: HttpRequest | None, tb_frame: FrameType) -> Any:
        module = str(tb_frame.f_globals.get("__name__", ""))
        if _OPAQUE_FRAME_MODULES.match(module):
            return [(name, self.cleansed_substitute) for name in tb_frame.f_locals]
        variables = super().get_traceback_frame_variables(request, tb_frame)
        cleansed = []
        for name, value in variables:
            if _SENSITIVE_NAME.search(str(name)):
                value = self.cleansed_substitute
            elif isinstance(value, dict):
                value = self.cleanse_setting(name, value)
            cleansed.append((name, value))
        return cleansed


# ---------------------------------------------------------------- stored credentials

ENCRYPTED_FIELD_SUFFIX = "_enc"


def encrypted_fields() -> list[tuple[type[models.Model], str]]:
    """Every (model, field name) holding a credential encrypted with fleetui.core.crypto: by
    convention a text field whose name ends in `_enc`, in any of our apps."""
    found = []
    for model in apps.get_models():
        if not model.__module__.startswith("fleetui."):
            continue
        for field in model._meta.concrete_fields:
            if field.name.endswith(ENCRYPTED_FIELD_SUFFIX) and isinstance(field, models.CharField | models.TextField):
                found.append((model, field.name))
    return found
