"""Webhook endpoints and their delivery log (ADMIN and OWNER)."""

from __future__ import annotations

from domain.models import WebhookDelivery, WebhookEndpoint
from domain.principal import Principal
from domain.reads.access import require_admin_read
from domain.reads.cursors import decode_cursor
from domain.reads.pages import Edge, Page, check_first


async def list_webhook_endpoints(*, actor: Principal) -> list[WebhookEndpoint]:
    """The account's endpoints (deleted ones are gone), oldest first."""
    require_admin_read(actor)
    return await WebhookEndpoint.filter(
        account_id=actor.account_id, deleted_at__isnull=True
    ).order_by("id")


async def list_webhook_deliveries(
    *, actor: Principal, endpoint: WebhookEndpoint, first: int, after: str | None
) -> Page[WebhookDelivery]:
    """The endpoint's deliveries, newest first, each with its event loaded."""
    require_admin_read(actor)
    check_first(first)
    kind = f"webhook-deliveries:{endpoint.id}"
    query = WebhookDelivery.filter(endpoint_id=endpoint.id, endpoint__account_id=actor.account_id)
    total_count = await query.count()
    if after is not None:
        query = query.filter(id__lt=decode_cursor(after, kind=kind)[1])
    rows = await query.order_by("-id").limit(first + 1).select_related("event")
    edges = [Edge(row, (kind, None, row.id)) for row in rows[:first]]
    return Page(edges=edges, has_next_page=len(rows) > first, total_count=total_count)
