"""Several workers checking the same node at once record one incident and queue one alert: the
incident's unique key decides, not the order the checks run in."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from alertdata import age_last_success, make_webhook
from django.db import connection

from fleetui.alerts.models import Delivery, Incident
from fleetui.alerts.services import alerts_node_check
from fleetui.nodes.services import node_poll

pytestmark = pytest.mark.django_db(transaction=True)


def test_concurrent_checks_record_one_incident_and_one_alert(sim_fleet: Callable[..., Any],
                                                             register_sim: Callable[..., Any],
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    # The four threads below must be the only checkers: the poll's own hook, and the poll that
    # registration queues, would have the session's Celery worker (started by an earlier test, if
    # any) check the node first.
    monkeypatch.setattr("fleetui.nodes.services.alerts_evaluate_node", lambda node_id: None)
    monkeypatch.setattr("fleetui.nodes.services._enqueue_poll", lambda node_id: None)
    fleet = sim_fleet(nodes=1, vms_per_node=0)
    node = register_sim(fleet.nodes[0])
    make_webhook("http://127.0.0.1:9/never-sent")
    fleet.nodes[0].set_faults(mode="down")
    node_poll(node_id=node.pk, force=True)
    age_last_success(node)
    results: list[dict] = []
    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def check() -> None:
        try:
            start.wait()
            results.append(alerts_node_check(node_id=node.pk))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=check) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    assert sorted(r["offline"] for r in results) == [0, 0, 0, 1]
    assert Incident.objects.count() == 1
    assert Delivery.objects.count() == 1
