"""The web promises: a strict Content-Security-Policy that the pages keep (no inline script, handler
or style anywhere), htmx configured for it, a request id on every response and Operation, sign-in
throttling, `check --deploy` clean under production settings, and node hosts validated."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet
from django.contrib.auth.models import User
from django.core.cache import cache
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client
from htmlscan import csp_problems
from secdata import PASSWORD, RichFleet, all_endpoints, auth_headers, url_for

from fleetui.activity.models import Operation
from fleetui.core.security import throttle_keys
from fleetui.nodes.models import Node

BASE_DIR = Path(__file__).resolve().parents[2]


# ---------------------------------------------------------------- Content-Security-Policy


def _csp(response: Any) -> dict[str, list[str]]:
    header = response["Content-Security-Policy"]
    directives = {}
    for part in header.split(";"):
        words = part.split()
        if words:
            directives[words[0]] = words[1:]
    return directives


def test_it_sends_a_strict_csp_on_every_kind_of_answer(as_role: Callable[..., Client], rich_fleet: RichFleet) -> None:
    anonymous, admin, nobody = as_role("anonymous"), as_role("admin"), as_role("none")
    responses = [anonymous.get("/accounts/login/"), admin.get("/"),
                 admin.get("/nodes/", headers={"HX-Request": "true"}),
                 admin.get("/no-such-page/"), nobody.get("/"), admin.get("/admin/")]
    assert [r.status_code for r in responses] == [200, 200, 200, 404, 403, 302]
    for response in responses:
        csp = _csp(response)
        assert csp["default-src"] == ["'self'"]
        assert csp["script-src"] == ["'self'"], "no 'unsafe-inline', no 'unsafe-eval', no other origin"
        assert csp["style-src"] == ["'self'"]
        assert csp["object-src"] == ["'none'"]
        assert csp["frame-ancestors"] == ["'none'"]
        assert "unsafe" not in response["Content-Security-Policy"]


def test_it_configures_htmx_for_the_csp(as_role: Callable[..., Client], rich_fleet: RichFleet) -> None:
    html = as_role("viewer").get("/").content.decode()
    match = re.search(r"<meta name=\"htmx-config\" content='([^']*)'>", html)
    assert match, "base.html must configure htmx with a <meta name=htmx-config> tag"
    config = json.loads(match.group(1))
    assert config["includeIndicatorStyles"] is False
    assert config["allowEval"] is False
    # htmx itself is served from our origin, never a CDN.
    scripts = re.findall(r"<script[^>]*src=\"([^\"]+)\"", html)
    assert scripts and all(src.startswith("/static/") for src in scripts), scripts


def test_it_renders_no_inline_script_handler_or_style_on_any_page(as_role: Callable[..., Client],
                                                                  rich_fleet: RichFleet) -> None:
    """Every GET page and partial (admin, so every control shows), the sign-in, lockout and error pages."""
    from test_security_roles_matrix import EXPECTED

    admin = as_role("admin")
    pages: dict[str, str] = {}
    for endpoint in all_endpoints():
        if "GET" not in EXPECTED.get(endpoint.name, {}) or endpoint.name == "login":
            continue
        url = url_for(endpoint, rich_fleet)
        for headers in ({}, {"HX-Request": "true"}):
            response = admin.get(url, headers=headers | auth_headers(endpoint))
            assert response.status_code in (200, 286, 302), (url, response.status_code)
            if response.status_code != 302 and "html" in response.get("Content-Type", ""):
                pages[f"{url} {headers}"] = response.content.decode()
    pages["login"] = as_role("anonymous").get("/accounts/login/").content.decode()
    pages["403"] = as_role("none").get("/").content.decode()
    pages["404"] = admin.get("/no-such-page/").content.decode()
    problems = {name: csp_problems(html) for name, html in pages.items()}
    assert {name: found for name, found in problems.items() if found} == {}
    assert len(pages) >= 60


def test_the_scanner_finds_what_the_csp_would_block() -> None:
    assert csp_problems('<script>alert(1)</script><a href="javascript:x()">a</a>') == [
        "<script> without src (inline script)", "<a href='javascript:x()'> javascript: URL"]
    assert csp_problems('<img src="x" onerror="y()"><p style="color:red">') == [
        "<img onerror=...> inline event handler", "<p style=...> inline style"]
    assert csp_problems('<script src="/static/a.js"></script><div hx-get="/x/">') == []


# ---------------------------------------------------------------- request id


def test_it_sets_a_request_id_on_every_response(as_role: Callable[..., Client], rich_fleet: RichFleet) -> None:
    client = as_role("viewer")
    first, second = client.get("/"), client.get("/")
    assert re.fullmatch(r"[0-9a-f]{32}", first["X-Request-ID"])
    assert first["X-Request-ID"] != second["X-Request-ID"]
    assert client.get("/", headers={"X-Request-ID": "lb-7f3a9c21-0001"})["X-Request-ID"] == "lb-7f3a9c21-0001"
    for insane in ("short", "has space in it", "<script>alert(1)</script>", "x" * 65, "evil\r\nSet-Cookie: a=b"):
        answered = client.get("/", headers={"X-Request-ID": insane})["X-Request-ID"]
        assert re.fullmatch(r"[0-9a-f]{32}", answered), insane


def test_it_stores_the_request_id_and_source_ip_on_the_operation(as_role: Callable[..., Client],
                                                                  rich_fleet: RichFleet) -> None:
    client = as_role("operator")
    running = rich_fleet.vms[1]
    response = client.post(f"/vms/{running.pk}/action/stop/", {}, headers={"X-Request-ID": "proxy-req-12345678"},
                           REMOTE_ADDR="203.0.113.9")
    assert response.status_code in (200, 302)
    assert response["X-Request-ID"] == "proxy-req-12345678"
    op = Operation.objects.get(kind="vm.stop", vm=running)
    assert (op.request_id, op.source_ip, op.username) == ("proxy-req-12345678", "203.0.113.9", "operator1")

    response = client.post(f"/vms/{rich_fleet.vms[0].pk}/action/start/", {}, REMOTE_ADDR="2001:db8::7")
    op = Operation.objects.filter(kind="vm.start", vm=rich_fleet.vms[0]).order_by("-created_at").first()
    assert op.request_id == response["X-Request-ID"]
    assert op.source_ip == "2001:db8::7"


# ---------------------------------------------------------------- sign-in throttling


@pytest.fixture()
def throttle(settings: Any) -> Iterator[Callable[[str, str], None]]:
    """Limit 3 failures; the counters of the (address, username) pairs a test uses are removed after it,
    so the rest of the suite (browser tests sign in from 127.0.0.1) is never locked out."""
    settings.LOGIN_FAILURE_LIMIT = 3
    used: list[tuple[str, str]] = []

    def track(ip: str, username: str) -> None:
        used.append((ip, username))
        cache.delete_many(list(throttle_keys(ip, username)))

    yield track
    for ip, username in used:
        cache.delete_many(list(throttle_keys(ip, username)))


def _login(client: Client, username: str, password: str, ip: str) -> Any:
    return client.post("/accounts/login/", {"username": username, "password": password}, REMOTE_ADDR=ip)


def test_it_locks_sign_in_after_repeated_failures(users: dict[str, User], throttle: Any, settings: Any) -> None:
    ip = "198.51.100.23"
    throttle(ip, "admin1")
    throttle(ip, "viewer1")
    client = Client()
    for _ in range(3):
        response = _login(client, "admin1", "wrong-password", ip)
        assert response.status_code == 200 and b"Please enter a correct username" in response.content
    locked = _login(client, "admin1", PASSWORD, ip)
    assert locked.status_code == 429
    assert b"Too many failed sign-ins" in locked.content
    assert int(locked["Retry-After"]) == settings.LOGIN_LOCKOUT_SECONDS
    assert "_auth_user_id" not in client.session, "the right password is refused while locked"
    assert not csp_problems(locked.content.decode())
    # Another account from that address, and the same account from elsewhere, still sign in.
    assert _login(Client(), "viewer1", PASSWORD, ip).status_code == 302
    assert _login(Client(), "admin1", PASSWORD, "198.51.100.99").status_code == 302
    throttle("198.51.100.99", "admin1")


def test_it_unlocks_after_the_lockout_and_forgets_failures_on_success(users: dict[str, User], throttle: Any,
                                                                      settings: Any) -> None:
    settings.LOGIN_LOCKOUT_SECONDS = 1
    ip = "198.51.100.24"
    throttle(ip, "operator1")
    for _ in range(3):
        _login(Client(), "operator1", "nope", ip)
    assert _login(Client(), "operator1", PASSWORD, ip).status_code == 429
    time.sleep(1.2)
    assert _login(Client(), "operator1", PASSWORD, ip).status_code == 302
    # Two failures, a success, two failures: never locked (a success clears the count).
    for attempt in ("nope", "nope", PASSWORD, "nope", "nope"):
        _login(Client(), "operator1", attempt, ip)
    assert _login(Client(), "operator1", PASSWORD, ip).status_code == 302


def test_it_locks_an_address_that_tries_many_usernames(users: dict[str, User], throttle: Any) -> None:
    ip = "198.51.100.25"
    names = [f"guess{i}" for i in range(12)]
    for name in names:
        throttle(ip, name)
    throttle(ip, "viewer1")
    for name in names:  # 12 = 4 x the limit of 3
        assert _login(Client(), name, "whatever", ip).status_code == 200
    assert _login(Client(), "viewer1", PASSWORD, ip).status_code == 429


def test_it_does_not_count_an_empty_form(users: dict[str, User], throttle: Any) -> None:
    ip = "198.51.100.26"
    throttle(ip, "viewer1")
    throttle(ip, "")
    for _ in range(5):
        Client().post("/accounts/login/", {"username": "viewer1", "password": ""}, REMOTE_ADDR=ip)
    assert _login(Client(), "viewer1", PASSWORD, ip).status_code == 302


# ---------------------------------------------------------------- deployment checks


def test_it_passes_check_deploy_under_production_settings() -> None:
    """What CI (.ci/run) runs before the suite, here too: production settings with throwaway secrets."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FLEETUI_", "DJANGO_"))}
    env.update({
        "FLEETUI_MODE": "production",
        "ALLOWED_HOSTS": "fleet.example.com",
        "SECRET_KEY": "prod-" + Fernet.generate_key().decode() * 2,
        "FLEETUI_CREDENTIAL_KEYS": Fernet.generate_key().decode(),
        "DJANGO_SETTINGS_MODULE": "fleetui.settings",
    })
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout
    ci = (BASE_DIR / ".ci" / "run").read_text()
    assert "check --deploy --fail-level WARNING" in ci and "FLEETUI_MODE=production" in ci


