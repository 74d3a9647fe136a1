# FleetUI: one image for the web server (default command), the Celery worker and Celery beat.
#   docker build -t fleetui .          docker compose up -d   (see docker-compose.yml and README.md)
FROM python:3.11-slim

# PYTHONPATH: the project is imported from /app (templates/ and static/ live beside it), not from
# site-packages. FLEETUI_MODE=production: the image refuses to start without real secrets
# (SECRET_KEY, FLEETUI_CREDENTIAL_KEYS) and ALLOWED_HOSTS.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONPATH=/app \
    DJANGO_SETTINGS_MODULE=fleetui.settings \
    FLEETUI_MODE=production \
    FLEETUI_STATIC_ROOT=/app/staticfiles \
    WEB_CONCURRENCY=3

WORKDIR /app

# Dependencies first, in their own layer, rebuilt only when pyproject.toml changes.
COPY pyproject.toml README.md ./
RUN mkdir -p fleetui sdk/ciderstack sdk/fleetsim \
    && touch fleetui/__init__.py sdk/ciderstack/__init__.py sdk/fleetsim/__init__.py \
    && pip install . \
    && pip uninstall -y fleetui \
    && rm -rf fleetui sdk build ./*.egg-info

# The code, its static files gathered at build time (throwaway secrets: collectstatic only needs
# the settings to load), and an unprivileged user that owns nothing but /app/var.
COPY . .
RUN pip install --no-deps . \
    && rm -rf build ./*.egg-info \
    && FLEETUI_MODE=production SECRET_KEY=collectstatic-only FLEETUI_CREDENTIAL_KEYS=collectstatic-only \
       ALLOWED_HOSTS=localhost python manage.py collectstatic --noinput \
    && useradd --system --uid 10001 --user-group --home-dir /app --no-create-home --shell /usr/sbin/nologin fleetui \
    && mkdir -p /app/var \
    && chown fleetui:fleetui /app/var

# Numeric, so a platform can tell it is not root (runAsNonRoot) without reading /etc/passwd.
USER 10001:10001
EXPOSE 8000

HEALTHCHECK --interval=30s --timeout=10s --start-period=30s --retries=3 CMD ["python", "/app/docker/healthcheck.py"]

CMD ["gunicorn", "fleetui.wsgi:application", "--bind", "0.0.0.0:8000", "--access-logfile", "-", "--timeout", "60"]
