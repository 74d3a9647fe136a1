"""FleetUI settings: one module, read from environment variables with strict parsers.

FLEETUI_MODE=production demands every secret from the environment; the default ("dev")
generates its keys into var/local-secrets.json (git-ignored) so `make run` works out of the box.
"""

from __future__ import annotations

import warnings
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from fleetui.core.env import env_bool, env_int, env_list, env_str, local_secrets, parse_database_url

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("FLEETUI_VAR_DIR", str(BASE_DIR / "var")))

MODE = env_str("FLEETUI_MODE", "dev")
if MODE not in {"dev", "production"}:
    raise ImproperlyConfigured(f"FLEETUI_MODE must be 'dev' or 'production', got {MODE!r}")
PRODUCTION = MODE == "production"

_local = {} if PRODUCTION else local_secrets(VAR_DIR / "local-secrets.json")


def _secret(name: str) -> str:
    value = env_str(name)
    if value:
        return value
    if PRODUCTION:
        raise ImproperlyConfigured(f"{name} must be set when FLEETUI_MODE=production")
    return _local[name]


SECRET_KEY = _secret("SECRET_KEY")
# Comma-separated Fernet keys; the first encrypts, all decrypt (MultiFernet), so keys can rotate.
CREDENTIAL_KEYS = [k for k in _secret("FLEETUI_CREDENTIAL_KEYS").split(",") if k.strip()]
METRICS_TOKEN = env_str("FLEETUI_METRICS_TOKEN") or _local.get("FLEETUI_METRICS_TOKEN", "")

DEBUG = env_bool("DEBUG", False)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", [] if PRODUCTION else ["127.0.0.1", "localhost", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

# How often every node is polled, in seconds; health is derived from it (online within 3 intervals).
POLL_INTERVAL = env_int("FLEETUI_POLL_INTERVAL", 10, minimum=1, maximum=3600)
# Timeouts for calls to nodes, in seconds.
NODE_CONNECT_TIMEOUT = env_int("FLEETUI_NODE_CONNECT_TIMEOUT", 3, minimum=1, maximum=120)
NODE_READ_TIMEOUT = env_int("FLEETUI_NODE_READ_TIMEOUT", 10, minimum=1, maximum=600)
# Node hosts on loopback are refused unless this is on (the demo and tests turn it on for fleetsim).
ALLOW_LOOPBACK_NODES = env_bool("FLEETUI_ALLOW_LOOPBACK_NODES", not PRODUCTION)
# Days of history kept.
STATS_RETENTION_DAYS = env_int("FLEETUI_STATS_RETENTION_DAYS", 7, minimum=1)
EVENTS_RETENTION_DAYS = env_int("FLEETUI_EVENTS_RETENTION_DAYS", 90, minimum=1)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_htmx",
    "fleetui.core",
    "fleetui.access",
    "fleetui.nodes",
    "fleetui.vms",
    "fleetui.images",
    "fleetui.activity",
    "fleetui.fleet",
    "fleetui.provisioning",
    "fleetui.console",
    "fleetui.catalog",
    "fleetui.batches",
    "fleetui.alerts",
    "fleetui.search",
    "fleetui.metrics",
]

MIDDLEWARE = [
    "fleetui.core.middleware.TrustedProxyMiddleware",
    "fleetui.core.middleware.RequestIDMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "fleetui.core.middleware.ContentSecurityPolicyMiddleware",
    # Serves /static/ from gunicorn or runserver alike, so a deployment needs no separate file server.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "fleetui.urls"
WSGI_APPLICATION = "fleetui.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "fleetui.core.context_processors.fleetui",
            ],
        },
    }
]

DATABASES = {
    "default": parse_database_url(env_str("DATABASE_URL", "sqlite:///var/fleetui.sqlite3"), base_dir=BASE_DIR)
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "fleet-overview"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(env_str("FLEETUI_STATIC_ROOT", str(BASE_DIR / "staticfiles")))
# Dev serves static/ as it is; production serves what `collectstatic` gathered (compressed copies too).
WHITENOISE_USE_FINDERS = not PRODUCTION
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"
        if PRODUCTION
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
if not PRODUCTION:
    # Dev serves static/ through the finders; that STATIC_ROOT has not been collected is expected there.
    warnings.filterwarnings("ignore", message="No directory at: ", category=UserWarning)

REDIS_URL = env_str("REDIS_URL", "redis://127.0.0.1:6379/0")

CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "fleetui",
        "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
    }
}

