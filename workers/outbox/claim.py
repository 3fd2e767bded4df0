"""Claiming rows for delivery: a conditional update that takes a lease.

A row is claimable while it is neither sent nor failed and its
`available_at` has come. The claim pushes `available_at` one lease ahead,
counts the attempt and consumes the hand-off (`enqueued_at`): if its sender
dies, the relay takes the row as soon as the lease has passed.
"""

from __future__ import annotations

from datetime import datetime
from functools import cache

from tortoise import connections
from tortoise.expressions import F, Q
from tortoise.transactions import in_transaction

from domain.models import OutboxMessage
from domain.sql import Statement, is_postgres
from workers.outbox.policy import DeliveryPolicy


async def claim_one(
    message_id: int, now: datetime, policy: DeliveryPolicy
) -> tuple[bool, OutboxMessage | None]:
    """(claimed, row): the row as claimed, or as found when it was not due
    (None when it does not exist)."""
    # One statement claims the row and reads it back (UPDATE ... RETURNING,
    # both backends): a write, atomic on its own, instead of a transaction
    # of an UPDATE and a SELECT (four round trips). Only a row that was not
    # claimed is read again, to tell why.
    sql = Statement(connections.get("default"))
    rows = await sql.fetch(
        f"UPDATE outbox_messages SET available_at = {sql.param(now + policy.lease)}, "  # noqa: S608
        "attempts = attempts + 1, enqueued_at = NULL "
        f"WHERE id = {sql.param(message_id)} AND sent_at IS NULL AND failed_at IS NULL "
        f"AND available_at <= {sql.param(now)} "
        f"RETURNING {_outbox_columns()}"
    )
    if rows:
        return True, OutboxMessage._init_from_db(**rows[0])
    return False, await OutboxMessage.filter(id=message_id).first()


@cache
def _outbox_columns() -> str:
    # Read once Tortoise is initialised (foreign-key columns are known only then).
    columns = OutboxMessage._meta.db_fields
    assert "account_id" in columns, "Tortoise is not initialised"
    return ", ".join(sorted(columns))


async def claim_due(limit: int, now: datetime, policy: DeliveryPolicy) -> list[OutboxMessage]:
    """Claim up to `limit` due rows, oldest first; returns them as claimed."""
    lease_until = now + policy.lease
    due = Q(sent_at__isnull=True, failed_at__isnull=True, available_at__lte=now)
    async with in_transaction() as connection:
        if is_postgres(connection):
            # Two claimers skip each other's rows instead of waiting for them.
            rows = (
                await OutboxMessage.filter(due)
                .order_by("available_at", "id")
                .limit(limit)
                .select_for_update(skip_locked=True)
                .using_db(connection)
            )
            if rows:
                await (
                    OutboxMessage.filter(id__in=[row.id for row in rows])
                    .using_db(connection)
                    .update(available_at=lease_until, attempts=F("attempts") + 1, enqueued_at=None)
                )
            claimed = rows
        else:
            # SQLite: one conditional UPDATE per row (the transaction holds
            # the write lock, but a row claimed meanwhile must not count).
            candidates = (
                await OutboxMessage.filter(due)
                .order_by("available_at", "id")
                .limit(limit)
                .using_db(connection)
            )
            claimed = []
            for row in candidates:
                won = (
                    await OutboxMessage.filter(Q(id=row.id) & due)
                    .using_db(connection)
                    .update(available_at=lease_until, attempts=F("attempts") + 1, enqueued_at=None)
                )
                if won == 1:
                    claimed.append(row)
    for row in claimed:
        row.attempts += 1
        row.available_at = lease_until
        row.enqueued_at = None
    return claimed
