"""Soak: mixed traffic from three accounts on the production topology, with faults.

A `tests.support.cluster.Cluster` (PostgreSQL, Redis, an SMTP catcher, two API
processes, two workers, a scheduler) serves three accounts. Per account, one
thread changes things (invites, accepts from the emailed link, resends,
revokes, unassigns and assigns, seat increases, reductions and cancellations,
ownership transfers with the new owner signing in) and one only reads (the
account through its API token and its owner, and sign-ins with wrong passwords
from changing client addresses). Meanwhile worker 1 is SIGKILLed (with its
children) and started again, and Redis is restarted.

At the end:
- every request was answered 200, and every refusal is one this operation may
  give in this situation (ALLOWED, per operation); no top-level error at all;
- every process is still running;
- every PENDING or ACCEPTED invitation's current token reached the SMTP
  catcher (bounded wait: the relay re-sends what a killed worker or the Redis
  restart dropped, after OUTBOX_LEASE_SECONDS);
- one audit event per successful change: the successes counted here, per
  account and action, equal the audit rows;
- the SPEC's invariants (tests/hostile/invariants.py), read from the
  cluster's database.

SOAK_SECONDS sets the traffic time: 60 in the default suite (CI); on demand,
`python -m tests.hostile.test_soak` soaks for ten minutes (SOAK_SECONDS=600
unless set), as does `SOAK_SECONDS=600 pytest tests/hostile/test_soak.py`.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import os
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from domain.db import close_database, init_database
from domain.enums import InvitationStatus
from domain.models import AuditEvent, Invitation
from tests.hostile import invariants
from tests.support.cluster import Cluster
from tests.support.cluster_client import require_cluster_tools

SOAK_SECONDS = float(os.environ.get("SOAK_SECONDS") or 60)
# After the traffic: how long the scheduler's relay may take to deliver what the
# faults held up (OUTBOX_LEASE_SECONDS + a few relay rounds + retries).
CATCH_UP_SECONDS = 120
PASSWORD = "soak-password-0123"
ACCOUNTS = ("alpha", "bravo", "charlie")

# The refusals each operation may give here (the driver picks plausible
# targets, but reads a moment before it acts, and emails race resends).
ALLOWED: dict[str, frozenset[str]] = {
    "inviteUser": frozenset({"NO_AVAILABLE_LICENSES"}),
    "acceptInvitation": frozenset({"INVITATION_INVALID"}),
    "resendInvitation": frozenset({"NO_AVAILABLE_LICENSES", "INVITATION_INVALID"}),
    "revokeInvitation": frozenset({"INVITATION_INVALID"}),
    "assignLicense": frozenset({"NO_AVAILABLE_LICENSES"}),
    "unassignLicense": frozenset(),
    "changeSeatCount": frozenset({"SEATS_BELOW_USAGE"}),
    "cancelScheduledSeatChange": frozenset(),
    "transferOwnership": frozenset(),
    "login": frozenset(),  # the right password
    "wrongLogin": frozenset({"INVALID_CREDENTIALS", "RATE_LIMITED"}),
}

USERS = """
query($after: String) { account { licenses { total inUse available scheduledTotal }
  users(first: 200, after: $after) { pageInfo { hasNextPage endCursor }
    edges { node { id email status role invitation { status } } } } } }"""
READS = (
    "{ account { id name owner { id email } licenses { total inUse available pendingInvitations"
    " scheduledTotal releasedAtScheduledChange } billing { currency currentPeriodEnd } } }",
    "{ account { auditLog(first: 20) { totalCount edges { node { action actorKind } } } } }",
    "{ account { charges(first: 5) { totalCount edges { node { kind amountCents } } } } }",
    "{ account { users(first: 50, orderBy: LAST_ACTIVE_DESC, filter: {hasLicense: true})"
    " { totalCount edges { node { name status lastActiveAt licenseHistory { endReason } } } } } }",
    "{ viewer { id role status } licenseAgreement { version } }",
)
ERRORS = "errors { code message field }"
MUTATIONS = {
    "inviteUser": "mutation($input: InviteUserInput!) { inviteUser(input: $input) "
    f"{{ user {{ id }} {ERRORS} }} }}",
    "acceptInvitation": "mutation($input: AcceptInvitationInput!) { acceptInvitation("
    f"input: $input) {{ token user {{ id }} {ERRORS} }} }}",
    "resendInvitation": "mutation($id: ID!) { resendInvitation(userId: $id) "
    f"{{ invitation {{ status }} {ERRORS} }} }}",
    "revokeInvitation": "mutation($id: ID!) { revokeInvitation(userId: $id) "
    f"{{ invitation {{ status }} {ERRORS} }} }}",
    "assignLicense": f"mutation($id: ID!) {{ assignLicense(userId: $id) {{ user {{ status }} "
    f"{ERRORS} }} }}",
    "unassignLicense": f"mutation($id: ID!) {{ unassignLicense(userId: $id) {{ user {{ status }} "
    f"{ERRORS} }} }}",
    "changeSeatCount": "mutation($input: ChangeSeatCountInput!) { changeSeatCount(input: $input) "
    f"{{ licenses {{ total scheduledTotal }} {ERRORS} }} }}",
    "cancelScheduledSeatChange": "mutation { cancelScheduledSeatChange { licenses { total } "
    f"{ERRORS} }} }}",
    "transferOwnership": "mutation($id: ID!) { transferOwnership(userId: $id) "
    f"{{ newOwner {{ id role }} {ERRORS} }} }}",
    "login": f"mutation($input: LoginInput!) {{ login(input: $input) {{ token {ERRORS} }} }}",
}
MUTATIONS["wrongLogin"] = MUTATIONS["login"]


@dataclass
class Known:
    email: str
    status: str = "INVITED"
    role: str = "MEMBER"
    password: str | None = None
    invitation: str | None = None


@dataclass
class Outcome:
    """What the traffic saw, shared by every thread (under `lock`)."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    requests: Counter[str] = field(default_factory=Counter)
    refusals: Counter[str] = field(default_factory=Counter)
    unexpected: list[str] = field(default_factory=list)

    def count(self, what: str) -> None:
        with self.lock:
            self.requests[what] += 1

    def refused(self, operation: str, code: str) -> None:
        with self.lock:
            self.refusals[f"{operation} {code}"] += 1

    def problem(self, message: str) -> None:
        with self.lock:
            if len(self.unexpected) < 50:
                self.unexpected.append(message)