# Celery: polls and actions on separate queues so a long pull or command never starves polls.
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", REDIS_URL)
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SOFT_TIME_LIMIT = env_int("FLEETUI_TASK_SOFT_TIME_LIMIT", 900, minimum=5)
CELERY_TASK_TIME_LIMIT = CELERY_TASK_SOFT_TIME_LIMIT + 60
# The visibility timeout must outlast the hard time limit, or Redis redelivers tasks still running.
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": CELERY_TASK_TIME_LIMIT + 300}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_DEFAULT_QUEUE = "actions"
CELERY_TASK_ROUTES = {
    "fleetui.nodes.tasks.*": {"queue": "polls"},
    "fleetui.activity.tasks.*": {"queue": "actions"},
    # Alert checks and webhook sends: short, on their own queue so long actions never delay an alert.
    "fleetui.alerts.tasks.*": {"queue": "alerts"},
}
CELERY_BEAT_SCHEDULE = {
    "poll-fleet": {"task": "fleetui.nodes.tasks.poll_fleet", "schedule": float(POLL_INTERVAL)},
    "prune-history": {"task": "fleetui.nodes.tasks.prune_history", "schedule": 3600.0},
    "alerts-sweep": {"task": "fleetui.alerts.tasks.sweep", "schedule": 60.0},
}

# Alerts (fleetui.alerts): links in messages (e.g. https://fleet.example.com), send timeouts, retries.
ALERTS_BASE_URL = env_str("FLEETUI_BASE_URL", "")
ALERT_CONNECT_TIMEOUT = env_int("FLEETUI_ALERT_CONNECT_TIMEOUT", 3, minimum=1, maximum=60)
ALERT_READ_TIMEOUT = env_int("FLEETUI_ALERT_READ_TIMEOUT", 5, minimum=1, maximum=120)
ALERT_MAX_ATTEMPTS = env_int("FLEETUI_ALERT_MAX_ATTEMPTS", 6, minimum=1, maximum=20)
# First retry after this many milliseconds, doubling each time (10 s, 20 s, 40 s...).
ALERT_RETRY_BASE_MS = env_int("FLEETUI_ALERT_RETRY_BASE_MS", 10_000, minimum=10, maximum=3_600_000)

SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False  # htmx reads no cookie: the token rides in hx-headers on <body>
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# Error reports (500 mails, logs) hide locals that look like secrets and every local of SDK/HTTP frames.
DEFAULT_EXCEPTION_REPORTER_FILTER = "fleetui.core.security.SecretsExceptionReporterFilter"
# Sign-in throttling (fleetui.core.security): failures per username and address before a lockout, and its length.
LOGIN_FAILURE_LIMIT = env_int("FLEETUI_LOGIN_FAILURE_LIMIT", 5, minimum=1)
LOGIN_LOCKOUT_SECONDS = env_int("FLEETUI_LOGIN_LOCKOUT_SECONDS", 900, minimum=1)
# Reverse proxies (IPs or networks) whose X-Forwarded-For is believed, so audit records and sign-in
# throttling see the client's address instead of the proxy's (fleetui.core.middleware).
TRUSTED_PROXIES = env_list("FLEETUI_TRUSTED_PROXIES", [])
if PRODUCTION:
    SESSION_COOKIE_SECURE = env_bool("FLEETUI_SECURE_COOKIES", True)
    CSRF_COOKIE_SECURE = env_bool("FLEETUI_SECURE_COOKIES", True)
    SECURE_SSL_REDIRECT = env_bool("FLEETUI_SSL_REDIRECT", True)
    SECURE_HSTS_SECONDS = env_int("FLEETUI_HSTS_SECONDS", 31536000, minimum=0)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    # [request id]: the X-Request-ID of the web request a line was logged in ("-" elsewhere).
    "filters": {"request_id": {"()": "fleetui.core.middleware.RequestIDLogFilter"}},
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain", "filters": ["request_id"]}},
    "root": {"handlers": ["console"], "level": env_str("FLEETUI_LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
