"""Secrets never in clear: API tokens, the pairing private key (and paired node id), SSH and
registry passwords are used for real against fleetsim through the pages, then looked for in every
database row, every Redis key and queued Celery message, the logs, every page and partial, and
Django's error reports. Stored credentials rotate to a new key with `manage.py rotate_keys`, and
one no key can read asks for the token again instead of failing."""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Callable, Iterator
from io import StringIO
from typing import Any

import pytest
import redis
from cryptography.fernet import Fernet
from django.conf import settings
from django.contrib.auth.models import User
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client, RequestFactory
from django.views.debug import ExceptionReporter, SafeExceptionReporterFilter
from secdata import RichFleet, all_endpoints, auth_headers, make_rich_fleet, url_for
from secretscan import database_leaks, expand, leaks, redis_leaks

from fleetui.activity.models import Operation, OperationStatus
from fleetui.activity.secrets import secrets_put, secrets_take
from fleetui.activity.services import operation_run
from fleetui.celery import app as celery_app
from fleetui.core import crypto
from fleetui.core.security import SecretsExceptionReporterFilter, encrypted_fields
from fleetui.nodes.models import Node
from fleetui.nodes.services import node_poll
from fleetui.vms.models import VM

SSH_PASSWORD = "ssh-Pa55word-7c1e9b"
REGISTRY_PASSWORD = "reg-Pa55word-4d2a8f"
WEBHOOK_SECRET_URL = "https://hooks.slack.example.com/services/T9/B8/xoxSecretHookPath77"
HELD_QUEUE = "security-held"


@pytest.fixture()
def held_queue() -> Iterator[redis.Redis]:
    """Route every task to a queue no worker reads, so the messages stay in Redis to be read (a
    session's Celery worker may be running: it reads only "polls" and "actions")."""
    conn = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    routes = celery_app.conf.task_routes
    celery_app.conf.update(task_routes={"fleetui.*": {"queue": HELD_QUEUE}})
    conn.delete(HELD_QUEUE)
    try:
        yield conn
    finally:
        celery_app.conf.update(task_routes=routes)
        conn.delete(HELD_QUEUE)


@pytest.fixture()
def admin(as_role: Callable[..., Client]) -> Client:
    return as_role("admin")


def _crawl(client: Client, fleet: RichFleet, **overrides: Any) -> dict[str, str]:
    """Every GET endpoint, page and partial; {url: body}."""
    from test_security_roles_matrix import EXPECTED

    bodies = {}
    for endpoint in all_endpoints():
        if "GET" not in EXPECTED.get(endpoint.name, {}):
            continue
        url = url_for(endpoint, fleet, overrides)
        for headers in ({}, {"HX-Request": "true"}):
            response = client.get(url, headers=headers | auth_headers(endpoint))
            assert response.status_code < 500, (url, response.status_code)
            body = b"".join(response.streaming_content) if response.streaming else response.content
            bodies[f"{url} {headers}"] = body.decode(errors="replace")
    return bodies


