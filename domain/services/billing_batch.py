"""The period-end job's set-based path: plain renewals of a whole batch at once.

PostgreSQL only (arrays). An account fits when one period has ended (the
next one not yet) and no licence has to be released: no scheduled
reduction, or one the licences in use fit in. For those accounts this makes
the same changes as the per-account path of `billing` (the conditional roll
first, the reduction with its SEAT_REDUCTION_APPLIED event, the RENEWAL
charge, the PERIOD_RENEWED event) with a few statements in ONE transaction
instead of about ten per account: the per-statement round trips were the
job's cost. What it does not close (another runner did, the state changed,
an overdue invitation to expire first, other backends, any error) goes the
per-account way, which reads its state again, so nothing is lost or done
twice.

The statements interpolate nothing but `Statement.param` placeholders
(hence the S608 waivers); every value travels as a parameter.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from domain.enums import (
    ActorKind,
    AuditAction,
    BillingInterval,
    ChargeKind,
    InvitationKind,
    InvitationStatus,
    WebhookEventType,
)
from domain.models import Charge
from domain.rules.renewal import (
    NextPeriod,
    Renewal,
    next_period,
    price_renewal,
    renewal_audit_data,
)
from domain.sql import Statement, is_postgres
from domain.uow import UnitOfWork, unit_of_work
from domain.webhooks import renewal_event_data, seat_event_data

log = logging.getLogger(__name__)

# id, period_index, billing_anchor, billing_interval, scheduled_total, seats_in_use
DueAccount = tuple[int, int, datetime, str, int | None, int]


@dataclass(frozen=True, slots=True)
class _Plain:
    account_id: int
    closing_index: int
    period: NextPeriod
    reduce_to: int | None  # the scheduled total, applied now


async def renew_batch(batch: list[DueAccount], now: datetime) -> set[int]:
    """Close the ended period of every account of the batch that fits; return those closed."""
    if not is_postgres():
        return set()
    plain: list[_Plain] = []
    for account_id, index, anchor, interval, scheduled_total, in_use in batch:
        if scheduled_total is not None and scheduled_total < in_use:
            continue  # licences to release: the per-account way
        period = next_period(anchor, BillingInterval(interval), index)
        if period.end > now:  # exactly one period to close
            plain.append(_Plain(account_id, index, period, scheduled_total))
    if not plain:
        return set()
    try:
        async with unit_of_work(now) as work:
            return await _renew(work, plain)
    except Exception:
        log.warning("batched renewal failed; renewing one account at a time", exc_info=True)
        return set()


async def _renew(work: UnitOfWork, plain: list[_Plain]) -> set[int]:
    plain.sort(key=lambda item: item.account_id)
    ids = [item.account_id for item in plain]
    # Account rows locked in id order (two batch runners cannot deadlock);
    # the totals read here are the "before" of the reductions.
    sql = Statement(work.connection)
    locked = await sql.fetch(
        f"SELECT id, seats_total FROM accounts WHERE id = ANY({sql.param(ids)}::int[]) "  # noqa: S608
        "ORDER BY id FOR NO KEY UPDATE"
    )
    before = {row["id"]: row["seats_total"] for row in locked}
    # The conditional roll: whoever matches period_index = k owns the end of
    # period k, exactly as on the per-account path. It also checks again,
    # under the lock, what made the account fit: the same scheduled total,
    # the licences in use within it, and no overdue invitation (the
    # per-account path expires those first).
    sql = Statement(work.connection)
    rolled = await sql.fetch(
        "UPDATE accounts AS a SET period_index = v.index + 1, "  # noqa: S608
        "current_period_start = v.start_at, current_period_end = v.end_at, "
        "seats_total = COALESCE(v.reduce_to, a.seats_total), scheduled_total = NULL "
        f"FROM unnest({sql.param(ids)}::int[], "
        f"{sql.param([item.closing_index for item in plain])}::int[], "
        f"{sql.param([item.period.start for item in plain])}::timestamptz[], "
        f"{sql.param([item.period.end for item in plain])}::timestamptz[], "
        f"{sql.param([item.reduce_to for item in plain])}::int[]) "
        "AS v(id, index, start_at, end_at, reduce_to) "
        "WHERE a.id = v.id AND a.period_index = v.index "
        "AND a.scheduled_total IS NOT DISTINCT FROM v.reduce_to "
        "AND (v.reduce_to IS NULL OR (a.seats_in_use <= v.reduce_to AND NOT EXISTS ("
        "  SELECT 1 FROM invitations AS i WHERE i.account_id = a.id "
        f"  AND i.kind = {sql.param(InvitationKind.LICENSE.value)} "
        f"  AND i.status = {sql.param(InvitationStatus.PENDING.value)} "
        f"  AND i.expires_at <= {sql.param(work.now)}))) "
        "RETURNING a.id, a.seats_total, a.seat_price_cents, a.currency"
    )
    if not rolled:
        return set()
    of = {item.account_id: item for item in plain}
    rolled.sort(key=lambda row: row["id"])
    reduced = [row for row in rolled if of[row["id"]].reduce_to is not None]
    if reduced:
        # Before the PERIOD_RENEWED events, as on the per-account path.
        await _insert_audits(
            work,
            AuditAction.SEAT_REDUCTION_APPLIED,
            [row["id"] for row in reduced],
            [
                {"before": before[row["id"]], "after": row["seats_total"], "releasedUserIds": []}
                for row in reduced
            ],
        )
        for row in reduced:
            await work.webhook(
                account_id=row["id"],
                event_type=WebhookEventType.SEATS_REDUCTION_APPLIED,
                data=seat_event_data(
                    previous_total=before[row["id"]],
                    total=row["seats_total"],
                    effective_at=work.now,
                ),
            )
    renewals = {
        row["id"]: price_renewal(
            of[row["id"]].period,
            seats_total=row["seats_total"],
            seat_price_cents=row["seat_price_cents"],
        )
        for row in rolled
    }
    charge_of = await _insert_charges(work, rolled, renewals)
    await _insert_audits(
        work,
        AuditAction.PERIOD_RENEWED,
        [row["id"] for row in rolled],
        [
            renewal_audit_data(
                renewals[row["id"]], currency=row["currency"], charge_id=charge_of[row["id"]]
            )
            for row in rolled
        ],
    )
    for row in rolled:
        await work.webhook(
            account_id=row["id"],
            event_type=WebhookEventType.PERIOD_RENEWED,
            data=renewal_event_data(renewals[row["id"]], charge_id=charge_of[row["id"]]),
        )
    return {row["id"] for row in rolled}


async def _insert_charges(
    work: UnitOfWork, rolled: list[dict[str, Any]], renewals: dict[int, Renewal]
) -> dict[int, int | None]:
    """The RENEWAL charge of every rolled account; returns account id -> charge id."""
    ordered = [renewals[row["id"]] for row in rolled]
    sql = Statement(work.connection)
    charged = await sql.fetch(
        "INSERT INTO charges (account_id, kind, quantity, unit_amount_cents, amount_cents, "  # noqa: S608
        "currency, period_start, period_end, created_at) "
        f"SELECT v.account_id, {sql.param(ChargeKind.RENEWAL.value)}, v.quantity, v.unit, "
        f"v.amount, v.currency, v.start_at, v.end_at, {sql.param(work.now)} "
        f"FROM unnest({sql.param([row['id'] for row in rolled])}::int[], "
        f"{sql.param([item.quantity for item in ordered])}::int[], "
        f"{sql.param([item.unit_amount_cents for item in ordered])}::bigint[], "
        f"{sql.param([item.amount_cents for item in ordered])}::bigint[], "
        f"{sql.param([row['currency'] for row in rolled])}::text[], "
        f"{sql.param([item.period.start for item in ordered])}::timestamptz[], "
        f"{sql.param([item.period.end for item in ordered])}::timestamptz[]) "
        "AS v(account_id, quantity, unit, amount, currency, start_at, end_at) "
        # The unique renewal index is the last guard: a duplicate is not
        # charged twice (as on the per-account path), its charge is looked up.
        "ON CONFLICT (account_id, period_start) WHERE kind = 'RENEWAL' DO NOTHING "
        "RETURNING id, account_id"
    )
    charge_of: dict[int, int | None] = {row["account_id"]: row["id"] for row in charged}
    for row in rolled:
        if row["id"] not in charge_of:
            start = renewals[row["id"]].period.start
            log.warning("renewal of account %s from %s already charged", row["id"], start)
            existing = (
                await Charge.filter(
                    account_id=row["id"], kind=ChargeKind.RENEWAL, period_start=start
                )
                .using_db(work.connection)
                .first()
            )
            charge_of[row["id"]] = existing.id if existing else None
    return charge_of


async def _insert_audits(
    work: UnitOfWork, action: AuditAction, account_ids: list[int], data: list[dict[str, Any]]
) -> None:
    """One SYSTEM audit event per account, in the order given (one statement)."""
    sql = Statement(work.connection)
    await sql.execute(
        "INSERT INTO audit_events (account_id, action, actor_kind, data, created_at) "  # noqa: S608
        f"SELECT v.account_id, {sql.param(action.value)}, {sql.param(ActorKind.SYSTEM.value)}, "
        f"v.data::jsonb, {sql.param(work.now)} "
        f"FROM unnest({sql.param(account_ids)}::int[], "
        f"{sql.param([json.dumps(item, separators=(',', ':')) for item in data])}::text[]) "
        "WITH ORDINALITY AS v(account_id, data, n) ORDER BY v.n"
    )