class Api:
    """POST /graphql on the API processes in turn."""

    def __init__(self, urls: list[str], outcome: Outcome, address: str) -> None:
        self.urls = itertools.cycle(urls)
        self.outcome = outcome
        self.http = httpx.Client(timeout=60)
        self.address = address  # X-Forwarded-For: the client address the rate limit sees

    def close(self) -> None:
        self.http.close()

    def post(
        self,
        what: str,
        query: str,
        variables: dict[str, Any] | None = None,
        *,
        token: str | None = None,
        address: str | None = None,
    ) -> dict[str, Any] | None:
        headers = {"X-Forwarded-For": address or self.address}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        self.outcome.count(what)
        url = next(self.urls)
        try:
            response = self.http.post(
                url, json={"query": query, "variables": variables or {}}, headers=headers
            )
        except httpx.HTTPError as exc:
            self.outcome.problem(f"{what} on {url}: {exc!r}")
            return None
        for header in ("server", "set-cookie"):
            if header in response.headers:
                self.outcome.problem(f"{what}: a {header} header: {response.headers[header]}")
        if response.status_code != 200:
            self.outcome.problem(f"{what}: HTTP {response.status_code} {response.text[:300]}")
            return None
        body: dict[str, Any] = response.json()
        if body.get("errors"):
            self.outcome.problem(f"{what}: top-level errors {body['errors']}")
            return None
        data: dict[str, Any] = body["data"]
        return data

    def mutate(self, operation: str, variables: dict[str, Any] | None = None, **kw: Any) -> Any:
        """The payload on success; None on an allowed refusal (or a recorded problem)."""
        data = self.post(operation, MUTATIONS[operation], variables, **kw)
        if data is None:
            return None
        field_name = "login" if operation == "wrongLogin" else operation
        payload = data[field_name]
        if not payload["errors"]:
            return payload
        code = payload["errors"][0]["code"]
        self.outcome.refused(operation, code)
        if code not in ALLOWED[operation]:
            self.outcome.problem(f"{operation} {variables}: refused with {payload['errors']}")
        return None


def accept_tokens(cluster: Cluster, email: str) -> list[str]:
    """Tokens of the accept-invitation links emailed to `email`, oldest first."""
    tokens = []
    for message in cluster.emails:
        if email.lower() not in (r.lower() for r in message.recipients):
            continue
        for link in message.links():
            if "/accept-invitation?" in link:
                tokens.extend(parse_qs(urlsplit(link).query).get("token", []))
    return tokens


