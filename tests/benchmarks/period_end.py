"""B5: the billing period-end job over many accounts, against one set-based
SQL statement making the equivalent changes (PostgreSQL only).

Every account has one ended period; one in twenty has a scheduled reduction
that releases no licence (the new total covers the licences in use). Two
identical databases (the second a TEMPLATE copy of the first): the job runs
on one, the statement on the other.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from tests.benchmarks.common import Figure, Options, PySpy, Recorder, say
from tests.benchmarks.dataset import analyze, asyncpg_dsn, migrate_database
from tests.benchmarks.tasks import run_task
from tests.support.local_services import PostgresServer

TARGET = 2000.0  # accounts per second

ACCOUNT_COLUMNS = (
    "name",
    "seats_total",
    "seats_in_use",
    "scheduled_total",
    "seat_price_cents",
    "currency",
    "billing_interval",
    "billing_anchor",
    "period_index",
    "current_period_start",
    "current_period_end",
    "created_at",
)

# One statement: roll every ended period by one, apply scheduled reductions,
# one RENEWAL charge and the audit events per account.
BASELINE_SQL = """
WITH due AS (
    SELECT id, period_index, seats_total, scheduled_total, billing_anchor,
           CASE billing_interval WHEN 'YEAR' THEN 12 ELSE 1 END AS months
    FROM accounts
    WHERE current_period_end <= $1
    ORDER BY id
    FOR NO KEY UPDATE
), rolled AS (
    UPDATE accounts AS a
    SET period_index = due.period_index + 1,
        current_period_start = a.current_period_end,
        current_period_end = due.billing_anchor
            + make_interval(months => (due.period_index + 1) * due.months),
        seats_total = COALESCE(due.scheduled_total, due.seats_total),
        scheduled_total = NULL
    FROM due
    WHERE a.id = due.id
    RETURNING a.id, a.period_index, a.current_period_start, a.current_period_end,
              a.seats_total, a.seat_price_cents, a.currency,
              due.scheduled_total, due.seats_total AS before_total
), charged AS (
    INSERT INTO charges (account_id, kind, quantity, unit_amount_cents, amount_cents,
                         currency, period_start, period_end, created_at)
    SELECT id, 'RENEWAL', seats_total, seat_price_cents, seats_total * seat_price_cents,
           currency, current_period_start, current_period_end, $1
    FROM rolled
    RETURNING id, account_id
), reductions AS (
    INSERT INTO audit_events (account_id, action, actor_kind, data, created_at)
    SELECT id, 'SEAT_REDUCTION_APPLIED', 'SYSTEM',
           jsonb_build_object('before', before_total, 'after', seats_total,
                              'releasedUserIds', '[]'::jsonb), $1
    FROM rolled
    WHERE scheduled_total IS NOT NULL
)
INSERT INTO audit_events (account_id, action, actor_kind, data, created_at)
SELECT r.id, 'PERIOD_RENEWED', 'SYSTEM',
       jsonb_build_object('periodIndex', r.period_index,
                          'periodStart', r.current_period_start,
                          'periodEnd', r.current_period_end,
                          'quantity', r.seats_total,
                          'amountCents', r.seats_total * r.seat_price_cents,
                          'currency', r.currency, 'chargeId', c.id), $1