def test_production_settings_turn_on_secure_cookies_hsts_and_https() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLEETUI_")}
    env.update({"FLEETUI_MODE": "production", "ALLOWED_HOSTS": "fleet.example.com",
                "SECRET_KEY": "x" * 60, "FLEETUI_CREDENTIAL_KEYS": Fernet.generate_key().decode()})
    code = ("import django, json; django.setup(); from django.conf import settings as s; print(json.dumps(["
            "s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.SECURE_SSL_REDIRECT, s.SECURE_HSTS_SECONDS, "
            "s.DEBUG, s.SESSION_COOKIE_HTTPONLY, s.X_FRAME_OPTIONS]))")
    result = subprocess.run([sys.executable, "-c", code], cwd=BASE_DIR, capture_output=True, text=True, timeout=60,
                            env={**env, "DJANGO_SETTINGS_MODULE": "fleetui.settings"})
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == [True, True, True, 31536000, False, True, "DENY"]


# ---------------------------------------------------------------- node hosts

REFUSED_HOSTS = [
    "169.254.169.254",  # cloud metadata (AWS, GCP, Azure...)
    "169.254.1.1",  # link-local
    "fe80::1",  # IPv6 link-local
    "[fe80::1]",
    "fe80::1%eth0",
    "fd00:ec2::254",  # AWS IPv6 metadata
    "::ffff:169.254.169.254",  # metadata behind an IPv4-mapped address
    "metadata.google.internal",
    "METADATA.GOOGLE.INTERNAL.",
    "224.0.0.1",  # multicast
    "ff02::1",
    "0.0.0.0",  # unspecified
    "::",
    "255.255.255.255",
    "2852039166",  # 169.254.169.254 written as one number: resolves to metadata
]