class Driver:
    """Changes one account, one request at a time; counts its successes by audit action."""

    def __init__(self, name: str, cluster: Cluster, outcome: Outcome, seed: int) -> None:
        self.name = name
        self.cluster = cluster
        self.rnd = random.Random(seed)
        self.api = Api(cluster.graphql_urls, outcome, address=f"10.1.{seed % 250}.1")
        self.audits: Counter[str] = Counter()
        self.users: dict[str, Known] = {}
        self.total = 0
        self.available = 0
        self.scheduled: int | None = None
        self.serial = 0
        self.agreement = ""
        self.owner_lock = threading.Lock()
        created = cluster.create_account(
            name=f"Soak {name}", owner_email=f"owner@{name}.example", seats=4
        )
        self.account_id = created.account_id
        self.api_token = created.api_token
        self.owner_id = created.owner_user_id
        self.owner_email = created.owner_email
        welcome = cluster.wait_for_email(to=self.owner_email, subject_contains="password")
        accepted = self.api.mutate(
            "acceptInvitation",
            {"input": {"token": welcome.accept_token(cluster.public_url), "password": PASSWORD}},
        )
        assert accepted is not None, outcome.unexpected
        self.audits["INVITATION_ACCEPTED"] += 1
        self.owner_token: str = accepted["token"]
        data = self.api.post("agreement", "{ licenseAgreement { version } }", token=self.api_token)
        assert data is not None
        self.agreement = data["licenseAgreement"]["version"]
        self.read()
        self.users[self.owner_id].password = PASSWORD

    # -- reading

    def read(self) -> bool:
        after = None
        seen: dict[str, Known] = {}
        while True:
            data = self.api.post("users", USERS, {"after": after}, token=self.api_token)
            if data is None:
                return False
            account = data["account"]
            licenses = account["licenses"]
            self.total, self.available = licenses["total"], licenses["available"]
            self.scheduled = licenses["scheduledTotal"]
            for edge in account["users"]["edges"]:
                node = edge["node"]
                known = self.users.get(node["id"]) or Known(email=node["email"])
                known.status, known.role = node["status"], node["role"]
                known.invitation = (node["invitation"] or {}).get("status")
                seen[node["id"]] = known
            page = account["users"]["pageInfo"]
            if not page["hasNextPage"]:
                break
            after = page["endCursor"]
        self.users = seen
        return True

    def pick(self, predicate: Callable[[str, Known], bool]) -> str | None:
        ids = [user_id for user_id, user in self.users.items() if predicate(user_id, user)]
        return self.rnd.choice(ids) if ids else None

    def admin_token(self) -> str:
        return self.api_token if self.rnd.random() < 0.7 else self.owner_token

    # -- one step

    def step(self) -> None:
        if not self.read():
            return
        actions: list[tuple[Callable[[], None], int]] = [
            (self.invite, 6 if self.available else 1),
            (self.accept, 6),
            (self.resend, 2),
            (self.revoke, 2),
            (self.unassign, 3),
            (self.assign, 3),
            (self.change_seats, 3),
            (self.cancel, 1),
            (self.transfer, 1),
        ]
        action = self.rnd.choices([a for a, _ in actions], [w for _, w in actions])[0]
        action()

    def invite(self) -> None:
        self.serial += 1
        role = self.rnd.choice(("MEMBER", "MEMBER", "ADMIN"))
        email = f"user{self.serial}@{self.name}.example"
        payload = self.api.mutate(
            "inviteUser",
            {
                "input": {
                    "email": email,
                    "firstName": "Soak",
                    "lastName": str(self.serial),
                    "role": role,
                }
            },
            token=self.admin_token(),
        )
        if payload is not None:
            self.audits["USER_INVITED"] += 1

    def accept(self) -> None:
        user_id = self.pick(lambda _, u: u.status == "INVITED")
        if user_id is None:
            return
        tokens = accept_tokens(self.cluster, self.users[user_id].email)
        if not tokens:
            return  # not delivered yet
        payload = self.api.mutate(
            "acceptInvitation", {"input": {"token": tokens[-1], "password": PASSWORD}}
        )
        if payload is not None:
            self.audits["INVITATION_ACCEPTED"] += 1
            self.users[user_id].password = PASSWORD

    def resend(self) -> None:
        user_id = self.pick(lambda _, u: u.status == "INVITED")
        if user_id is not None and self.api.mutate(
            "resendInvitation", {"id": user_id}, token=self.admin_token()
        ):
            self.audits["INVITATION_RESENT"] += 1

    def revoke(self) -> None:
        user_id = self.pick(lambda _, u: u.status == "INVITED")
        if user_id is not None and self.api.mutate(
            "revokeInvitation", {"id": user_id}, token=self.admin_token()
        ):
            self.audits["INVITATION_REVOKED"] += 1

    def unassign(self) -> None:
        user_id = self.pick(lambda _, u: u.status != "DISABLED" and u.role != "OWNER")
        if user_id is not None and self.api.mutate(
            "unassignLicense", {"id": user_id}, token=self.admin_token()
        ):
            self.audits["LICENSE_UNASSIGNED"] += 1

    def assign(self) -> None:
        user_id = self.pick(lambda _, u: u.status == "DISABLED")
        if user_id is not None and self.api.mutate(
            "assignLicense", {"id": user_id}, token=self.admin_token()
        ):
            self.audits["LICENSE_ASSIGNED"] += 1

    def change_seats(self) -> None:
        in_use = self.total - self.available
        total = self.rnd.randint(max(1, in_use - 1), self.total + 2)
        payload = self.api.mutate(
            "changeSeatCount",
            {
                "input": {
                    "total": total,
                    "acceptAgreement": True,
                    "agreementVersion": self.agreement,
                }
            },
            token=self.admin_token(),
        )
        if payload is None:
            return
        if total > self.total:
            self.audits["SEATS_INCREASED"] += 1
        elif total < self.total:
            self.audits["SEAT_REDUCTION_SCHEDULED"] += 1
        if total >= self.total and self.scheduled is not None:
            self.audits["SEAT_REDUCTION_CANCELLED"] += 1

    def cancel(self) -> None:
        payload = self.api.mutate("cancelScheduledSeatChange", token=self.admin_token())
        if payload is not None and self.scheduled is not None:
            self.audits["SEAT_REDUCTION_CANCELLED"] += 1

    def transfer(self) -> None:
        target = self.pick(
            lambda _, u: u.status == "ENABLED" and u.role != "OWNER" and u.password is not None
        )
        if target is None:
            return
        with self.owner_lock:
            payload = self.api.mutate("transferOwnership", {"id": target}, token=self.owner_token)
            if payload is None:
                return
            self.audits["OWNERSHIP_TRANSFERRED"] += 1
            # The previous owner is signed out; the new owner signs in.
            login = self.api.mutate(
                "login",
                {
                    "input": {
                        "email": self.users[target].email,
                        "password": PASSWORD,
                        "accountId": self.account_id,
                    }
                },
            )
            if login is not None:
                self.owner_id, self.owner_token = target, login["token"]


