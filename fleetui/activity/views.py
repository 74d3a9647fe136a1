"""An operation's live status. (The activity log lives in fleetui.fleet.)"""

from __future__ import annotations

from uuid import UUID

from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_GET

from fleetui.activity import selectors
from fleetui.core.htmx import render_page_or_partial, with_client_event
from fleetui.core.roles import viewer_required


@require_GET
@viewer_required
def operation_detail(request: HttpRequest, operation_id: UUID) -> HttpResponse:
    """Pending/running until the outcome is known; then the result, and HTMX polling stops (286).

    When it settles the client hears `vm-changed` and `tasks-changed`, so the VM's state and
    the task lists refresh at once instead of at their next poll.
    """
    op = selectors.operation_get(operation_id)
    response = render_page_or_partial(
        request, "activity/operation_detail.html", {"op": op}, "activity/_operation.html", settled=op.is_finished
    )
    if op.is_finished and request.htmx:
        with_client_event(response, "vm-changed", {"vm": op.vm_id})
        with_client_event(response, "tasks-changed", {"node": op.node_id})
    return response