@pytest.fixture()
def admin_client(as_role: Callable[..., Client]) -> Client:
    return as_role("admin")


@pytest.mark.parametrize("host", REFUSED_HOSTS)
def test_it_refuses_a_node_host_through_the_form(admin_client: Client, host: str) -> None:
    response = admin_client.post("/nodes/add/", {"name": "evil", "host": host, "port": 9473,
                                                 "api_token": "csk_whatever_token_123"})
    assert response.status_code == 200
    assert b"not a node" in response.content or b"cannot be nodes" in response.content \
        or b"resolves to" in response.content or b"metadata service" in response.content, host
    assert not Node.objects.exists()


@pytest.mark.parametrize("host", ["169.254.169.254", "fe80::1", "metadata.google.internal", "ff02::1", "0.0.0.0"])
def test_it_refuses_a_node_host_through_addnode(db: Any, host: str) -> None:
    with pytest.raises(CommandError, match="Could not register"):
        call_command("addnode", "--name", "evil", "--host", host, "--api-token", "csk_whatever_token_123",
                     stdout=StringIO())
    assert not Node.objects.exists()


def test_it_refuses_loopback_unless_allowed(admin_client: Client, settings: Any, sim_fleet: Any) -> None:
    fleet = sim_fleet(nodes=1, vms_per_node=1)
    sim = fleet.nodes[0]
    settings.ALLOW_LOOPBACK_NODES = False
    for host in ("127.0.0.1", "::1", "localhost", "0x7f.1"):
        response = admin_client.post("/nodes/add/", {"name": "loop", "host": host, "port": sim.port,
                                                     "api_token": sim.api_token})
        assert b"loopback" in response.content, host
        with pytest.raises(CommandError, match="loopback"):
            call_command("addnode", "--name", "loop", "--host", host, "--port", str(sim.port),
                         "--api-token", sim.api_token, stdout=StringIO())
    assert not Node.objects.exists()
    settings.ALLOW_LOOPBACK_NODES = True
    response = admin_client.post("/nodes/add/", {"name": "loop", "host": "127.0.0.1", "port": sim.port,
                                                 "api_token": sim.api_token})
    assert response.status_code == 302, response.content.decode()[-2000:]
    assert Node.objects.get().host == "127.0.0.1"