class Reader:
    """Reads one account and tries wrong passwords; changes nothing the audit sees."""

    def __init__(self, driver: Driver, seed: int) -> None:
        self.driver = driver
        self.rnd = random.Random(seed)
        self.api = Api(driver.cluster.graphql_urls, driver.api.outcome, address="10.2.0.1")

    def step(self) -> None:
        driver = self.driver
        if self.rnd.random() < 0.2:
            # Wrong passwords from ever-changing addresses, at an email nobody
            # signs in with here (so the rate limit never locks the drivers out).
            email = self.rnd.choice((f"nobody@{driver.name}.example", driver.owner_email + "x"))
            address = f"10.3.{self.rnd.randrange(250)}.{self.rnd.randrange(250)}"
            self.api.mutate(
                "wrongLogin",
                {"input": {"email": email, "password": "not the password"}},
                address=address,
            )
            return
        query = self.rnd.choice(READS)
        if self.rnd.random() < 0.5:
            self.api.post("read", query, token=driver.api_token)
        else:
            # Not while a transfer ends the owner's session and the new owner signs in.
            with driver.owner_lock:
                self.api.post("read", query, token=driver.owner_token)


def run_until(deadline: float, step: Callable[[], None], stop: threading.Event) -> None:
    while time.monotonic() < deadline and not stop.is_set():
        step()


async def database_report(url: str) -> tuple[list[str], dict[str, Counter[str]], list[Any]]:
    await init_database(url)
    try:
        problems = await invariants.violations(datetime.now(UTC), references=True)
        audits: dict[str, Counter[str]] = {}
        for account_id, action in await AuditEvent.all().values_list("account_id", "action"):
            audits.setdefault(str(account_id), Counter())[str(action)] += 1
        invitations = await Invitation.filter(
            status__in=[InvitationStatus.PENDING, InvitationStatus.ACCEPTED]
        ).values_list("id", "email", "token_hash", "status")
        return problems, audits, list(invitations)
    finally:
        await close_database()


def undelivered(cluster: Cluster, invitations: list[Any]) -> list[Any]:
    """PENDING/ACCEPTED invitations whose current token is in no email received."""
    sent = set()
    for message in cluster.emails:
        for link in message.links():
            for token in parse_qs(urlsplit(link).query).get("token", []):
                sent.add(hashlib.sha256(token.encode()).hexdigest())
    return [row for row in invitations if row[2] not in sent]


