"""The account's records, newest first: charges, the audit log, API tokens."""

from __future__ import annotations

from typing import TypeVar

from domain.models import ApiToken, AuditEvent, Charge
from domain.principal import Principal
from domain.reads.access import require_admin_read
from domain.reads.cursors import decode_cursor
from domain.reads.pages import Edge, Page, check_first

_Row = TypeVar("_Row", Charge, AuditEvent)


async def list_charges(*, actor: Principal, first: int, after: str | None) -> Page[Charge]:
    return await _newest_first(Charge, "charges", actor=actor, first=first, after=after)


async def list_audit_events(*, actor: Principal, first: int, after: str | None) -> Page[AuditEvent]:
    return await _newest_first(AuditEvent, "audit", actor=actor, first=first, after=after)


async def _newest_first(
    model: type[_Row], kind: str, *, actor: Principal, first: int, after: str | None
) -> Page[_Row]:
    """A counted page of the account's rows, keyset on id, newest first."""
    require_admin_read(actor)
    check_first(first)
    query = model.filter(account_id=actor.account_id)
    total_count = await query.count()
    if after is not None:
        query = query.filter(id__lt=decode_cursor(after, kind=kind)[1])
    rows = await query.order_by("-id").limit(first + 1)
    edges = [Edge(row, (kind, None, row.id)) for row in rows[:first]]
    return Page(edges=edges, has_next_page=len(rows) > first, total_count=total_count)


async def list_api_tokens(*, actor: Principal) -> list[ApiToken]:
    """Every API token of the account, revoked ones included, newest first."""
    require_admin_read(actor)
    return await ApiToken.filter(account_id=actor.account_id).order_by("-id")