def test_sign_in_still_works_when_the_cache_is_down(users: dict[str, User], settings: Any,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    """The throttle's counters live in Redis; with Redis unreachable sign-in is not throttled, not broken."""
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                                   "LOCATION": "redis://127.0.0.1:1/0",  # nothing listens on port 1
                                   "OPTIONS": {"socket_connect_timeout": 0.2, "socket_timeout": 0.2}}}
    assert _login(Client(), "viewer1", "wrong", "198.51.100.27").status_code == 200
    assert _login(Client(), "viewer1", PASSWORD, "198.51.100.27").status_code == 302
    assert "login throttling is off: the cache cannot be reached" in caplog.text


def test_the_django_admin_renders_no_inline_script_either(db: Any) -> None:
    root = User.objects.create_superuser("root", "root@example.com", "x-root-pass-123")
    client = Client()
    client.force_login(root)
    for url in ("/admin/", "/admin/activity/operation/", "/admin/nodes/node/", "/admin/auth/user/",
                f"/admin/auth/user/{root.pk}/change/"):
        response = client.get(url)
        assert response.status_code == 200, url
        assert csp_problems(response.content.decode()) == [], url


def test_log_lines_carry_the_request_id(users: dict[str, User], throttle: Any, settings: Any) -> None:
    """The console log format (settings.LOGGING) puts the request id on each line, so a user's
    X-Request-ID (or the one on an Operation) finds the log lines of that request."""
    import logging

    from fleetui.core.middleware import RequestIDLogFilter

    stream = StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RequestIDLogFilter())
    handler.setFormatter(logging.Formatter(settings.LOGGING["formatters"]["plain"]["format"]))
    assert settings.LOGGING["handlers"]["console"]["filters"] == ["request_id"]
    logger = logging.getLogger("fleetui.core.security")
    logger.addHandler(handler)
    try:
        throttle("198.51.100.28", "viewer1")
        Client().post("/accounts/login/", {"username": "viewer1", "password": "wrong"},
                      headers={"X-Request-ID": "support-ticket-4711"}, REMOTE_ADDR="198.51.100.28")
        logger.warning("outside any request")
    finally:
        logger.removeHandler(handler)
    lines = stream.getvalue().splitlines()
    assert any("[support-ticket-4711] failed sign-in for 'viewer1'" in line for line in lines), lines
    assert lines[-1].endswith("[-] outside any request")