@pytest.mark.slow
def test_soak_three_accounts_through_worker_and_redis_faults() -> None:
    require_cluster_tools()
    started = time.monotonic()
    outcome = Outcome()
    cluster = Cluster(
        api=2,
        workers=2,
        scheduler=True,
        scheduler_interval_seconds=2,
        # A message held by a killed worker (or lost with Redis) is re-sent by the
        # relay once its lease has passed: seconds here, not the default 2 minutes.
        extra_env={
            "OUTBOX_LEASE_SECONDS": "10",
            "OUTBOX_RETRY_BASE_SECONDS": "2",
            "OUTBOX_RETRY_MAX_SECONDS": "10",
        },
    )
    with cluster:
        drivers = [Driver(name, cluster, outcome, seed) for seed, name in enumerate(ACCOUNTS)]
        readers = [Reader(driver, 100 + i) for i, driver in enumerate(drivers)]
        stop = threading.Event()
        deadline = time.monotonic() + SOAK_SECONDS
        threads = [
            threading.Thread(target=run_until, args=(deadline, actor.step, stop), daemon=True)
            for actor in [*drivers, *readers]
        ]
        for thread in threads:
            thread.start()
        faults: list[tuple[float, str, Callable[[], object]]] = [
            (0.25, "kill worker-1", lambda: cluster.kill_worker(0)),
            (0.40, "restart worker-1", lambda: cluster.restart_worker(0)),
            (0.60, "restart redis", cluster.restart_redis),
        ]
        traffic_started = time.monotonic()
        done = []
        try:
            for fraction, name, fault in faults:
                time.sleep(max(0.0, traffic_started + fraction * SOAK_SECONDS - time.monotonic()))
                fault()
                done.append((name, round(time.monotonic() - traffic_started, 1)))
        finally:
            for thread in threads:
                thread.join(timeout=SOAK_SECONDS + 120)
            stop.set()
        traffic_seconds = time.monotonic() - traffic_started

        dead = [process.name for process in cluster.processes if not process.running]
        catch_up = time.monotonic() + CATCH_UP_SECONDS
        while True:
            problems, audits, invitations = asyncio.run(database_report(cluster.postgres.url))
            missing = undelivered(cluster, invitations)
            if not missing or time.monotonic() > catch_up:
                break
            time.sleep(2)
        caught_up = round(time.monotonic() - (catch_up - CATCH_UP_SECONDS), 1)
        for actor in [*drivers, *readers]:
            actor.api.close()

        audit_mismatches = []
        for driver in drivers:
            recorded = audits.get(driver.account_id, Counter())
            for action, expected in sorted(driver.audits.items()):
                if recorded[action] != expected:
                    audit_mismatches.append(
                        f"{driver.name}: {action} {recorded[action]} audit rows, "
                        f"{expected} successes"
                    )
            unexpected_actions = (
                set(recorded) - set(driver.audits) - {"ACCOUNT_CREATED", "API_TOKEN_CREATED"}
            )
            if unexpected_actions:
                audit_mismatches.append(f"{driver.name}: audit actions {unexpected_actions}")

        report = (
            f"soak: {sum(outcome.requests.values())} requests in {traffic_seconds:.0f} s "
            f"(total {time.monotonic() - started:.0f} s), faults {done}, emails "
            f"{len(cluster.emails)}, mail caught up {caught_up} s after the traffic\n"
            f"  requests {dict(sorted(outcome.requests.items()))}\n"
            f"  refusals {dict(sorted(outcome.refusals.items()))}\n"
            f"  successes {[(d.name, dict(sorted(d.audits.items()))) for d in drivers]}"
        )
        print(report)
        failures = [
            *(f"unexpected: {message}" for message in outcome.unexpected),
            *(f"process {name} died" for name in dead),
            *(f"invariant: {problem}" for problem in problems),
            *(f"never emailed: invitation {row[0]} to {row[1]} ({row[3]})" for row in missing),
            *(f"audit: {mismatch}" for mismatch in audit_mismatches),
        ]
        if failures:
            cluster.mark_failed()  # keep the logs and mail (the path is printed)
        assert not failures, report + "\n" + "\n".join(failures[:40])


if __name__ == "__main__":  # on demand: `python -m tests.hostile.test_soak` soaks ten minutes
    os.environ.setdefault("SOAK_SECONDS", "600")
    raise SystemExit(pytest.main([__file__, "-q", "-s", "-p", "no:cacheprovider"]))
