"""A Prometheus collector that reads the database at scrape time.

Workers write what they see into the database; the web process only reads it, so every figure here
comes from rows (never from counters in this process, which would miss what workers did). A scrape
costs a fixed number of queries, however large the fleet (tests/metrics pins it):
  1. the nodes (health, poll timings and failures, CPU/memory/disk),
  2. VMs grouped by node and state,
  3. node tasks grouped by node and status,
  4. Operations grouped by kind and status,
  5. open alert incidents grouped by kind.
"""

from __future__ import annotations

from collections.abc import Iterator

from django.db.models import Count
from django.utils import timezone
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from fleetui.activity.models import FINISHED_STATUSES, Operation
from fleetui.images.models import NodeTask, TaskStatus
from fleetui.nodes.models import Health, Node
from fleetui.vms.models import VM, VMState

NODE_FIELDS = (
    "id", "name", "last_poll_at", "last_poll_duration_ms", "last_success_at", "last_error_at",
    "consecutive_failures", "backoff_until", "cpu_usage_percent", "memory_used_gb", "memory_total_gb",
    "disk_used_gb", "disk_total_gb",
)
NODE_LABELS = ["node", "node_id"]


def _gauge(name: str, doc: str, labels: list[str], unit: str = "") -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, labels=labels, unit=unit)


class FleetCollector(Collector):
    def collect(self) -> Iterator[Metric]:
        now = timezone.now()
        nodes = list(Node.objects.only(*NODE_FIELDS).order_by("pk"))  # query 1
        names = {node.pk: node.name for node in nodes}

        up = _gauge("fleetui_node_up", "1 when the node's last poll succeeded within 3 poll intervals.", NODE_LABELS)
        health = _gauge("fleetui_node_health", "The node's health (one series per state, 1 for the current one).",
                        [*NODE_LABELS, "health"])
        poll_age = _gauge("fleetui_node_last_poll_age_seconds", "Seconds since the node was last polled.",
                          NODE_LABELS)
        success_age = _gauge("fleetui_node_last_success_age_seconds",
                             "Seconds since the node last answered a poll.", NODE_LABELS)
        duration = _gauge("fleetui_node_last_poll_duration_seconds", "How long the node's last poll took.",
                          NODE_LABELS)
        failures = _gauge("fleetui_node_poll_consecutive_failures", "Polls of the node that failed in a row.",
                          NODE_LABELS)
        backoff = _gauge("fleetui_node_backed_off", "1 while polls of the node are backed off after failures.",
                         NODE_LABELS)
        cpu = _gauge("fleetui_node_cpu_usage_percent", "CPU usage the node last reported.", NODE_LABELS)
        memory_used = _gauge("fleetui_node_memory_used_gigabytes", "Memory in use the node last reported.",
                             NODE_LABELS)
        memory_total = _gauge("fleetui_node_memory_total_gigabytes", "Memory the node last reported.", NODE_LABELS)
        disk_used = _gauge("fleetui_node_disk_used_gigabytes", "Disk in use the node last reported.", NODE_LABELS)
        disk_total = _gauge("fleetui_node_disk_total_gigabytes", "Disk the node last reported.", NODE_LABELS)
        for node in nodes:
            labels = [node.name, str(node.pk)]
            state = node.health(now)
            up.add_metric(labels, 1.0 if state == Health.ONLINE else 0.0)
            for value in Health.values:
                health.add_metric([*labels, value], 1.0 if state == value else 0.0)
            if node.last_poll_at is not None:
                poll_age.add_metric(labels, max(0.0, (now - node.last_poll_at).total_seconds()))
            if node.last_success_at is not None:
                success_age.add_metric(labels, max(0.0, (now - node.last_success_at).total_seconds()))
            if node.last_poll_duration_ms is not None:
                duration.add_metric(labels, node.last_poll_duration_ms / 1000.0)
            failures.add_metric(labels, float(node.consecutive_failures))
            backoff.add_metric(labels, 1.0 if node.backoff_until is not None and node.backoff_until > now else 0.0)
            for family, value in ((cpu, node.cpu_usage_percent), (memory_used, node.memory_used_gb),
                                  (memory_total, node.memory_total_gb), (disk_used, node.disk_used_gb),
                                  (disk_total, node.disk_total_gb)):
                if value is not None:
                    family.add_metric(labels, float(value))
        yield from (up, health, poll_age, success_age, duration, failures, backoff, cpu, memory_used,
                    memory_total, disk_used, disk_total)

        vms = _gauge("fleetui_vms", "VMs the node reports, by state (VMs gone from the node left out).",
                     [*NODE_LABELS, "state"])
        vm_counts = {
            (row["node_id"], row["state"]): row["n"]
            for row in VM.objects.filter(gone_at__isnull=True).order_by()
            .values("node_id", "state").annotate(n=Count("id"))  # query 2
        }
        tasks = _gauge("fleetui_node_tasks", "Node-side tasks (pulls, downloads, pushes...), by status.",
                       [*NODE_LABELS, "status"])
        task_counts = {
            (row["node_id"], row["status"]): row["n"]
            for row in NodeTask.objects.order_by().values("node_id", "status").annotate(n=Count("id"))  # query 3
        }
        for node_id, name in names.items():
            labels = [name, str(node_id)]
            for state in VMState.values:
                vms.add_metric([*labels, state], float(vm_counts.get((node_id, state), 0)))
            for status in TaskStatus.values:
                tasks.add_metric([*labels, status], float(task_counts.get((node_id, status), 0)))
        yield vms
        yield tasks

        finished = CounterMetricFamily("fleetui_operations", "Operations finished, by kind and outcome.",
                                       labels=["kind", "outcome"])
        in_flight = _gauge("fleetui_operations_in_flight", "Operations waiting or running, by kind and status.",
                           ["kind", "status"])
        for row in Operation.objects.order_by().values("kind", "status").annotate(n=Count("id")):  # query 4
            if row["status"] in FINISHED_STATUSES:
                finished.add_metric([row["kind"], row["status"]], float(row["n"]))
            else:
                in_flight.add_metric([row["kind"], row["status"]], float(row["n"]))
        yield finished
        yield in_flight

        yield from _incident_metrics()


def _incident_metrics() -> Iterator[Metric]:
    from fleetui.alerts.models import Incident, IncidentKind

    incidents = _gauge("fleetui_alert_incidents_open", "Alert incidents open now, by kind.", ["kind"])
    counts = dict(
        Incident.objects.filter(resolved_at__isnull=True).order_by().values_list("kind")
        .annotate(n=Count("id"))  # query 5
    )
    for kind in IncidentKind.values:
        incidents.add_metric([kind], float(counts.get(kind, 0)))
    yield incidents


registry = CollectorRegistry(auto_describe=False)
registry.register(FleetCollector())
