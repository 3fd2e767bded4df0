"""Schema-driven fuzzing of POST /graphql through the real ASGI app.

Hypothesis strategies built from schema/schema.graphql (tests/hostile/gqlfuzz.py)
generate queries and mutations with random and boundary inputs and random
selection sets, in batches of BATCH requests. Each batch is sent by one
principal of the two accounts of `principals` ("Acme" and "Globex"): Acme's
ADMIN, MEMBER, OWNER or API token, Globex's ADMIN (a foreign administrator,
who gets Acme's ids, cursors and emails as inputs), or no token at all. A
principal made unusable by an earlier request (signed out, released, demoted,
revoked) gets a fresh session or token before its next batch. The test clock
moves between batches (seconds to days), so invitations expire, sessions end
and the billing period runs out under the fuzzer.

Every response:
- status below 500, a JSON body, no masked internal error ("Internal server
  error"), no stack trace;
- every top-level error carries an extensions.code from the contract (or is a
  GraphQL validation error, which the server labels INVALID_INPUT anyway);
- every payload holds at most one UserError with a contract code, and on a
  refusal its other fields are null;
- without a token, no field but login/acceptInvitation returns data;
- no response names an email of the other account unless the request did.

After every batch: the SPEC's invariants (tests/hostile/invariants.py) on both
accounts; after a batch by the foreign ADMIN, every row of Acme exactly as
before it; after a batch by an Acme principal, every row of Globex as before
(new sessions allowed: a public login may sign a Globex user in). At the end,
every row references users and tokens of its own account only.

Size: FUZZ_REQUESTS (default 5000) requests; FUZZ_SEED replays a run (the seed
is printed on failure). ~60-90 s on SQLite or PostgreSQL on a 2-core machine.
Argon2 runs with cheap parameters (`cheap_password_hashing`); the code paths
are the production ones.
"""

from __future__ import annotations

import json
import math
import os
import random
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import anyio
import anyio.from_thread
import anyio.to_thread
import httpx
import pytest
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st
from starlette.applications import Starlette

from domain import config
from domain.clock import FixedClock
from domain.enums import ActorKind, InvitationStatus, Role, UserStatus
from domain.errors import DomainError, ErrorCode
from domain.models import Account, ApiToken, Invitation, User
from domain.principal import Principal
from domain.security import invitation_token
from domain.services import auth, invitations, licensing, seats
from domain.services.sessions import start_session
from domain.uow import unit_of_work
from tests.hostile import invariants
from tests.hostile.gqlfuzz import PUBLIC_MUTATIONS, FuzzRequest, Pools, requests
from tests.support.factories import PASSWORD
from tests.support.principals import Principals, owner_principal

pytestmark = pytest.mark.anyio

FUZZ_REQUESTS = int(os.environ.get("FUZZ_REQUESTS") or 5000)
FUZZ_SEED = int(os.environ.get("FUZZ_SEED") or random.SystemRandom().randrange(2**32))
BATCH = 20

# Drawn per batch (repetition is weight).
ROLES = ("admin",) * 3 + ("member",) * 2 + ("other_admin",) * 3 + ("none",) * 2 + ("owner", "api")
ACME_ROLES = frozenset({"admin", "member", "owner", "api"})
CLOCK_STEPS = (0, 0, 0, 1, 30, 61, 600, 3600, 6 * 3600, 86_400, 8 * 86_400)
KNOWN_CODES = frozenset(code.value for code in ErrorCode)
MAX_REPORTED = 40


