"""`manage.py addnode --name N --host H [--port P] [--api-token T | --api-token - ] [--if-missing]`

Registers a node the way the Add node form does: the node is asked for its info with the token
first, and a failure says why in plain words (exit status 1). Without --api-token, or with
"--api-token -", the token is read from stdin (first line; prompted for without echo on a
terminal), which keeps it out of the process list and shell history.
"""

from __future__ import annotations

import getpass
import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from fleetui.nodes.models import Node
from fleetui.nodes.services import NodeError, node_register


class Command(BaseCommand):
    help = "Register a Fleet node (probes it with the API token first)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--name", required=True, help="name of the node in the dashboard")
        parser.add_argument("--host", required=True, help="IP address or host name of the node")
        parser.add_argument("--port", type=int, default=9473, help="Fleet API port (default 9473)")
        parser.add_argument(
            "--api-token", default=None,
            help='the node\'s csk_ API token; omit it or give "-" to read it from stdin',
        )
        parser.add_argument(
            "--if-missing", action="store_true",
            help="do nothing (exit 0) when a node of that name is already registered",
        )

    def _read_token(self) -> str:
        if sys.stdin.isatty():
            return getpass.getpass("API token: ")
        return sys.stdin.readline().strip()

    def handle(self, *args: Any, **options: Any) -> None:
        name = options["name"].strip()
        existing = Node.objects.filter(name__iexact=name).first()
        if existing is not None and options["if_missing"]:
            self.stdout.write(f"Node {existing.name} is already registered (id {existing.pk}); left as it is.")
            return
        token = options["api_token"]
        if token in (None, "-"):
            token = self._read_token()
        if not token:
            raise CommandError("No API token given (pass --api-token, or the token on stdin).")
        try:
            node = node_register(name=name, host=options["host"], port=options["port"], api_token=token,
                                 user=None)
        except NodeError as exc:
            raise CommandError(f"Could not register {name}: {exc.message}") from None
        access = "read-only" if node.is_read_only else "full-access"
        self.stdout.write(
            f"Registered node {node.name} (id {node.pk}) at {node.address}: {node.machine_model or 'unknown model'}, "
            f"macOS {node.os_version or '?'}, {access} token {node.api_token_prefix}…"
        )
