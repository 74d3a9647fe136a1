"""Count the rows the database really wrote: a Django execute wrapper on every connection that
adds up the rowcount of each INSERT, UPDATE and DELETE, per table.

Installed in the benchmark process (naive poll) and, through bench_celery.py, in every Celery
worker process, which adds its counts to a Redis hash after each task.
"""

from __future__ import annotations

import re
import threading
from collections import Counter
from typing import Any

from django.db import connections
from django.db.backends.signals import connection_created

_WRITE = re.compile(r'^\s*(INSERT\s+(?:OR\s+\w+\s+)?INTO|UPDATE|DELETE\s+FROM)\s+"?([\w.]+)"?', re.IGNORECASE)


class WriteCounter:
    """A Django execute wrapper; rows written, keyed "<verb> <table>" (verb: insert, update, delete)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.counts: Counter[str] = Counter()
        self.statements = 0

    def __call__(self, execute: Any, sql: str, params: Any, many: bool, context: dict[str, Any]) -> Any:
        result = execute(sql, params, many, context)
        match = _WRITE.match(sql) if isinstance(sql, str) else None
        if match:
            verb = match.group(1).split()[0].lower()
            rows = getattr(context.get("cursor"), "rowcount", -1)
            if (rows is None or rows <= 0) and not many and verb == "insert" and " RETURNING " in sql:
                # SQLite's driver reports a rowcount for INSERT ... RETURNING only once every returned
                # row has been fetched; count the VALUES groups instead (Django writes "(...), (...)").
                values = sql.split(" VALUES ", 1)[-1].split(" RETURNING ", 1)[0]
                rows = values.count("), (") + 1
            with self._lock:
                self.statements += 1
                self.counts[f"{verb} {match.group(2)}"] += max(int(rows or 0), 0)
        return result

    def take(self) -> Counter[str]:
        """The counts so far, and start again from zero."""
        with self._lock:
            counts, self.counts = self.counts, Counter()
            self.statements = 0
        return counts

    def install(self) -> None:
        """Wrap every connection: those already open in this thread and every one opened later."""

        def on_connection(sender: Any, connection: Any, **kwargs: Any) -> None:
            if self not in connection.execute_wrappers:
                connection.execute_wrappers.append(self)

        connection_created.connect(on_connection, weak=False, dispatch_uid=self._uid)
        for conn in connections.all(initialized_only=True):
            if self not in conn.execute_wrappers:
                conn.execute_wrappers.append(self)

    def uninstall(self) -> None:
        connection_created.disconnect(dispatch_uid=self._uid)
        for conn in connections.all(initialized_only=True):
            if self in conn.execute_wrappers:
                conn.execute_wrappers.remove(self)

    @property
    def _uid(self) -> str:
        return f"bench-writes-{id(self)}"


def total(counts: Counter[str] | dict[str, int], *, prefix: str = "") -> int:
    return sum(v for k, v in counts.items() if k.startswith(prefix))


def by_table(counts: Counter[str] | dict[str, int]) -> str:
    """'vms_vm 100, nodes_node 500' style summary, largest first, without zeros."""
    tables: Counter[str] = Counter()
    for key, value in counts.items():
        tables[key.split(" ", 1)[1]] += value
    parts = [f"{table.split('_', 1)[-1]} {value}" for table, value in tables.most_common() if value]
    return ", ".join(parts) if parts else "none"
