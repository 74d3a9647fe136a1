"""`manage.py rotate_keys`: re-encrypt every stored credential under the first (newest) key.

To rotate: put a new Fernet key first in FLEETUI_CREDENTIAL_KEYS (keep the old ones after it),
restart, run this, then drop the old keys. Every `*_enc` field of every FleetUI model is covered
(found by name, so fields other apps add later are too), plus the short-lived operation secrets
waiting in Redis. A credential no key can decrypt is left as it is and counted: the node pages ask
an admin to re-enter that token.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from fleetui.core import crypto
from fleetui.core.security import encrypted_fields


class Command(BaseCommand):
    help = "Re-encrypt every stored credential under the first key of FLEETUI_CREDENTIAL_KEYS."

    def handle(self, *args: Any, **options: Any) -> None:
        total = unreadable = 0
        for model, field in encrypted_fields():
            done = failed = 0
            manager = model._default_manager
            with transaction.atomic():
                rows = list(manager.select_for_update().exclude(**{field: ""}).values_list("pk", field))
                for pk, value in rows:
                    try:
                        rotated = crypto.rotate(value)
                    except crypto.CredentialUnreadable:
                        failed += 1
                        continue
                    # Conditional on the old value, so a credential changed meanwhile is not overwritten.
                    done += manager.filter(pk=pk, **{field: value}).update(**{field: rotated})
            total += done
            unreadable += failed
            line = f"{model._meta.label}.{field}: {done} re-encrypted"
            if failed:
                line += f", {failed} could not be decrypted with any configured key"
            self.stdout.write(line)

        done, failed = self._rotate_operation_secrets()
        total += done
        unreadable += failed
        suffix = f", {failed} unreadable" if failed else ""
        self.stdout.write(f"operation secrets in Redis: {done} re-encrypted{suffix}")

        self.stdout.write(f"{total} credential(s) re-encrypted under the first key.")
        if unreadable:
            raise CommandError(
                f"{unreadable} credential(s) could not be decrypted with any configured key and were left as they "
                "are: re-enter those nodes' tokens (their pages say which), or put the old key back."
            )

    def _rotate_operation_secrets(self) -> tuple[int, int]:
        import redis

        from fleetui.nodes.locks import KEY_PREFIX, redis_connection

        done = failed = 0
        try:
            conn = redis_connection()
            for key in conn.scan_iter(match=f"{KEY_PREFIX}:op-secrets:*", count=500):
                value = conn.get(key)
                if value is None:
                    continue
                try:
                    rotated = crypto.rotate(value.decode())
                except crypto.CredentialUnreadable:
                    failed += 1
                    continue
                # KEEPTTL: they stay as short-lived as they were.
                if conn.set(key, rotated, keepttl=True, xx=True):
                    done += 1
        except redis.RedisError as exc:
            self.stderr.write(f"Redis cannot be reached ({type(exc).__name__}); operation secrets were not rotated "
                              "(they expire within minutes anyway).")
        return done, failed
