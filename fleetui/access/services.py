"""Writes of the access app: pairing credentials, the cached token list, one-time token reveals.

Every credential is stored encrypted (fleetui.core.crypto); nothing here logs a secret.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import timedelta

from ciderstack import APITokenSummary
from ciderstack.types import enum_value
from django.db import transaction
from django.utils import timezone

from fleetui.access.models import NodeAPIToken, NodeTokenList, TokenReveal
from fleetui.core import crypto
from fleetui.nodes.models import Node

# How long a generated token waits for the page that shows it once. After that it is purged
# unseen; the token still works on the node and can be revoked from the list.
REVEAL_TTL = timedelta(minutes=15)


def pairing_store(*, node: Node, caller_node_id: str, private_key_hex: str) -> None:
    """Keep what pairing gave us: our trusted callerNodeID and our P-256 private key, encrypted."""
    Node.objects.filter(pk=node.pk).update(
        paired_node_id_enc=crypto.encrypt(caller_node_id),
        pairing_private_key_enc=crypto.encrypt(private_key_hex),
        paired_at=timezone.now(),
    )
    node.refresh_from_db(fields=["paired_node_id_enc", "pairing_private_key_enc", "paired_at"])


def pairing_clear(*, node: Node) -> None:
    """Forget the pairing, and the token list it let us read (it can no longer be refreshed)."""
    with transaction.atomic():
        Node.objects.filter(pk=node.pk).update(paired_node_id_enc="", pairing_private_key_enc="", paired_at=None)
        NodeAPIToken.objects.filter(node=node).delete()
        NodeTokenList.objects.filter(node=node).delete()
    node.refresh_from_db(fields=["paired_node_id_enc", "pairing_private_key_enc", "paired_at"])


def token_list_store(*, node: Node, summaries: Iterable[APITokenSummary]) -> int:
    """Replace the cached token list of `node` with what it just reported; returns the count."""
    now = timezone.now()
    seen: list[str] = []
    with transaction.atomic():
        for summary in summaries:
            if not summary.id:
                continue
            seen.append(summary.id)
            NodeAPIToken.objects.update_or_create(
                node=node,
                remote_id=summary.id,
                defaults={
                    "name": summary.name[:255],
                    "token_prefix": summary.token_prefix[:32],
                    "permission": enum_value(summary.permissions)[:16],
                    "created_at": summary.created_at,
                    "last_used_at": summary.last_used_at,
                    "seen_at": now,
                },
            )
        NodeAPIToken.objects.filter(node=node).exclude(remote_id__in=seen).delete()
        NodeTokenList.objects.update_or_create(
            node=node, defaults={"fetched_at": now, "last_error": "", "last_error_at": None}
        )
    return len(seen)


def token_list_error(*, node: Node, message: str) -> None:
    """Record that reading the list failed; the cached list stays, marked with its age."""
    NodeTokenList.objects.update_or_create(
        node=node, defaults={"last_error": message[:500], "last_error_at": timezone.now()}
    )


def token_adopt(*, node: Node, token: str, permission: str) -> None:
    """Make a freshly generated token the dashboard's own credential for `node`."""
    Node.objects.filter(pk=node.pk).update(
        api_token_enc=crypto.encrypt(token),
        api_token_prefix=token[:12],
        token_permission=permission if permission in ("readOnly", "fullAccess") else "",
    )
    node.refresh_from_db(fields=["api_token_enc", "api_token_prefix", "token_permission"])


def token_reveal_put(*, operation_id: uuid.UUID, user_id: int | None, token: str) -> None:
    TokenReveal.objects.filter(expires_at__lt=timezone.now()).delete()
    TokenReveal.objects.update_or_create(
        operation_id=operation_id,
        defaults={"user_id": user_id, "token_enc": crypto.encrypt(token), "expires_at": timezone.now() + REVEAL_TTL},
    )


def token_reveal_pop(*, operation_id: uuid.UUID, user_id: int) -> str | None:
    """The generated token, once: the row is deleted before the token is returned.

    Of two concurrent requests only the one whose DELETE removed the row gets the token. Only
    the user who asked for the token may see it. None when already shown, expired or not theirs.
    """
    TokenReveal.objects.filter(expires_at__lt=timezone.now()).delete()
    reveal = TokenReveal.objects.filter(
        operation_id=operation_id, user_id=user_id, expires_at__gte=timezone.now()
    ).first()
    if reveal is None:
        return None
    deleted, _ = TokenReveal.objects.filter(pk=reveal.pk).delete()
    if not deleted:
        return None
    try:
        return crypto.decrypt(reveal.token_enc)
    except crypto.CredentialUnreadable:
        return None


def token_reveal_pending(*, operation_id: uuid.UUID) -> bool:
    return TokenReveal.objects.filter(operation_id=operation_id, expires_at__gte=timezone.now()).exists()