def _walk(value: Any) -> Iterator[tuple[str, Any]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield key, item
            yield from _walk(item)
    elif isinstance(value, list):
        for item in value:
            yield from _walk(item)


@dataclass
class FuzzSession:
    app: Starlette
    clock: FixedClock
    principals: Principals
    tokens: dict[str, str | None] = field(default_factory=dict)
    stats: Counter[str] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)
    problem_count: int = 0
    sent: int = 0
    healed: int = 0
    batch_number: int = 0
    guarded: tuple[int, dict[str, Any], frozenset[str]] | None = None
    emails_of: dict[int, set[str]] = field(default_factory=dict)
    pools: Pools | None = None
    batch_token: str | None = None

    @property
    def acme(self) -> int:
        return self.principals.account_id

    @property
    def globex(self) -> int:
        return self.principals.other_account_id

    # -- set-up

    async def setup(self) -> None:
        """Users in every state worth poking at, on top of `principals`."""
        p = self.principals
        self.tokens = {
            "admin": p.admin_token,
            "member": p.member_token,
            "owner": p.owner_token,
            "api": p.api_token,
            "other_admin": p.other_admin_token,
            "none": None,
        }
        owner = owner_principal(self.acme, p.owner_id)
        await seats.change_seat_count(
            actor=owner,
            total=10,
            accept_agreement=True,
            agreement_version=config.AGREEMENT_VERSION,
            clock=self.clock,
        )
        # DISABLED with a password; DISABLED never accepted; INVITED; INVITED past expiry.
        disabled = await self._invite(owner, "dora@example.com", Role.MEMBER)
        await invitations.accept_invitation(
            token=await self._token_of(disabled), password=PASSWORD, clock=self.clock
        )
        await licensing.unassign_license(actor=owner, user_id=str(disabled), clock=self.clock)
        revoked = await self._invite(owner, "rex@example.com", Role.ADMIN)
        await invitations.revoke_invitation(actor=owner, user_id=str(revoked), clock=self.clock)
        await self._invite(owner, "ivy@example.com", Role.MEMBER)
        overdue = await self._invite(owner, "otto@example.com", Role.MEMBER)
        await Invitation.filter(user_id=overdue).update(
            expires_at=self.clock.now() - timedelta(seconds=1)
        )
        # The same person in both accounts (login without accountId: ACCOUNT_REQUIRED).
        globex_owner = Principal.system(self.globex)
        await seats.change_seat_count(
            actor=globex_owner,
            total=6,
            accept_agreement=True,
            agreement_version=config.AGREEMENT_VERSION,
            clock=self.clock,
        )
        both = await self._invite(globex_owner, "adam@example.com", Role.MEMBER)
        await invitations.accept_invitation(
            token=await self._token_of(both), password=PASSWORD, clock=self.clock
        )
        revoked_token = await auth.create_api_token(actor=owner, name="old", clock=self.clock)
        await auth.revoke_api_token(
            actor=owner, token_id=str(revoked_token.api_token.id), clock=self.clock
        )

    async def _invite(self, actor: Principal, email: str, role: Role) -> int:
        outcome = await invitations.invite_user(
            actor=actor,
            email=email,
            first_name="Fuzz",
            last_name="Target",
            role=role,
            clock=self.clock,
        )
        return outcome.user.id

    @staticmethod
    async def _token_of(user_id: int) -> str:
        invitation = await Invitation.filter(user_id=user_id).order_by("-id").first()
        assert invitation is not None
        return invitation_token(invitation.id, invitation.token_version)

    # -- before a batch

    async def prepare(self, role: str, step_seconds: int) -> tuple[str | None, Pools]:
        self.clock.advance(timedelta(seconds=step_seconds))
        token = self.batch_token = await self._ensure_token(role)
        pools = await self._pools(role)
        self.pools = pools
        if role == "other_admin":
            self.guarded = (self.acme, await invariants.account_rows(self.acme), frozenset())
        elif role in ACME_ROLES:
            rows = await invariants.account_rows(self.globex)
            self.guarded = (self.globex, rows, frozenset({"sessions"}))
        else:
            self.guarded = None
        return token, pools

    async def _ensure_token(self, role: str) -> str | None:
        if role == "none":
            return None
        token = self.tokens.get(role)
        if token is not None and await self._usable(token, role):
            return token
        self.healed += 1
        self.stats[f"healed {role}"] += 1
        if role == "api":
            created = await auth.create_api_token(
                actor=Principal.system(self.acme), name="fuzz", clock=self.clock
            )
            token = created.secret
        else:
            account_id = self.globex if role == "other_admin" else self.acme
            wanted = Role.OWNER if role == "owner" else Role(role.removeprefix("other_").upper())
            user = (
                await User.filter(account_id=account_id, role=wanted, status=UserStatus.ENABLED)
                .order_by("id")
                .first()
            )
            if user is None:
                token = await self._new_user_session(account_id, wanted)
            else:
                async with unit_of_work(self.clock.now()) as work:
                    token = (await start_session(work, user=user)).token
        self.tokens[role] = token
        return token

    async def _usable(self, token: str, role: str) -> bool:
        try:
            principal = await auth.authenticate(bearer=token, clock=self.clock)
        except DomainError:
            return False
        if role == "api":
            return principal.kind == ActorKind.API_TOKEN
        wanted = Role.OWNER if role == "owner" else Role(role.removeprefix("other_").upper())
        return principal.role == wanted

    async def _new_user_session(self, account_id: int, role: Role) -> str:
        system = Principal.system(account_id)
        account = await Account.get(id=account_id)
        if account.seats_in_use >= account.seats_total:
            await seats.change_seat_count(
                actor=system,
                total=account.seats_total + 1,
                accept_agreement=True,
                agreement_version=config.AGREEMENT_VERSION,
                clock=self.clock,
            )
        outcome = await invitations.invite_user(
            actor=system,
            email=f"healed{self.healed}@fuzz.example",
            first_name="Healed",
            last_name=str(self.healed),
            role=role,
            clock=self.clock,
        )
        grant = await invitations.accept_invitation(
            token=invitation_token(outcome.invitation.id, outcome.invitation.token_version),
            password=PASSWORD,
            clock=self.clock,
        )
        return grant.token

    async def _pools(self, role: str) -> Pools:
        own, other = (self.globex, self.acme) if role == "other_admin" else (self.acme, self.globex)
        rows = await User.all().values_list("id", "account_id", "email")
        states = await User.all().values_list("id", "account_id", "status", "role")
        self.emails_of = {self.acme: set(), self.globex: set()}
        for _, account_id, email in rows:
            self.emails_of.setdefault(account_id, set()).add(email.lower())
        # The foreign ADMIN aims mostly at Acme's users.
        target, beside = (other, own) if role == "other_admin" else (own, other)
        invitations = await Invitation.all().values_list(
            "id", "account_id", "token_version", "status"
        )
        tokens, stale = [], []
        for invitation_id, account_id, version, status in invitations:
            if role in ACME_ROLES and account_id != self.acme:
                continue
            if status == InvitationStatus.PENDING:
                tokens.append(invitation_token(invitation_id, version))
            else:
                stale.append(invitation_token(invitation_id, version))
            if version > 1:
                stale.append(invitation_token(invitation_id, version - 1))
        account = await Account.get(id=own)
        previous = self.pools

        def ids(*statuses: UserStatus, owner: bool = False) -> list[str]:
            return [
                str(i)
                for i, a, status, user_role in states
                if a == target and status in statuses and (owner or user_role != Role.OWNER)
            ]

        fitting = {
            "Mutation.assignLicense": ids(UserStatus.DISABLED),
            "Mutation.unassignLicense": ids(UserStatus.INVITED, UserStatus.ENABLED),
            "Mutation.resendInvitation": ids(UserStatus.INVITED, UserStatus.DISABLED),
            "Mutation.revokeInvitation": ids(UserStatus.INVITED),
            "Mutation.transferOwnership": ids(UserStatus.ENABLED),
        }
        return Pools(
            now=self.clock.now(),
            user_ids=[str(i) for i, a, _ in rows if a == target],
            foreign_user_ids=[str(i) for i, a, _ in rows if a == beside],
            fitting_user_ids=fitting,
            api_token_ids=[str(i) for i in await ApiToken.all().values_list("id", flat=True)],
            account_ids=[str(self.acme), str(self.globex)],
            emails=sorted({email for _, _, email in rows}),
            passwords=[PASSWORD, PASSWORD.upper(), "wrong password!"],
            invitation_tokens=tokens,
            stale_tokens=stale,
            cursors=list(previous.cursors) if previous else [],
            seats_total=account.seats_total,
            seats_in_use=account.seats_in_use,
            agreement_version=config.AGREEMENT_VERSION,
        )

    # -- a batch

    async def send_batch(self, role: str, batch: list[FuzzRequest]) -> None:
        self.batch_number += 1
        address = f"198.51.100.{self.batch_number % 250 + 1}"
        transport = httpx.ASGITransport(app=self.app, client=(address, 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            for request in batch:
                await self._send(http, role, request)
        await self._after_batch(role)

    async def _send(self, http: httpx.AsyncClient, role: str, request: FuzzRequest) -> None:
        headers = {name: value.encode("latin-1") for name, value in request.headers.items()}
        drawn_with, live = self.batch_token, self.tokens.get(role)
        if live != drawn_with and request.headers.get("Authorization") == f"Bearer {drawn_with}":
            headers["Authorization"] = f"Bearer {live}".encode("latin-1")
        self.sent += 1
        self.stats[f"role {role}"] += 1
        try:
            if request.method == "GET":
                response = await http.get("/graphql", params=request.params, headers=headers)
            else:
                response = await http.post("/graphql", content=request.body, headers=headers)
        except Exception as exc:  # the app raised: a 500 behind a real server
            self._problem(role, request, f"the app raised {exc!r}")
            return
        self.stats[f"status {response.status_code}"] += 1
        if role != "none" and '"UNAUTHENTICATED"' in response.text:
            # Signed out, released, demoted or revoked by this very batch: carry
            # on with a fresh session (or token) of the same role.
            await self._ensure_token(role)
        problems = self._check(role, request, response)
        problems.extend(await self._leaks(role, request, response.text))
        for problem in problems:
            self._problem(
                role,
                request,
                f"{problem}\n  response {response.status_code}: {response.text[:800]}",
            )

    def _check(self, role: str, request: FuzzRequest, response: httpx.Response) -> list[str]:
        problems = []
        if response.status_code >= 500:
            problems.append(f"status {response.status_code}")
        text = response.text
        if "Internal server error" in text or "Traceback" in text:
            problems.append("a masked internal error or a stack trace")
        if "server" in response.headers:
            problems.append(f"a Server header: {response.headers['server']}")
        if "set-cookie" in response.headers:
            problems.append("a cookie was set")
        if request.method == "GET" and not (request.params or {}).get("query"):
            return problems  # GraphiQL's page (development mode)
        try:
            body = json.loads(text)
        except ValueError:
            return [*problems, "the body is not JSON"]
        if not isinstance(body, dict):
            return [*problems, "the body is not a JSON object"]
        for error in body.get("errors") or ():
            code = (error.get("extensions") or {}).get("code") if isinstance(error, dict) else None
            self.stats[f"top-level {code}"] += 1
            if code is None:
                if isinstance(error, dict) and error.get("path"):
                    problems.append(f"a field error without extensions.code: {error}")
                else:
                    self.stats["validation error without code"] += 1
            elif code not in KNOWN_CODES:
                problems.append(f"unknown error code {code}")
        data = body.get("data")
        if isinstance(data, dict):
            problems.extend(self._check_data(role, request, data))
        for key, value in _walk(body):
            if key in ("endCursor", "cursor") and isinstance(value, str) and self.pools:
                self.pools.remember_cursor(value)
        return problems

    def _check_data(self, role: str, request: FuzzRequest, data: dict[str, Any]) -> list[str]:
        problems = []
        for name, value in data.items():
            if role == "none" and value is not None and request.root_fields:
                public = set(request.root_fields) <= {*PUBLIC_MUTATIONS, "__typename"}
                if not public:
                    problems.append(f"data without a token: {name}")
            if not isinstance(value, dict) or not isinstance(value.get("errors"), list):
                continue
            errors = value["errors"]
            if len(errors) > 1:
                problems.append(f"{name}: {len(errors)} payload errors")
            for error in errors:
                code = error.get("code")  # absent when the selection left it out
                if code is not None:
                    self.stats[f"refused {code}"] += 1
                if code is not None and code not in KNOWN_CODES:
                    problems.append(f"{name}: unknown payload code {code}")
            if errors:
                # Aliased `errors` (lists) and `__typename` ("…Payload") may be non-null.
                others = {
                    k: v
                    for k, v in value.items()
                    if v is not None
                    and not isinstance(v, list)
                    and not (isinstance(v, str) and v.endswith("Payload"))
                }
                if others:
                    problems.append(f"{name}: refused but returned {sorted(others)}")
            else:
                self.stats[f"success {name}"] += 1
        return problems

    async def _leaks(self, role: str, request: FuzzRequest, text: str) -> list[str]:
        """Emails of the other account in the response that the request did not
        send, and that are not (by now: this batch may have invited the same
        address) emails of the principal's own account too."""
        if role == "none":
            return []
        own = self.globex if role == "other_admin" else self.acme
        other = self.acme if own == self.globex else self.globex
        secret = self.emails_of.get(other, set()) - self.emails_of.get(own, set())
        asked = (request.body or b"").decode("ascii", "replace").lower()
        lowered = text.lower()
        problems = []
        for email in sorted(secret):
            if email not in lowered or email in asked:
                continue
            if await User.filter(account_id=own, email_key=email).exists():
                self.emails_of[own].add(email)
                continue
            problems.append(f"names {email} of the other account")
        return problems

    async def _after_batch(self, role: str) -> None:
        for problem in await invariants.violations(self.clock.now()):
            self._problem(role, None, f"invariant: {problem}")
        if self.guarded is not None:
            account_id, before, insert_only = self.guarded
            after = await invariants.account_rows(account_id)
            for problem in invariants.changed_rows(before, after, insert_only=insert_only):
                self._problem(role, None, f"account {account_id} changed: {problem}")

    def _problem(self, role: str, request: FuzzRequest | None, message: str) -> None:
        self.problem_count += 1
        if len(self.problems) < MAX_REPORTED:
            where = f"\n  request {request.describe()}" if request else ""
            self.problems.append(f"[batch {self.batch_number}, {role}] {message}{where}")

    def summary(self) -> str:
        lines = [f"{self.sent} requests, {self.healed} principals renewed, seed {FUZZ_SEED}"]
        for key, count in sorted(self.stats.items()):
            lines.append(f"  {key}: {count}")
        return "\n".join(lines)


def run_hypothesis(session: FuzzSession) -> None:
    """Runs in a worker thread; each batch's database work goes back to the event loop."""
    examples = math.ceil(FUZZ_REQUESTS / BATCH * 1.3)

    @seed(FUZZ_SEED)
    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
        print_blob=False,
    )
    @given(data=st.data())
    def one_batch(data: st.DataObject) -> None:
        # Uniform choices (Hypothesis' own favour the first of a list).
        rnd = data.draw(st.randoms(use_true_random=True), label="batch random")
        role, step = rnd.choice(ROLES), rnd.choice(CLOCK_STEPS)
        # Past the target the batch is still drawn (Hypothesis insists that
        # the same choices lead to the same draws) but not sent.
        done = session.sent >= FUZZ_REQUESTS
        allow_public = role != "other_admin"
        if done:
            token = None if role == "none" else "unused"
            pools = session.pools or Pools(now=session.clock.now())
        else:
            token, pools = anyio.from_thread.run(session.prepare, role, step)
        batch = [data.draw(requests(pools, token, allow_public=allow_public)) for _ in range(BATCH)]
        if not done:
            anyio.from_thread.run(session.send_batch, role, batch)

    one_batch()


async def test_fuzzed_requests_never_fail_the_server_nor_break_an_invariant(
    app, clock, principals, capsys
):
    started = time.monotonic()
    session = FuzzSession(app=app, clock=clock, principals=principals)
    await session.setup()
    assert not await invariants.violations(clock.now())

    await anyio.to_thread.run_sync(run_hypothesis, session)

    for problem in await invariants.violations(clock.now(), references=True):
        session._problem("end", None, f"invariant: {problem}")
    elapsed = time.monotonic() - started
    with capsys.disabled():
        print(f"\nfuzz: {session.summary()}\n  {elapsed:.1f} s")
    assert session.sent >= FUZZ_REQUESTS, session.summary()
    assert not session.problems, (
        f"{session.problem_count} problems (seed FUZZ_SEED={FUZZ_SEED}); the first:\n"
        + "\n".join(session.problems)
    )