def test_secrets_used_for_real_are_nowhere_in_clear(
    admin: Client, users: dict[str, User], sim_fleet: Any, held_queue: redis.Redis,
    django_capture_on_commit_callbacks: Any, caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    sim = sim_fleet(nodes=2, vms_per_node=3).nodes[0]
    secrets = {"API token": sim.api_token, "SSH password": SSH_PASSWORD, "registry password": REGISTRY_PASSWORD}
    scans = 0

    # Register, pair, pull with registry credentials, run a command with an SSH password: through the pages.
    with django_capture_on_commit_callbacks(execute=True):
        response = admin.post("/nodes/add/", {"name": "mac-secret", "host": sim.host, "port": sim.port,
                                              "api_token": sim.api_token})
    assert response.status_code == 302, response.content.decode()[-1500:]
    node = Node.objects.get(name="mac-secret")
    assert node_poll(node_id=node.pk, force=True).ok
    running = VM.objects.filter(node=node, state="running").first()
    assert running is not None
    with django_capture_on_commit_callbacks(execute=True):
        assert admin.post(f"/access/nodes/{node.pk}/pair/", {"code": sim.pairing_code}).status_code == 302
        assert admin.post(f"/nodes/{node.pk}/pull/", {"reference": "ghcr.io/acme/base:15", "username": "ci-bot",
                                                     "password": REGISTRY_PASSWORD}).status_code == 302
        assert admin.post(f"/vms/{running.pk}/exec/", {"command": "echo hello", "ssh_user": "cideradmin",
                                                       "ssh_password": SSH_PASSWORD, "timeout": 30}).status_code == 302

    # An alert webhook whose URL path is its secret.
    hook = {"name": "ops-slack", "url": WEBHOOK_SECRET_URL, "format": "slack", "on_node_offline": "on",
            "lease_window_minutes": 60, "enabled": "on"}
    assert admin.post("/alerts/webhooks/add/", hook).status_code == 302
    secrets["webhook URL"] = WEBHOOK_SECRET_URL

    # With the messages still queued: the broker and every other key of the test Redis database.
    queued = held_queue.llen(HELD_QUEUE)
    assert queued >= 4, "the first poll, the pairing, the pull and the command wait in the queue"
    waiting = Operation.objects.filter(status=OperationStatus.PENDING)
    assert sorted(waiting.values_list("kind", flat=True)) == ["image.pull", "node.pair", "vm.exec"]
    assert all(held_queue.exists(f"fleetui:op-secrets:{op.pk}") for op in waiting), "their secrets wait, encrypted"
    # The scan decodes Celery's base64 message bodies: a canary sent the same way is found.
    celery_app.send_task("fleetui.nodes.tasks.poll_node", args=["canary-0b5e7f"])
    canary, _ = redis_leaks(held_queue, {"canary": "canary-0b5e7f"})
    assert canary, "the Redis scan must see inside queued messages"
    found, keys = redis_leaks(held_queue, secrets)
    assert found == [] and keys >= 4
    scans += 1

    # Run the queued operations as the worker would.
    for op in Operation.objects.filter(status=OperationStatus.PENDING):
        operation_run(operation_id=str(op.pk))
    outcomes = dict(Operation.objects.values_list("kind", "status"))
    assert outcomes == {"node.pair": "succeeded", "image.pull": "succeeded", "vm.exec": "succeeded"}, \
        list(Operation.objects.values_list("kind", "status", "error"))
    node.refresh_from_db()
    secrets["pairing private key"] = crypto.decrypt(node.pairing_private_key_enc)
    secrets["paired node id"] = crypto.decrypt(node.paired_node_id_enc)
    assert len(secrets["pairing private key"]) >= 32

    found, keys = redis_leaks(held_queue, secrets)
    assert found == []
    scans += 1

    # Every row of every table, read raw; every stored credential is a Fernet token.
    found, rows = database_leaks(secrets)
    assert found == [] and rows > 50
    scans += 1
    for model, field in encrypted_fields():
        for value in model._default_manager.exclude(**{field: ""}).values_list(field, flat=True):
            assert value.startswith("gAAAAA"), (model, field)

    # Every page and partial, for the node that used them and for a fleet with every kind of row.
    fleet = make_rich_fleet(users)
    real = {"node_id": node.pk, "vm_id": running.pk,
            "operation_id": Operation.objects.get(kind="vm.exec", node=node).pk}
    pages = _crawl(admin, fleet) | _crawl(admin, fleet, **real)
    page_leaks = [leak for url, body in pages.items() for leak in leaks([body], secrets, url)]
    assert page_leaks == [] and len(pages) >= 120
    scans += 1

    # The logs of all of it (every logger, DEBUG and up).
    log_texts = [caplog.text] + [record.getMessage() for record in caplog.records] + \
                [record.exc_text or "" for record in caplog.records]
    assert leaks(log_texts, secrets, "logs") == []
    assert len(caplog.records) > 5
    scans += 1
    assert scans == 5


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_the_worker_log_holds_no_secret(celery_worker: Any, sim_fleet: Any, wait_for: Callable[..., Any]) -> None:
    """Through the real worker (the Celery message, the Redis secret store, the handler, the SDK)."""
    from secdata import make_users

    users = make_users()
    client = Client()
    client.force_login(users["admin"])
    sim = sim_fleet(nodes=1, vms_per_node=2).nodes[0]
    response = client.post("/nodes/add/", {"name": "mac-worker", "host": sim.host, "port": sim.port,
                                           "api_token": sim.api_token})
    assert response.status_code == 302
    node = Node.objects.get(name="mac-worker")
    running = wait_for(lambda: VM.objects.filter(node=node, state="running").first(), timeout=15,
                       message="the worker's first poll")
    start = len(celery_worker.log())
    client.post(f"/nodes/{node.pk}/pull/", {"reference": "ghcr.io/acme/base:15", "username": "ci-bot",
                                            "password": REGISTRY_PASSWORD})
    client.post(f"/vms/{running.pk}/exec/", {"command": "echo hi", "ssh_user": "cideradmin",
                                             "ssh_password": SSH_PASSWORD, "timeout": 30})
    client.post(f"/access/nodes/{node.pk}/pair/", {"code": sim.pairing_code})
    wait_for(lambda: Operation.objects.filter(status__in=["succeeded", "failed"]).count() == 3, timeout=30,
             message="the three operations to finish")
    assert set(Operation.objects.values_list("status", flat=True)) == {"succeeded"}, \
        list(Operation.objects.values_list("kind", "error"))
    node.refresh_from_db()
    secrets = {"API token": sim.api_token, "SSH password": SSH_PASSWORD, "registry password": REGISTRY_PASSWORD,
               "pairing private key": crypto.decrypt(node.pairing_private_key_enc)}
    log = celery_worker.log()[start:]
    assert "run_operation" in log
    assert leaks([log], secrets, "worker log") == []
    found, _ = database_leaks(secrets)
    assert found == []


# ---------------------------------------------------------------- error reports


def _report(request: Any, exc_info: Any, reporter_filter: Any) -> str:
    reporter = ExceptionReporter(request, *exc_info)
    reporter.filter = reporter_filter
    return reporter.get_traceback_text() + reporter.get_traceback_html()


def _post(path: str, data: dict[str, str], user: User) -> Any:
    request = RequestFactory().post(path, data)
    request.user = user
    request._dont_enforce_csrf_checks = True
    request.session = {}  # type: ignore[assignment]
    return request


class Forced(RuntimeError):
    pass


def _boom(*args: Any, **kwargs: Any) -> None:
    raise Forced("forced error")


class _NoFilter(SafeExceptionReporterFilter):
    """The control: a filter that hides nothing (as in DEBUG) must let the test see the secrets."""

    def is_active(self, request: Any) -> bool:
        return False

    def get_traceback_frame_variables(self, request: Any, tb_frame: Any) -> Any:
        return tb_frame.f_locals.items()


@pytest.mark.parametrize("reporter_filter", [SafeExceptionReporterFilter(), SecretsExceptionReporterFilter(),
                                             _NoFilter()],
                         ids=["django-filter", "fleetui-filter", "control-no-filter"])
def test_error_reports_of_views_and_services_hide_secrets(users: dict[str, User], rich_fleet: RichFleet,
                                                          monkeypatch: pytest.MonkeyPatch,
                                                          reporter_filter: Any) -> None:
    """A forced error deep in each view that takes a secret: the report (text and HTML, with the POST
    data and every frame's locals) shows it as stars, even with Django's own filter (so the views and
    services are marked: sensitive_post_parameters, sensitive_variables)."""
    from fleetui.console.views import vm_exec
    from fleetui.images.views import image_pull
    from fleetui.nodes.views import node_add, node_edit

    token = "csk_report_token_9a8b7c6d5e4f"
    admin = users["admin"]
    node, running = rich_fleet.nodes[1], rich_fleet.vms[1]
    cases = [
        # The token is saved after the probe: fail the save (the probe is made to pass).
        (node_add, "/nodes/add/", {"name": "n", "host": "10.9.9.9", "port": "9473", "api_token": token}, {}),
        (node_edit, f"/nodes/{node.pk}/edit/", {"name": node.name, "host": node.host, "port": "9473",
                                                 "api_token": token}, {"node_id": node.pk}),
        # The secrets go to Redis last: fail there.
        (image_pull, f"/nodes/{node.pk}/pull/", {"reference": "ghcr.io/a/b:1", "username": "u",
                                                 "password": REGISTRY_PASSWORD}, {"node_id": node.pk}),
        (vm_exec, f"/vms/{running.pk}/exec/", {"command": "ls", "ssh_user": "admin", "ssh_password": SSH_PASSWORD,
                                                "timeout": "30"}, {"vm_id": running.pk}),
    ]
    from ciderstack.types import NodeInfo

    import fleetui.activity.secrets as secrets_module
    import fleetui.nodes.services as node_services

    monkeypatch.setattr(node_services, "_probe",
                        lambda host, port, token: (NodeInfo.from_dict({"nodeID": str(uuid.uuid4())}), "fullAccess"))
    monkeypatch.setattr(node_services, "_check_resolved", lambda host, port: None)
    monkeypatch.setattr(Node, "save", _boom)
    monkeypatch.setattr(secrets_module, "redis_connection", _boom)
    secret_values = {"API token": token, "registry password": REGISTRY_PASSWORD, "SSH password": SSH_PASSWORD}
    for view, path, data, kwargs in cases:
        request = _post(path, data, admin)
        with pytest.raises(Forced) as raised:
            view(request, **kwargs)
        # From the view down (the first frame is this test's, which holds the secrets it sends).
        report = _report(request, (raised.type, raised.value, raised.tb.tb_next), reporter_filter)
        if isinstance(reporter_filter, _NoFilter):
            assert leaks([report], secret_values, view.__name__), f"the control sees the secret ({view.__name__})"
            continue
        assert "forced error" in report and "********" in report, view.__name__
        assert leaks([report], secret_values, view.__name__) == []


def test_error_reports_from_inside_the_sdk_hide_secrets(rich_fleet: RichFleet, monkeypatch: pytest.MonkeyPatch,
                                                         sim_fleet: Any) -> None:
    """An unexpected error inside the SDK's HTTP call, with the token and password in its frames'
    locals: FleetUI's filter (the project's DEFAULT_EXCEPTION_REPORTER_FILTER) shows none of them."""
    import requests
    from django.views.debug import get_default_exception_reporter_filter

    from fleetui.console.operations import vm_exec
    from fleetui.nodes.client import client_for

    assert isinstance(get_default_exception_reporter_filter(), SecretsExceptionReporterFilter)
    sim = sim_fleet(nodes=1, vms_per_node=1).nodes[0]
    node = rich_fleet.nodes[0]
    Node.objects.filter(pk=node.pk).update(host=sim.host, port=sim.port, api_token_enc=crypto.encrypt(sim.api_token))
    node.refresh_from_db()
    op = rich_fleet.operations["vm.exec"]
    monkeypatch.setattr(requests.adapters.HTTPAdapter, "send", _boom)
    with pytest.raises(Forced) as raised, client_for(node) as client:
        vm_exec(op, client, {"password": SSH_PASSWORD})
    report = _report(None, (raised.type, raised.value, raised.tb.tb_next), get_default_exception_reporter_filter())
    assert "forced error" in report and "ciderstack" in report
    assert leaks([report], {"API token": sim.api_token, "SSH password": SSH_PASSWORD}, "report") == []


# ---------------------------------------------------------------- rotation and unreadable credentials


def test_rotate_keys_reencrypts_every_stored_credential(rich_fleet: RichFleet, settings: Any) -> None:
    fields = encrypted_fields()
    names = {f"{model._meta.label}.{field}" for model, field in fields}
    assert {"nodes.Node.api_token_enc", "nodes.Node.paired_node_id_enc", "nodes.Node.pairing_private_key_enc",
            "access.TokenReveal.token_enc", "alerts.Webhook.url_enc"} <= names
    from django.utils import timezone

    from fleetui.access.models import TokenReveal

    TokenReveal.objects.create(operation_id=uuid.uuid4(), user=None, token_enc=crypto.encrypt("csk_revealed_1"),
                               expires_at=timezone.now())
    secrets_put("rotating-op", {"password": REGISTRY_PASSWORD})

    def plaintexts() -> dict[tuple[str, Any, str], str]:
        return {(model._meta.label, pk, field): crypto.decrypt(value)
                for model, field in fields
                for pk, value in model._default_manager.exclude(**{field: ""}).values_list("pk", field)}

    before = plaintexts()
    assert len(before) == 6  # two nodes' tokens, the manager's paired id and key, the reveal, the webhook
    old_key = settings.CREDENTIAL_KEYS[0]
    new_key = Fernet.generate_key().decode()
    settings.CREDENTIAL_KEYS = [new_key, old_key]
    out = StringIO()
    call_command("rotate_keys", stdout=out)
    text = out.getvalue()
    assert "nodes.Node.api_token_enc: 2 re-encrypted" in text
    assert "nodes.Node.pairing_private_key_enc: 1 re-encrypted" in text
    assert "access.TokenReveal.token_enc: 1 re-encrypted" in text
    assert "alerts.Webhook.url_enc: 1 re-encrypted" in text
    # Other tests leave operation secrets in the shared test Redis database: at least ours is rotated.
    in_redis = int(re.search(r"operation secrets in Redis: (\d+) re-encrypted", text).group(1))
    assert in_redis >= 1
    assert f"{len(before) + in_redis} credential(s) re-encrypted" in text

    settings.CREDENTIAL_KEYS = [new_key]  # the old key is gone: everything still reads
    assert plaintexts() == before
    assert secrets_take("rotating-op") == {"password": REGISTRY_PASSWORD}


def test_rotate_keys_reports_what_no_key_can_read(rich_fleet: RichFleet, settings: Any) -> None:
    node = rich_fleet.nodes[1]
    Node.objects.filter(pk=node.pk).update(api_token_enc=Fernet(Fernet.generate_key()).encrypt(b"csk_lost").decode())
    out = StringIO()
    with pytest.raises(CommandError, match=r"\d+ credential.*could not be decrypted.*re-enter"):
        call_command("rotate_keys", stdout=out)
    assert "nodes.Node.api_token_enc: 1 re-encrypted, 1 could not be decrypted" in out.getvalue()


def test_an_unreadable_token_asks_for_it_again_instead_of_failing(as_role: Callable[..., Client],
                                                                   rich_fleet: RichFleet, settings: Any) -> None:
    node = rich_fleet.nodes[0]
    settings.CREDENTIAL_KEYS = [Fernet.generate_key().decode()]  # the key the credentials were stored under is gone
    outcome = node_poll(node_id=node.pk, force=True)
    assert not outcome.ok
    node.refresh_from_db()
    assert "re-enter the token" in node.last_error
    admin = as_role("admin")
    for url in (f"/nodes/{node.pk}/", "/nodes/", f"/nodes/{node.pk}/edit/", f"/access/nodes/{node.pk}/", "/"):
        response = admin.get(url)
        assert response.status_code == 200, url
    assert "re-enter the token" in admin.get(f"/nodes/{node.pk}/").content.decode()
    assert "re-enter the token" in admin.get("/nodes/").content.decode()
    # An action on that node fails in the same words, not with a 500.
    running = next(vm for vm in rich_fleet.vms if vm.node_id == node.pk and vm.state == "running")
    op_response = as_role("operator").post(f"/vms/{running.pk}/action/stop/", {})
    assert op_response.status_code in (200, 302)
    op = Operation.objects.get(kind="vm.stop", vm=running, status=OperationStatus.PENDING)
    operation_run(operation_id=str(op.pk))
    op.refresh_from_db()
    assert op.status == OperationStatus.FAILED and "re-enter the token" in op.error


def test_the_scanner_reads_every_kind_of_redis_value() -> None:
    conn = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    key = f"security-scan-test:{uuid.uuid4()}"
    try:
        conn.hset(key + ":h", "field", "a-secret-1")
        conn.rpush(key + ":l", '{"body": "' + __import__("base64").b64encode(b'["a-secret-2"]').decode() + '"}')
        conn.sadd(key + ":s", "a-secret-3")
        conn.zadd(key + ":z", {"a-secret-4": 1})
        found, _ = redis_leaks(conn, {f"s{i}": f"a-secret-{i}" for i in range(1, 5)})
        assert sorted({leak.split(" ")[0] for leak in found}) == ["s1", "s2", "s3", "s4"]
    finally:
        conn.delete(key + ":h", key + ":l", key + ":s", key + ":z")
    assert expand("plain") == ["plain"]


def test_reprs_and_operation_params_never_hold_secrets(rich_fleet: RichFleet, users: dict[str, User]) -> None:
    from secdata import NODE_TOKEN

    from fleetui.access.models import TokenReveal
    from fleetui.activity.services import OperationError, operation_create
    from fleetui.nodes.client import client_for

    node = rich_fleet.nodes[0]
    with client_for(node) as client:
        texts = [repr(client), str(client)]
    texts += [repr(node), str(node), repr(rich_fleet.operations["vm.exec"])]
    reveal = TokenReveal(operation_id=uuid.uuid4(), token_enc=crypto.encrypt("csk_reveal_repr_1"))
    texts += [repr(reveal), str(reveal)]
    assert leaks(texts, {"API token": NODE_TOKEN, "revealed token": "csk_reveal_repr_1"}, "repr") == []
    for key in ("password", "ssh_password", "api_token", "private_key"):
        with pytest.raises(OperationError, match="secret"):
            operation_create(kind="vm.exec", user=users["admin"], node=node, vm=rich_fleet.vms[1],
                             params={"command": "ls", "ssh_user": "a", "timeout": 30, key: "hunter2-secret"})
    assert not Operation.objects.filter(params__icontains="hunter2").exists()
