"""The renewal notice: RENEWAL_NOTICE_DAYS before a period ends, the owner
hears what the renewal will be (seats, amount, a scheduled reduction and the
users it would release).

Once per period, under any number of concurrent runs: the notice is a row
per (account, period index) behind a unique index, claimed for a batch of
accounts by one INSERT ... SELECT ... ON CONFLICT DO NOTHING RETURNING; only
the accounts a run inserted get an email, in the same transaction.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from domain import config
from domain.clock import Clock
from domain.emails import RenewalNoticePayload
from domain.models import Account
from domain.rules.renewal import next_period, price_renewal
from domain.rules.seats import choose_released, licenses_over
from domain.services.billing import release_candidates
from domain.sql import Statement
from domain.uow import UnitOfWork, unit_of_work

BATCH_SIZE = 500


async def send_renewal_notices(*, clock: Clock, batch_size: int = BATCH_SIZE) -> int:
    """Claim and email the notices due as of now; returns how many were sent."""
    days = config.current().renewal_notice_days
    if days == 0:
        return 0
    now = clock.now()
    sent = 0
    while True:
        async with unit_of_work(now) as work:
            claimed = await _claim(
                work, now=now, horizon=now + timedelta(days=days), limit=batch_size
            )
            for account_id in claimed:
                await work.email(account_id=account_id, payload=await _notice(work, account_id))
        sent += len(claimed)
        if len(claimed) < batch_size:
            return sent


async def _claim(work: UnitOfWork, *, now: datetime, horizon: datetime, limit: int) -> list[int]:
    """Up to `limit` accounts whose period ends within the horizon and that
    have no notice for it yet, now marked noticed."""
    sql = Statement(work.connection)
    created = sql.param(now)
    after = sql.param(now)
    before = sql.param(horizon)
    rows = await sql.fetch(
        "INSERT INTO renewal_notices (account_id, period_index, created_at) "  # noqa: S608
        f"SELECT a.id, a.period_index, {created} FROM accounts a "
        f"WHERE a.current_period_end > {after} AND a.current_period_end <= {before} "
        "AND NOT EXISTS (SELECT 1 FROM renewal_notices r "
        "WHERE r.account_id = a.id AND r.period_index = a.period_index) "
        f"ORDER BY a.id LIMIT {int(limit)} "
        "ON CONFLICT (account_id, period_index) DO NOTHING RETURNING account_id"
    )
    return sorted(int(row["account_id"]) for row in rows)


async def _notice(work: UnitOfWork, account_id: int) -> RenewalNoticePayload:
    account = await Account.get(id=account_id, using_db=work.connection)
    period = next_period(account.billing_anchor, account.billing_interval, account.period_index)
    seats = account.scheduled_total if account.scheduled_total is not None else account.seats_total
    renewal = price_renewal(period, seats_total=seats, seat_price_cents=account.seat_price_cents)
    released: list[int] = []
    surplus = licenses_over(seats, account.seats_in_use)
    if account.scheduled_total is not None and surplus:
        released = choose_released(await release_candidates(work, account_id), surplus)
    return RenewalNoticePayload(
        account_id=account_id,
        period_index=account.period_index,
        period_end=account.current_period_end,
        seats=renewal.quantity,
        amount_cents=renewal.amount_cents,
        currency=account.currency,
        reduced_from=account.seats_total if account.scheduled_total is not None else None,
        released_user_ids=tuple(released),
    )
