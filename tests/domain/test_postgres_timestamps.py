"""PostgreSQL connections read and write `timestamptz` as text (domain.db): the
same instants, always aware and in UTC, whatever the session's time zone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import asyncpg
import pytest
from tortoise import connections

from domain.db import tortoise_config
from domain.models import Account
from tests.support.database import POSTGRES_URL

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.skipif(not POSTGRES_URL, reason="PostgreSQL connections only"),
]

KOLKATA = timezone(timedelta(hours=5, minutes=30))
INSTANTS = [
    datetime(2026, 3, 10, 12, 0, tzinfo=UTC),
    datetime(2026, 3, 10, 12, 0, 0, 500, tzinfo=UTC),
    datetime(2026, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
    datetime(1999, 1, 1, 0, 0, 0, 1, tzinfo=UTC),
]


async def test_given_instants_in_any_offset_when_round_tripped_then_the_same_instants_in_utc(db):
    client = connections.get("default")
    for instant in INSTANTS:
        # given the same instant written in UTC and in another offset
        for written in (instant, instant.astimezone(KOLKATA)):
            # when it goes to PostgreSQL as a parameter and comes back
            _, rows = await client.execute_query("SELECT $1::timestamptz AS t", [written])
            read = rows[0]["t"]
            # then it is the same instant, in UTC
            assert read == instant
            assert read.tzinfo is UTC


async def test_given_a_session_in_another_time_zone_when_read_then_the_values_are_in_utc(db):
    # given a connection set up as the service's pool sets up its own, in a
    # session whose TimeZone is not UTC
    assert POSTGRES_URL is not None
    credentials = tortoise_config(POSTGRES_URL)["connections"]["default"]["credentials"]
    connection = await asyncpg.connect(
        POSTGRES_URL.split("?", 1)[0],
        server_settings={**credentials["server_settings"], "TimeZone": "Asia/Kolkata"},
    )
    try:
        await credentials["init"](connection)
        # when PostgreSQL writes the instants in that zone's offset
        for instant in INSTANTS:
            text = instant.strftime("%Y-%m-%d %H:%M:%S.%f+00")
            read = await connection.fetchval("SELECT $1::text::timestamptz", text)
            shown = await connection.fetchval("SELECT $1::timestamptz::text", instant)
            # then they are read back in UTC, and the session did see its own offset
            assert (read, read.tzinfo) == (instant, UTC)
            assert shown.endswith("+05:30")
    finally:
        await connection.close()


async def test_given_an_account_when_read_through_the_orm_then_its_times_are_aware_utc(
    account, clock
):
    model = await Account.get(id=account.account_id)

    # (Tortoise gives its own UTC zone, ZoneInfo("UTC"), as it did before)
    assert model.created_at == clock.now()
    assert model.created_at.utcoffset() == timedelta(0)
    assert model.current_period_end.utcoffset() == timedelta(0)
