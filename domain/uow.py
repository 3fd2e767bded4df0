"""One use case, one transaction: the change, its audit event and its emails.

Outbox rows commit with the change; only after the commit are their ids
handed to the dispatcher (Dramatiq, or the embedded runner). If that hand-off
fails, the relay finds the rows later, so nothing is lost.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.transactions import in_transaction

from domain import auth_cache
from domain.emails import EmailPayload
from domain.enums import AuditAction, WebhookEventType
from domain.models import AuditEvent, OutboxMessage
from domain.principal import Principal
from domain.webhooks import fan_out, open_endpoints

log = logging.getLogger(__name__)

OutboxDispatcher = Callable[[Sequence[int]], Awaitable[None]]
_dispatcher: OutboxDispatcher | None = None


def set_outbox_dispatcher(dispatcher: OutboxDispatcher | None) -> None:
    """Called once by the process that can deliver (API server, worker)."""
    global _dispatcher  # noqa: PLW0603 - wiring done at process start
    _dispatcher = dispatcher


@dataclass
class UnitOfWork:
    connection: BaseDBAsyncClient
    now: datetime
    outbox_ids: list[int] = field(default_factory=list)

    async def audit(
        self,
        *,
        actor: Principal,
        action: AuditAction,
        target_user_id: int | None = None,
        data: Mapping[str, Any] | None = None,
    ) -> None:
        await self._event(actor, action, target_user_id, data).save(using_db=self.connection)

    async def audit_each(
        self,
        *,
        actor: Principal,
        action: AuditAction,
        entries: Sequence[tuple[int | None, Mapping[str, Any] | None]],
    ) -> None:
        """One event per (target user, data), in one statement."""
        await AuditEvent.bulk_create(
            [self._event(actor, action, target, data) for target, data in entries],
            using_db=self.connection,
        )

    def _event(
        self,
        actor: Principal,
        action: AuditAction,
        target_user_id: int | None,
        data: Mapping[str, Any] | None,
    ) -> AuditEvent:
        return AuditEvent(
            account_id=actor.account_id,
            action=action,
            actor_kind=actor.kind,
            actor_user_id=actor.acting_user_id,
            actor_token_id=actor.acting_token_id,
            target_user_id=target_user_id,
            data=dict(data) if data is not None else None,
            created_at=self.now,
        )

    async def email(self, *, account_id: int | None, payload: EmailPayload) -> None:
        message = await OutboxMessage.create(
            account_id=account_id,
            kind=payload.email_kind,
            payload=payload.to_payload(),
            created_at=self.now,
            available_at=self.now,
            using_db=self.connection,
        )
        self.outbox_ids.append(message.id)

    async def webhook_each(
        self,
        *,
        account_id: int,
        event_type: WebhookEventType,
        datas: Sequence[Mapping[str, Any]],
    ) -> None:
        """One event per item of `datas`, the account's endpoints read once."""
        endpoints = await open_endpoints(account_id, self.connection)
        if not endpoints:
            return
        for data in datas:
            self.outbox_ids.extend(
                await fan_out(
                    connection=self.connection,
                    now=self.now,
                    account_id=account_id,
                    event_type=event_type,
                    data=data,
                    endpoints=endpoints,
                )
            )

    async def webhook(
        self, *, account_id: int, event_type: WebhookEventType, data: Mapping[str, Any]
    ) -> None:
        """The event for the account's endpoints that want it (ids as strings,
        as in GraphQL; `accountId` is added)."""
        await self.webhook_each(account_id=account_id, event_type=event_type, datas=[data])


@asynccontextmanager
async def unit_of_work(now: datetime) -> AsyncIterator[UnitOfWork]:
    """A transaction; a DomainError raised inside rolls everything back."""
    async with in_transaction() as connection:
        work = UnitOfWork(connection=connection, now=now)
        yield work
    # Whatever it changed, this process's cached principals are not served
    # again unread (other processes hear it through their change feed).
    auth_cache.changed()
    if work.outbox_ids:
        await dispatch(work.outbox_ids)


async def dispatch(outbox_ids: Sequence[int]) -> None:
    if _dispatcher is None:
        return
    try:
        await _dispatcher(outbox_ids)
    except Exception:
        # The rows are committed; the relay will send them.
        log.warning("outbox hand-off failed; the relay will retry", exc_info=True)