def test_behind_a_trusted_proxy_the_client_address_is_recorded(as_role: Callable[..., Client],
                                                                 rich_fleet: RichFleet, settings: Any) -> None:
    settings.TRUSTED_PROXIES = ["127.0.0.1", "10.0.0.0/8"]
    client = as_role("operator")
    cases = [
        # (direct peer, X-Forwarded-For, the address recorded)
        ("127.0.0.1", "203.0.113.5", "203.0.113.5"),
        ("127.0.0.1", "6.6.6.6, 203.0.113.6, 10.1.2.3", "203.0.113.6"),  # the left part is the client's to forge
        ("198.51.100.1", "203.0.113.7", "198.51.100.1"),  # not a trusted proxy: its header is ignored
        ("127.0.0.1", "garbage, 10.9.9.9", "10.9.9.9"),  # nothing left of a malformed entry is believed
        ("127.0.0.1", "", "127.0.0.1"),
        ("127.0.0.1", "2001:db8::5", "2001:db8::5"),
    ]
    vm = rich_fleet.vms[1]
    for peer, forwarded, expected in cases:
        Operation.objects.filter(vm=vm).update(status="succeeded")  # one pending operation per VM at a time
        response = client.post(f"/vms/{vm.pk}/action/stop/", {}, REMOTE_ADDR=peer,
                               headers={"X-Forwarded-For": forwarded} if forwarded else {})
        assert response.status_code in (200, 302)
        op = Operation.objects.filter(vm=vm, kind="vm.stop").order_by("-created_at").first()
        assert op.source_ip == expected, (peer, forwarded)

    settings.TRUSTED_PROXIES = []
    client.post(f"/vms/{rich_fleet.vms[4].pk}/action/stop/", {}, REMOTE_ADDR="127.0.0.1",
                headers={"X-Forwarded-For": "203.0.113.9"})
    assert Operation.objects.get(vm=rich_fleet.vms[4], kind="vm.stop").source_ip == "127.0.0.1"
    from django.core.exceptions import ImproperlyConfigured

    from fleetui.core.middleware import _networks

    with pytest.raises(ImproperlyConfigured, match="FLEETUI_TRUSTED_PROXIES"):
        _networks(("10.0.0.0/8", "proxy.example.com"))