FROM rolled AS r JOIN charged AS c ON c.account_id = r.id
"""


def _accounts(count: int, now: datetime) -> list[tuple[Any, ...]]:
    rows = []
    for i in range(count):
        # Ended between 1 and 20 days ago; anchored so that the next end is
        # in the future (one period due).
        end = (now - timedelta(days=1 + i % 20)).replace(microsecond=0)
        reduce = i % 20 == 7
        rows.append(
            (
                f"Billing {i}",
                5,
                1,
                3 if reduce else None,
                1200 + i % 7,
                "USD",
                "MONTH",
                end,
                0,
                end - timedelta(days=30),
                end,
                end - timedelta(days=31),
            )
        )
    return rows


async def _load(url: str, count: int) -> None:
    connection = await asyncpg.connect(asyncpg_dsn(url))
    try:
        await connection.copy_records_to_table(
            "accounts", records=_accounts(count, datetime.now(UTC)), columns=ACCOUNT_COLUMNS
        )
    finally:
        await connection.close()


async def _check(url: str, count: int) -> dict[str, int]:
    connection = await asyncpg.connect(asyncpg_dsn(url))
    try:
        row = await connection.fetchrow(
            "SELECT (SELECT COUNT(*) FROM accounts WHERE period_index = 1) AS rolled,"
            " (SELECT COUNT(*) FROM accounts WHERE current_period_end <= now()) AS still_due,"
            " (SELECT COUNT(*) FROM charges WHERE kind = 'RENEWAL') AS charges,"
            " (SELECT COUNT(*) FROM audit_events WHERE action = 'PERIOD_RENEWED') AS renewed,"
            " (SELECT COUNT(*) FROM audit_events"
            "   WHERE action = 'SEAT_REDUCTION_APPLIED') AS reductions,"
            " (SELECT COUNT(*) FROM accounts WHERE scheduled_total IS NOT NULL) AS scheduled"
        )
    finally:
        await connection.close()
    found = dict(row)
    reductions = sum(1 for i in range(count) if i % 20 == 7)
    expected = {
        "rolled": count,
        "still_due": 0,
        "charges": count,
        "renewed": count,
        "reductions": reductions,
        "scheduled": 0,
    }
    if found != expected:
        raise RuntimeError(f"B5: unexpected state {found}, expected {expected}")
    return found


async def b5_billing(options: Options, recorder: Recorder, pg: PostgresServer) -> None:
    count = 5_000 if options.quick else 100_000
    say(f"B5 billing: {count} accounts with an ended period")
    url = pg.create_database("bench_b5")
    await migrate_database(url)
    t0 = time.perf_counter()
    await _load(url, count)
    await analyze(url)
    say(f"  loaded in {time.perf_counter() - t0:.1f}s")
    pg.execute('CREATE DATABASE "bench_b5_base" TEMPLATE "bench_b5"')
    base_url = pg.url_for("bench_b5_base")

    connection = await asyncpg.connect(asyncpg_dsn(base_url))
    try:
        await connection.execute("SET TIME ZONE 'UTC'")
        started = time.perf_counter()
        async with connection.transaction():
            await connection.execute(BASELINE_SQL, datetime.now(UTC))
        baseline_seconds = time.perf_counter() - started
    finally:
        await connection.close()
    await _check(base_url, count)
    say(f"  set-based SQL: {baseline_seconds:.2f}s ({count / baseline_seconds:.0f} accounts/s)")

    prefix: list[str] = []
    profile = options.out.parent / "benchmarks" / "profile-B5.txt"
    if options.profile:
        profile.parent.mkdir(parents=True, exist_ok=True)
        prefix = [
            str(PySpy.binary()),
            "record",
            "--format",
            "raw",
            "--rate",
            "250",
            "--output",
            str(profile),
            "--",
        ]
    job = run_task("period-end", prefix=prefix, url=url)
    if job["failed"] or job["periods_renewed"] != count:
        raise RuntimeError(f"B5: the job reported {job}")
    await _check(url, count)
    job_rate = count / job["seconds"]
    baseline_rate = count / baseline_seconds
    say(f"  job: {job['seconds']:.2f}s ({job_rate:.0f} accounts/s)")
    recorder.add(
        Figure(
            name=f"B5 billing period end, job / one SQL statement ({count // 1000}k accounts)",
            ratio=job_rate / baseline_rate,
            target=f">= {TARGET:.0f} accounts/s",
            met=job_rate >= TARGET,
            benchmark="B5",
            backend="postgres",
            details={
                "accounts": count,
                "job_seconds": round(job["seconds"], 3),
                "job_accounts_per_s": round(job_rate, 1),
                "baseline_seconds": round(baseline_seconds, 3),
                "baseline_accounts_per_s": round(baseline_rate, 1),
            },
            summary=(
                f"job {job_rate:.0f} accounts/s ({job['seconds']:.1f} s); one statement "
                f"{baseline_rate:.0f} accounts/s ({baseline_seconds:.1f} s)"
            ),
        )
    )
