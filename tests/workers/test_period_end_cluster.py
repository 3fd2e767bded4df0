"""Acceptance: an account whose period ends during the test is renewed once, with its
reduction applied, while two schedulers and two workers run (the production topology of
tests.support.cluster: PostgreSQL, Redis, SMTP, one API, two Dramatiq workers, two schedulers).

Both schedulers enqueue `period_end` every second and both workers (two threads each) run
it, so the same ended period is attempted several times at once: the conditional roll must
let exactly one of them charge the renewal and apply the reduction.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest

from domain.enums import BillingInterval
from domain.rules.periods import shift
from tests.support.cluster import Cluster
from tests.support.cluster_client import GraphQLClient, require_cluster_tools

SEATS = 5
REDUCED = 3
SEAT_PRICE_CENTS = 1200
# Long enough for the CLI, two invites and the reduction (under 2 s on this machine);
# checked below, so a slow machine fails with a clear message rather than a wrong one.
PERIOD_END_AFTER = timedelta(seconds=8)
SCHEDULER_INTERVAL_SECONDS = 1
RENEWAL_WITHIN_SECONDS = 40

INVITE = """
mutation($input: InviteUserInput!) {
  inviteUser(input: $input) { user { id status } licenses { inUse } errors { code message } }
}"""
AGREEMENT = "{ licenseAgreement { version } }"
CHANGE_SEATS = """
mutation($input: ChangeSeatCountInput!) {
  changeSeatCount(input: $input) {
    licenses { total inUse scheduledTotal scheduledAt } charge { kind } errors { code message }
  }
}"""
BILLING = "{ account { billing { currentPeriodStart currentPeriodEnd } } }"
STATE = """
{
  account {
    licenses { total inUse available scheduledTotal scheduledAt }
    billing { currentPeriodStart currentPeriodEnd seatPriceCents currency }
    charges(first: 50) {
      totalCount
      edges { node { kind quantity unitAmountCents amountCents currency periodStart periodEnd } }
    }
    auditLog(first: 200) { totalCount edges { node { action actorKind data } } }
  }
}"""


def _instant(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _actions(state: dict[str, Any]) -> list[str]:
    return [edge["node"]["action"] for edge in state["auditLog"]["edges"]]


async def _database_facts(url: str, account_id: int) -> dict[str, Any]:
    connection = await asyncpg.connect(url)
    try:
        account = await connection.fetchrow(
            "SELECT seats_total, seats_in_use, scheduled_total, period_index, "
            "current_period_start, current_period_end FROM accounts WHERE id = $1",
            account_id,
        )
        renewals = await connection.fetch(
            "SELECT quantity, unit_amount_cents, amount_cents, period_start, period_end "
            "FROM charges WHERE account_id = $1 AND kind = 'RENEWAL' ORDER BY id",
            account_id,
        )
        audit = await connection.fetch(
            "SELECT action, count(*) AS n FROM audit_events WHERE account_id = $1 GROUP BY action",
            account_id,
        )
    finally:
        await connection.close()
    assert account is not None
    return {
        "account": dict(account),
        "renewals": [dict(row) for row in renewals],
        "audit": {row["action"]: row["n"] for row in audit},
    }


@dataclass(frozen=True)
class PeriodEndRun:
    worker: str
    at: datetime
    due: int
    renewed: int
    failed: bool


_REPORT = re.compile(
    r"periodic job period_end done: PeriodEndReport\(accounts_due=(\d+), "
    r"periods_renewed=(\d+), licenses_released=\d+, failed_account_ids=\(([^)]*)\)\)"
)


def period_end_runs(log: str, worker: str = "") -> list[PeriodEndRun]:
    """The period_end reports a worker logged at DEBUG (workers.actors.run_periodic)."""
    runs = []
    for line in log.splitlines():
        if not line.startswith("{"):
            continue
        record = json.loads(line)
        found = _REPORT.search(str(record.get("message", "")))
        if found:
            runs.append(
                PeriodEndRun(
                    worker=worker,
                    at=_instant(record["time"]),
                    due=int(found.group(1)),
                    renewed=int(found.group(2)),
                    failed=bool(found.group(3).strip()),
                )
            )
    return runs


def database_facts(url: str, account_id: int) -> dict[str, Any]:
    return asyncio.run(_database_facts(url, account_id))


@pytest.mark.slow
def test_given_two_schedulers_and_two_workers_when_a_period_ends_then_it_is_renewed_once_with_its_reduction():  # noqa: E501
    require_cluster_tools()
    started = time.monotonic()
    cluster = Cluster(
        api=1,
        workers=2,
        schedulers=2,
        scheduler_interval_seconds=SCHEDULER_INTERVAL_SECONDS,
        # DEBUG: each worker logs the report of every period_end run it did (read below).
        extra_env={"LOG_LEVEL": "DEBUG"},
    )
    with cluster, httpx.Client(timeout=30) as http:
        assert len(cluster.extra_scheduler_processes) == 1
        assert cluster.postgres is not None
        gql = GraphQLClient(http, cluster.graphql_urls)

        period_end = (datetime.now(UTC) + PERIOD_END_AFTER).replace(microsecond=0)
        created = cluster.run_cli(
            "account",
            "create",
            "--name",
            "Renewal Race",
            "--owner-email",
            "owner@renewal.example.com",
            "--owner-first-name",
            "Olive",
            "--owner-last-name",
            "Owner",
            "--seats",
            str(SEATS),
            "--seat-price-cents",
            str(SEAT_PRICE_CENTS),
            "--current-period-end",
            period_end.isoformat(),
            "--json",
        )
        printed = json.loads(created.stdout)
        account_id, token = int(printed["accountId"]), printed["apiToken"]

        before = gql.query(BILLING, token=token)["account"]["billing"]
        assert _instant(before["currentPeriodEnd"]) == period_end
        # --current-period-end: the current period starts one interval before it.
        first_start = _instant(before["currentPeriodStart"])
        assert first_start < period_end - timedelta(days=27)

        for name in ("ann", "ben"):
            invited = gql.mutate(
                "inviteUser",
                INVITE,
                {
                    "input": {
                        "email": f"{name}@renewal.example.com",
                        "firstName": name.title(),
                        "lastName": "Invited",
                    }
                },
                token=token,
            )
            assert invited["user"]["status"] == "INVITED"
        version = gql.query(AGREEMENT, token=token)["licenseAgreement"]["version"]
        scheduled = gql.mutate(
            "changeSeatCount",
            CHANGE_SEATS,
            {"input": {"total": REDUCED, "acceptAgreement": True, "agreementVersion": version}},
            token=token,
        )
        assert scheduled["charge"] is None
        assert scheduled["licenses"]["total"] == SEATS
        assert scheduled["licenses"]["inUse"] == REDUCED
        assert scheduled["licenses"]["scheduledTotal"] == REDUCED
        assert _instant(scheduled["licenses"]["scheduledAt"]) == period_end
        left = (period_end - datetime.now(UTC)).total_seconds()
        assert left > 1, f"set-up took too long: the period ended {-left:.1f}s before it was done"

        # Wait (bounded) for the first scheduler round that finds the period over.
        deadline = time.monotonic() + RENEWAL_WITHIN_SECONDS
        while True:
            billing = gql.query(BILLING, token=token)["account"]["billing"]
            if _instant(billing["currentPeriodStart"]) != first_start:
                break
            assert time.monotonic() < deadline, (
                f"period not renewed {RENEWAL_WITHIN_SECONDS}s after the test started waiting "
                f"(logs in {cluster.log_dir})"
            )
            time.sleep(0.25)
        renewed_after = (datetime.now(UTC) - period_end).total_seconds()

        # The workers may still be finishing the duplicate runs: give the scheduler a few
        # more rounds (the next period ends a month from now, so nothing may change).
        state = gql.query(STATE, token=token)["account"]
        time.sleep(4 * SCHEDULER_INTERVAL_SECONDS + 1)
        later = gql.query(STATE, token=token)["account"]
        facts = database_facts(cluster.postgres.url, account_id)
        worker_logs = {p.name: p.log_path.read_text() for p in cluster.worker_processes}
        assert all(process.running for process in cluster.processes), [
            (process.name, process.returncode) for process in cluster.processes
        ]

    # -- GraphQL: the reduction took effect and one renewal was charged, on the reduced total.
    assert later == state, "something changed after the renewal"
    next_end = shift(period_end, BillingInterval.MONTH, 1)
    assert _instant(state["billing"]["currentPeriodStart"]) == period_end
    assert _instant(state["billing"]["currentPeriodEnd"]) == next_end
    assert state["licenses"] == {
        "total": REDUCED,
        "inUse": REDUCED,
        "available": 0,
        "scheduledTotal": None,
        "scheduledAt": None,
    }
    charges = [edge["node"] for edge in state["charges"]["edges"]]
    assert state["charges"]["totalCount"] == 1
    (renewal,) = charges
    assert renewal["kind"] == "RENEWAL"
    assert (renewal["quantity"], renewal["unitAmountCents"], renewal["amountCents"]) == (
        REDUCED,
        SEAT_PRICE_CENTS,
        REDUCED * SEAT_PRICE_CENTS,
    )
    assert _instant(renewal["periodStart"]) == period_end
    assert _instant(renewal["periodEnd"]) == next_end
    actions = _actions(state)
    assert actions.count("SEAT_REDUCTION_APPLIED") == 1
    assert actions.count("PERIOD_RENEWED") == 1
    assert "LICENSE_RELEASED" not in actions  # nothing over the reduced total
    applied = next(
        edge["node"]
        for edge in state["auditLog"]["edges"]
        if edge["node"]["action"] == "SEAT_REDUCTION_APPLIED"
    )
    assert applied["actorKind"] == "SYSTEM"
    assert (applied["data"]["before"], applied["data"]["after"]) == (SEATS, REDUCED)
    assert applied["data"]["releasedUserIds"] == []

    # -- PostgreSQL: the same, from the rows themselves.
    account = facts["account"]
    assert (account["seats_total"], account["seats_in_use"], account["scheduled_total"]) == (
        REDUCED,
        REDUCED,
        None,
    )
    assert account["period_index"] == 1
    assert (account["current_period_start"], account["current_period_end"]) == (
        period_end,
        next_end,
    )
    assert facts["renewals"] == [
        {
            "quantity": REDUCED,
            "unit_amount_cents": SEAT_PRICE_CENTS,
            "amount_cents": REDUCED * SEAT_PRICE_CENTS,
            "period_start": period_end,
            "period_end": next_end,
        }
    ]
    assert facts["audit"].get("SEAT_REDUCTION_APPLIED") == 1
    assert facts["audit"].get("PERIOD_RENEWED") == 1
    # The workers' own account of the race: every period_end run, from both schedulers' messages.
    runs = [run for name in sorted(worker_logs) for run in period_end_runs(worker_logs[name], name)]
    assert [run.renewed for run in runs].count(1) == 1, runs
    assert sum(run.renewed for run in runs) == 1, runs
    assert not any(run.failed for run in runs), runs
    renewal_run = next(run for run in runs if run.renewed)
    later_runs = [run for run in runs if run.at > renewal_run.at]
    # The "nothing more happened" above is worth something only if the job did run again.
    assert len(later_runs) >= 3, runs
    for name, text in worker_logs.items():
        assert "Traceback" not in text, (name, text[-4000:])

    assert cluster.stopped is not None and cluster.stopped.killed == []
    assert cluster.leftover_pids() == []
    assert renewed_after < RENEWAL_WITHIN_SECONDS
    assert time.monotonic() - started < 60, f"took {time.monotonic() - started:.0f}s"
