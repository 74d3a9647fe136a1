"""`manage.py poll [--node NAME ...] [--sync] [--timeout S]`: poll nodes now and wait for the outcome.

By default the polls are queued for the Celery workers (queue "polls") and the command waits until
each node's last_poll_at moves past the moment it asked, so it also checks the workers are alive.
--sync polls in this process instead (no worker needed). Prints one line per node; the exit status
is 1 when a poll failed or did not finish in time.
"""

from __future__ import annotations

import time
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from fleetui.nodes.models import Node
from fleetui.nodes.services import node_poll


class Command(BaseCommand):
    help = "Poll nodes now (through the workers, or in-process with --sync) and print the outcome."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--node", action="append", default=[], metavar="NAME",
                            help="poll only this node (repeatable); default: every node")
        parser.add_argument("--sync", action="store_true", help="poll in this process, without the workers")
        parser.add_argument("--timeout", type=float, default=None,
                            help="seconds to wait for the workers (default: a poll's worst case)")

    def handle(self, *args: Any, **options: Any) -> None:
        nodes = list(Node.objects.order_by("name"))
        if options["node"]:
            wanted = {n.lower() for n in options["node"]}
            nodes = [n for n in nodes if n.name.lower() in wanted]
            missing = wanted - {n.name.lower() for n in nodes}
            if missing:
                raise CommandError(f"No node named {', '.join(sorted(missing))}.")
        if not nodes:
            self.stdout.write("No nodes are registered.")
            return
        failed = self._sync(nodes) if options["sync"] else self._through_workers(nodes, options["timeout"])
        if failed:
            raise CommandError(f"{failed} of {len(nodes)} poll(s) failed or did not finish.")

    def _line(self, node: Node, note: str = "") -> str:
        vms = node.vms.filter(gone_at__isnull=True)
        running = vms.filter(state="running").count()
        if node.last_error and (node.last_error_at and (not node.last_success_at
                                                        or node.last_error_at >= node.last_success_at)):
            status = f"FAILED: {node.last_error}"
        else:
            status = f"ok in {node.last_poll_duration_ms or 0} ms, {vms.count()} VMs ({running} running)"
        return f"{node.name:<24} {node.health():<8} {status}{note}"

    def _sync(self, nodes: list[Node]) -> int:
        failed = 0
        for node in nodes:
            outcome = node_poll(node_id=node.pk, force=True)
            node.refresh_from_db()
            if outcome.skipped:
                failed += 1
                self.stdout.write(f"{node.name:<24} skipped: {outcome.skipped}")
                continue
            failed += 0 if outcome.ok else 1
            self.stdout.write(self._line(node, f", {outcome.rows_written} rows written" if outcome.ok else ""))
        return failed

    def _through_workers(self, nodes: list[Node], timeout: float | None) -> int:
        from fleetui.nodes.tasks import poll_node

        asked = timezone.now()
        try:
            for node in nodes:
                poll_node.apply_async(args=[node.pk], kwargs={"force": True}, retry=False)
        except Exception as exc:  # noqa: BLE001 - kombu raises several kinds of connection errors
            raise CommandError(
                f"Could not queue the polls: the task queue (Redis at {settings.CELERY_BROKER_URL.split('@')[-1]}) "
                f"is unreachable ({type(exc).__name__}). Try --sync."
            ) from None
        limit = timeout or float(settings.NODE_CONNECT_TIMEOUT + settings.NODE_READ_TIMEOUT) * 3 + 10
        deadline = time.monotonic() + limit
        pending = {node.pk: node for node in nodes}
        failed = 0
        while pending and time.monotonic() < deadline:
            done = Node.objects.filter(pk__in=list(pending), last_poll_at__gt=asked)
            for node in done:
                del pending[node.pk]
                ok = node.last_success_at is not None and node.last_success_at >= (node.last_poll_at or asked)
                failed += 0 if ok else 1
                self.stdout.write(self._line(node))
            if pending:
                time.sleep(0.1)
        for node in pending.values():
            failed += 1
            self.stdout.write(
                f"{node.name:<24} no answer from the workers within {limit:g} s "
                "(is a Celery worker consuming the \"polls\" queue? try --sync)"
            )
        return failed
