"""Reads for operations."""

from __future__ import annotations

from uuid import UUID

from django.shortcuts import get_object_or_404

from fleetui.activity.models import Operation


def operation_get(operation_id: UUID | str) -> Operation:
    return get_object_or_404(Operation.objects.select_related("node", "vm"), pk=operation_id)
