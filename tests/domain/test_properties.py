"""Stateful property test: random sequences of every domain operation on a real database.

A hypothesis `RuleBasedStateMachine` drives two accounts through invites,
accepts, resends, revokes, (un)assignments, edits, seat changes (with and
without a preview), ownership transfers, logins (also until rate limited),
logouts, bearer checks of sessions and API tokens, API token creation and
revocation, clock moves and the periodic jobs (invitation expiry, billing
period end, login-failure pruning), in any order, acting as the owner, an
API token, an ADMIN or a MEMBER. Before each call the machine reads the
database and predicts the outcome (success, or the exact refusal code, in
the contract's order of precedence); after it, it checks that

- a refusal changed nothing at all (whole-database snapshot; a refused login
  only records its failure), and a success wrote exactly the audit events and
  outbox emails the use case owes, all in the actor's account;
- the state the call promises holds (statuses, invitation, sessions, seats,
  who a reduction releases, in the SPEC's order);

and after EVERY step, for every account:

- seats_in_use <= seats_total, and seats_in_use == open licence assignments
  == users INVITED or ENABLED (each of them holding exactly one);
- exactly one OWNER, ENABLED and licensed;
- a live session (not ended, not expired) belongs to an ENABLED user only;
  an INVITED user has no password;
- INVITED <=> the user's latest invitation is a PENDING LICENSE invitation
  (possibly past its expiry while no job or licence-taking call has run), no
  other user has a PENDING LICENSE invitation, at most one PENDING
  invitation per user, PASSWORD_SET links only for the account's first owner;
- the seat total, scheduled reduction and period match the machine's own
  model, and the ledger matches the model's charges: each SEAT_INCREASE the
  prorated amount computed here independently, one RENEWAL per period passed
  (quantity x unit price, on the total after a scheduled reduction);
- every row (invitation, session, assignment, audit event) names users of its
  own account.

The second account also receives the first one's ids (and the reverse):
always NOT_FOUND, nothing changed.

Runtime: the default run is sized for ~30 s on SQLite. `PROPERTY_EXAMPLES`
(and optionally `PROPERTY_STEPS`) scale it up for long runs, e.g.
`PROPERTY_EXAMPLES=2000 pytest tests/domain/test_properties.py`.

Argon2's default cost (~50 ms a hash) would dominate the run, so the test
swaps in a cheap Argon2id hasher (same library and code paths, lower cost).
"""

from __future__ import annotations

import asyncio
import calendar
import os
import shutil
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest
from argon2 import PasswordHasher
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.configuration import set_hypothesis_home_dir
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    multiple,
    rule,
    run_state_machine_as_test,
)
from tortoise import connections

from domain import config, security
from domain.clock import FixedClock
from domain.db import close_database, init_database
from domain.enums import (
    ActorKind,
    AssignmentEndReason,
    AuditAction,
    BillingInterval,
    ChargeKind,
    EmailKind,
    InvitationKind,
    InvitationStatus,
    Role,
    UserStatus,
)
from domain.errors import DomainError, ErrorCode
from domain.models import (
    Account,
    ApiToken,
    AuditEvent,
    Charge,
    IdempotencyRecord,
    Invitation,
    LicenseAssignment,
    LoginFailure,
    OutboxMessage,
    Session,
    User,
)
from domain.principal import Principal
from domain.security import invitation_token, token_hash
from domain.services import auth, billing, invitations, licensing, ownership, profile, seats
from domain.services.accounts import create_account
from tests.support.database import POSTGRES_URL, truncate_postgres
from tests.support.principals import api_token_principal, owner_principal, user_principal

T = TypeVar("T")

DEFAULT_EXAMPLES = 40
DEFAULT_STEPS = 75
EXAMPLES = int(os.environ.get("PROPERTY_EXAMPLES") or DEFAULT_EXAMPLES)
STEPS = int(os.environ.get("PROPERTY_STEPS") or DEFAULT_STEPS)

# Where the clock starts. Account A's first period ends one month later
# (Jan 31 -> Feb 28: its periods then end on the 28th); account B's first
# period ends on the last day of the starting month, 23:30, so that its
# renewals walk month ends (Mar 31 -> Apr 30 -> May 31) or, yearly, from
# Feb 29 to Feb 28.
STARTS = st.sampled_from(
    [
        datetime(2026, 3, 10, 12, 0, 0, tzinfo=UTC),
        datetime(2026, 1, 31, 12, 0, 0, tzinfo=UTC),
        datetime(2026, 12, 31, 8, 15, 30, 250_000, tzinfo=UTC),
        datetime(2028, 2, 29, 10, 0, 0, tzinfo=UTC),
    ]
)
SECOND = timedelta(seconds=1)

# A small pool, so that emails collide: within an account (EMAIL_TAKEN, also
# case-insensitively) and across accounts (the same person in both, which a
# login without accountId cannot tell apart: ACCOUNT_REQUIRED).
EMAILS = (
    "ann@example.com",
    "ANN@Example.com",
    "bob@example.com",
    "cy@example.com",
    "dee@example.com",
    "eve@example.com",
    "fay@example.com",
    "owner@example.com",
)
WRONG_PASSWORD = "definitely-not-it"
ACCOUNT_KEYS = ("A", "B")

ACCOUNT = st.sampled_from(ACCOUNT_KEYS)
# Mostly the target's own account; sometimes the other one (must be NOT_FOUND).
CROSS = st.sampled_from([False, False, False, True])
ADMIN_ACTORS = st.sampled_from(["owner", "token", "admin", "member"])
ROLES = st.sampled_from([Role.MEMBER, Role.ADMIN])
STATUSES = st.sampled_from([UserStatus.DISABLED, UserStatus.INVITED, UserStatus.ENABLED])
PICK = st.integers(0, 7)
# Add, remove or keep licences; now and then beyond the limit (SEAT_LIMIT).
DELTAS = st.sampled_from([1, -1, 0, 2, -2, 3, -3, 100_000])
NAMES = st.sampled_from(["Ann", "Bo", "Cy", " Dee ", "Ann"])


def password_for(email_key: str) -> str:
    # The same person has the same password in every account it belongs to.
    return f"pw-{email_key}-0123456789"


def other(key: str) -> str:
    return "B" if key == "A" else "A"


def add_months(anchor: datetime, months: int) -> datetime:
    """The same day and time `months` later, clamped to the month's last day."""
    year, month = divmod(anchor.year * 12 + anchor.month - 1 + months, 12)
    day = min(anchor.day, calendar.monthrange(year, month + 1)[1])
    return anchor.replace(year=year, month=month + 1, day=day)


def half_up_div(numerator: int, denominator: int) -> int:
    quotient, remainder = divmod(numerator, denominator)
    return quotient + (1 if 2 * remainder >= denominator else 0)


# Rows of these tables change in place: compared whole. The others only ever
# grow (by the use cases under test): compared by row count and highest id.
MUTABLE_TABLES = (Account, User, ApiToken, Session, LicenseAssignment, Invitation)
APPEND_ONLY_TABLES = (AuditEvent, Charge, OutboxMessage, IdempotencyRecord, LoginFailure)
_GROWTH_SQL = "SELECT " + ", ".join(
    f"(SELECT COUNT(*) FROM {model._meta.db_table}) AS c{i}, "
    f"(SELECT COALESCE(MAX(id), 0) FROM {model._meta.db_table}) AS m{i}"
    for i, model in enumerate(APPEND_ONLY_TABLES)
)


async def database_state(*, whole: bool = True) -> dict[str, Any]:
    """The whole database, cheaply enough to take before every call that must
    be refused (a refusal leaves it exactly as it was); `whole=False`: only the
    size of the append-only tables."""
    client = connections.get("default")
    state: dict[str, Any] = {}
    for model in MUTABLE_TABLES if whole else ():
        table = model._meta.db_table
        _, rows = await client.execute_query(f"SELECT * FROM {table} ORDER BY id")
        state[table] = [tuple(row) for row in rows]
    _, (growth,) = await client.execute_query(_GROWTH_SQL)
    for i, model in enumerate(APPEND_ONLY_TABLES):
        state[model._meta.db_table] = (int(growth[f"c{i}"]), int(growth[f"m{i}"]))
    return state


@dataclass
class AccountModel:
    """What the machine expects of one account, independently of the database."""

    key: str
    id: int
    first_owner_id: int
    anchor: datetime
    interval: BillingInterval
    price: int
    total: int
    scheduled: int | None = None
    index: int = 0
    # (quantity, amount) of each SEAT_INCREASE, in order.
    increases: list[tuple[int, int]] = field(default_factory=list)
    # (period start, period end, quantity, amount) of each RENEWAL, in order.
    renewals: list[tuple[datetime, datetime, int, int]] = field(default_factory=list)

    def bounds(self, index: int | None = None) -> tuple[datetime, datetime]:
        """Start and end of period `index` (the current one by default); period 0
        ends at the anchor, the first period end."""
        step = 12 if self.interval == BillingInterval.YEAR else 1
        index = self.index if index is None else index
        return add_months(self.anchor, (index - 1) * step), add_months(self.anchor, index * step)


@dataclass
class Stats:
    steps: int = 0
    examples: int = 0
    invariant_checks: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)


class LicensesMachine(RuleBasedStateMachine):
    """Bound to an event loop and a database factory by `machine_for`."""

    loop: asyncio.AbstractEventLoop
    new_database_url: Callable[[], str]
    drop_database: Callable[[str], None]
    stats: Stats

    # Every user ever created, in any state. Some rules (accept_invited,
    # assign_disabled, unassign_licensed, ...) pick their target among the
    # users in one status instead, which steers the sequences towards the
    # calls that succeed and the states behind them.
    users = Bundle("users")
    sessions = Bundle("sessions")

    def __init__(self) -> None:
        super().__init__()
        self.clock = FixedClock(datetime(2026, 3, 10, 12, 0, 0, tzinfo=UTC))
        self.accounts: dict[str, AccountModel] = {}
        self.key_of: dict[int, str] = {}
        self.last_checked_audit_id = 0
        self.new_mail: list[OutboxMessage] = []
        # Every API token's secret, oldest first (the accounts' own included).
        self.token_secrets: list[str] = []
        self.database_url = self.new_database_url()
        self.stats.examples += 1
        self.run(self._open())

    # ------------------------------------------------------------------ plumbing

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(coroutine)

    async def _open(self) -> None:
        await init_database(self.database_url)
        if POSTGRES_URL:
            await truncate_postgres()

    async def _create_accounts(self, start: datetime, b_interval: BillingInterval) -> None:
        self.clock.at = start
        last_day = calendar.monthrange(start.year, start.month)[1]
        a = await create_account(
            name="Acme",
            owner_email="owner@example.com",
            owner_first_name="Olive",
            owner_last_name="Owner",
            seats=4,
            seat_price_cents=1000,
            clock=self.clock,
        )
        b = await create_account(
            name="Bravo",
            owner_email="bob@example.com",
            owner_first_name="Bob",
            owner_last_name="Boss",
            seats=3,
            seat_price_cents=999,
            currency="EUR",
            interval=b_interval,
            current_period_end=start.replace(day=last_day, hour=23, minute=30, second=0),
            clock=self.clock,
        )
        for key, created in (("A", a), ("B", b)):
            row = await Account.get(id=created.account_id)
            self.accounts[key] = AccountModel(
                key=key,
                id=row.id,
                first_owner_id=created.owner_user_id,
                anchor=row.billing_anchor,
                interval=BillingInterval(row.billing_interval),
                price=row.seat_price_cents,
                total=row.seats_total,
            )
            self.key_of[row.id] = key
            self.token_secrets.append(created.api_token)
        a_end = add_months(start.replace(microsecond=0), 1)
        assert (self.accounts["A"].anchor, self.accounts["A"].bounds()[0]) == (
            a_end,
            add_months(a_end, -1),
        )

    def teardown(self) -> None:
        self.run(close_database())
        self.drop_database(self.database_url)

    async def _principal(self, key: str, kind: str) -> Principal:
        """A fresh principal of account `key`: its owner, its API token, or the
        first ENABLED ADMIN / MEMBER user (the token when there is none)."""
        model = self.accounts[key]
        if kind == "token":
            return await self._token_principal(key)
        if kind == "owner":
            owner = await User.get(account_id=model.id, role=Role.OWNER)
            return owner_principal(model.id, owner.id)
        role = Role.ADMIN if kind == "admin" else Role.MEMBER
        user = (
            await User.filter(account_id=model.id, role=role, status=UserStatus.ENABLED)
            .order_by("id")
            .first()
        )
        if user is None:
            return await self._token_principal(key)
        return user_principal(model.id, user.id, role)

    async def _token_principal(self, key: str) -> Principal:
        """The account's oldest API token that still works (the owner when none does)."""
        model = self.accounts[key]
        token = (
            await ApiToken.filter(account_id=model.id, revoked_at__isnull=True)
            .order_by("id")
            .first()
        )
        if token is None:
            return await self._principal(key, "owner")
        return api_token_principal(model.id, token.id)

    async def _pick(self, status: UserStatus, pick: int, *, owner: bool = True) -> int | None:
        """The pick-th user (both accounts, by id, wrapping) in `status`."""
        query = User.filter(status=status)
        if not owner:
            query = query.exclude(role=Role.OWNER)
        ids = await query.order_by("id").values_list("id", flat=True)
        return int(ids[pick % len(ids)]) if ids else None

    async def _actor_for(self, user: User, actor: str, cross: bool) -> Principal:
        key = self.key_of[user.account_id]
        return await self._principal(other(key) if cross else key, actor)

    async def _overdue(self, account_id: int) -> list[Invitation]:
        """Pending LICENSE invitations past expiry: what a licence-taking call expires first."""
        return await Invitation.filter(
            account_id=account_id,
            kind=InvitationKind.LICENSE,
            status=InvitationStatus.PENDING,
            expires_at__lte=self.clock.now(),
        ).order_by("id")

    async def _available_after_expiry(self, account_id: int) -> int:
        account = await Account.get(id=account_id)
        overdue = len(await self._overdue(account_id))
        return account.seats_total - (account.seats_in_use - overdue)

    @staticmethod
    async def _latest_invitation(user_id: int) -> Invitation | None:
        return await Invitation.filter(user_id=user_id).order_by("-id").first()

    async def _attempt(
        self,
        what: str,
        expected: ErrorCode | None,
        call: Callable[[], Awaitable[T]],
        *,
        refusal_may_write: tuple[str, ...] = (),
    ) -> tuple[bool, T | None, list[AuditEvent]]:
        """Run one call; compare its outcome with `expected` (None: success).

        Returns (succeeded, result, audit events it wrote). A refusal must leave
        every table (but `refusal_may_write`) exactly as it was.
        """
        self.stats.steps += 1
        # A call predicted to succeed and refused fails on the outcome already.
        before = await database_state(whole=expected is not None)
        last_audit_id = before["audit_events"][1]
        try:
            result = await call()
        except DomainError as error:
            self.stats.outcomes[f"{what}:{error.code.value}"] += 1
            assert error.code == expected, (
                f"{what} refused with {error!r}; expected {expected or 'success'}"
            )
            after = await database_state()
            for table, rows in before.items():
                if table not in refusal_may_write:
                    assert after[table] == rows, f"refused {what} changed table {table}"
            return False, None, []
        self.stats.outcomes[f"{what}:ok"] += 1
        assert expected is None, f"{what} succeeded; expected {expected}"
        events = await AuditEvent.filter(id__gt=last_audit_id).order_by("id")
        self.new_mail = await OutboxMessage.filter(id__gt=before["outbox_messages"][1])
        return True, result, events

    def _expect_audit(
        self,
        what: str,
        events: list[AuditEvent],
        account_id: int,
        expected: Counter[AuditAction],
        mail: Counter[EmailKind] | None = None,
        *,
        one_account: bool = True,
    ) -> None:
        """The audit events and emails a successful call wrote in `account_id`
        (with `one_account`, nothing in any other account)."""
        got = Counter(AuditAction(event.action) for event in events)
        assert got == +expected, f"{what}: audit {dict(got)}, expected {dict(+expected)}"
        for event in events:
            assert event.account_id == account_id, f"{what}: audit event in another account"
        mine = [message for message in self.new_mail if message.account_id == account_id]
        if one_account:
            assert len(mine) == len(self.new_mail), f"{what}: email in another account"
        got_mail = Counter(EmailKind(message.kind) for message in mine)
        wanted = +(mail or Counter())
        assert got_mail == wanted, f"{what}: emails {dict(got_mail)}, expected {dict(wanted)}"

    # ------------------------------------------------------------------ set-up

    @initialize(
        target=users,
        start=STARTS,
        b_interval=st.sampled_from([BillingInterval.MONTH, BillingInterval.YEAR]),
        people=st.lists(
            st.tuples(ACCOUNT, st.sampled_from(EMAILS), ROLES, st.booleans()), max_size=4
        ),
        owners_set_password=st.sampled_from([(), ("A",), ("B",), ("A", "B")]),
    )
    def populate(
        self,
        start: datetime,
        b_interval: BillingInterval,
        people: list[tuple[str, str, Role, bool]],
        owners_set_password: tuple[str, ...],
    ) -> Any:
        """The two accounts and their owners, plus a few users invited (and some
        accepted) before the steps."""
        self.run(self._create_accounts(start, b_interval))
        return multiple(*self.run(self._populate(people, owners_set_password)))

    async def _populate(
        self, people: list[tuple[str, str, Role, bool]], owners_set_password: tuple[str, ...]
    ) -> list[int]:
        user_ids = [model.first_owner_id for model in self.accounts.values()]
        for key in owners_set_password:
            await self._accept(self.accounts[key].first_owner_id, "latest", weak=False)
        for key, email, role, accepts in people:
            user_id = await self._invite(key, "owner", email, role)
            if isinstance(user_id, int):
                user_ids.append(user_id)
                if accepts:
                    await self._accept(user_id, "latest", weak=False)
        return user_ids

    # ------------------------------------------------------------------ invite

    @rule(
        target=users,
        key=ACCOUNT,
        actor=ADMIN_ACTORS,
        email=st.sampled_from(EMAILS),
        role=st.sampled_from([Role.MEMBER, Role.ADMIN, Role.MEMBER, Role.ADMIN, Role.OWNER]),
    )
    def invite(self, key: str, actor: str, email: str, role: Role) -> Any:
        return self.run(self._invite(key, actor, email, role))

    async def _invite(self, key: str, actor_kind: str, email: str, role: Role) -> Any:
        model = self.accounts[key]
        actor = await self._principal(key, actor_kind)
        now = self.clock.now()
        email_key = email.lower()
        overdue = await self._overdue(model.id)
        expected: ErrorCode | None = None
        if not actor.is_admin:
            expected = ErrorCode.FORBIDDEN
        elif role == Role.OWNER:
            expected = ErrorCode.OWNER_ROLE_IMMUTABLE
        elif await User.filter(account_id=model.id, email_key=email_key).exists():
            expected = ErrorCode.EMAIL_TAKEN
        elif await self._available_after_expiry(model.id) <= 0:
            expected = ErrorCode.NO_AVAILABLE_LICENSES

        ok, outcome, events = await self._attempt(
            "invite",
            expected,
            lambda: invitations.invite_user(
                actor=actor,
                email=email,
                first_name="New",
                last_name="Person",
                role=role,
                clock=self.clock,
            ),
        )
        if not ok or outcome is None:
            return multiple()
        user = await User.get(id=outcome.user.id)
        assert (user.account_id, user.email_key, user.role, user.status) == (
            model.id,
            email_key,
            role,
            UserStatus.INVITED,
        )
        invitation = await self._latest_invitation(user.id)
        assert invitation is not None
        assert (invitation.kind, invitation.status) == (
            InvitationKind.LICENSE,
            InvitationStatus.PENDING,
        )
        assert invitation.expires_at == now + config.current().invitation_ttl
        self._expect_audit(
            "invite",
            events,
            model.id,
            Counter({AuditAction.USER_INVITED: 1, AuditAction.INVITATION_EXPIRED: len(overdue)}),
            Counter({EmailKind.INVITATION: 1}),
        )
        for invitation in overdue:
            await invitation.refresh_from_db()
            assert invitation.status == InvitationStatus.EXPIRED
        return user.id

    # ------------------------------------------------------------------ accept

    @rule(
        target=sessions,
        user_id=users,
        which=st.sampled_from(["latest", "latest", "latest", "stale", "first"]),
        weak=st.sampled_from([False, False, False, True]),
    )
    def accept(self, user_id: int, which: str, weak: bool) -> Any:
        return self.run(self._accept(user_id, which, weak))

    @rule(target=sessions, pick=PICK)
    def accept_invited(self, pick: int) -> Any:
        user_id = self.run(self._pick(UserStatus.INVITED, pick))
        if user_id is None:
            return multiple()
        return self.run(self._accept(user_id, "latest", weak=False))

    async def _accept(self, user_id: int, which: str, weak: bool) -> Any:
        user = await User.get(id=user_id)
        sent = await Invitation.filter(user_id=user_id).order_by("id")
        if not sent:
            return multiple()
        invitation = sent[0] if which == "first" else sent[-1]
        now = self.clock.now()
        password = "short" if weak else password_for(user.email_key)
        if which == "stale":
            # The token before the last resend, or one that never existed.
            token = (
                invitation_token(invitation.id, invitation.token_version - 1)
                if invitation.token_version > 1
                else "x" * 43
            )
        else:
            token = invitation_token(invitation.id, invitation.token_version)

        expected: ErrorCode | None = None
        if weak:
            expected = ErrorCode.WEAK_PASSWORD
        elif which == "stale":
            expected = ErrorCode.INVITATION_INVALID
        elif invitation.status == InvitationStatus.EXPIRED:
            expected = ErrorCode.INVITATION_EXPIRED
        elif (
            invitation.status != InvitationStatus.PENDING
            or user.status == UserStatus.DISABLED
            or (invitation.kind == InvitationKind.LICENSE and user.status != UserStatus.INVITED)
        ):
            expected = ErrorCode.INVITATION_INVALID
        elif invitation.expires_at <= now:
            expected = ErrorCode.INVITATION_EXPIRED

        ok, grant, events = await self._attempt(
            "accept",
            expected,
            lambda: invitations.accept_invitation(token=token, password=password, clock=self.clock),
        )
        if not ok or grant is None:
            return multiple()
        after = await User.get(id=user_id)
        expected_status = (
            UserStatus.ENABLED if invitation.kind == InvitationKind.LICENSE else user.status
        )
        assert after.status == expected_status
        assert security.verify_password(after.password_hash, password)
        await invitation.refresh_from_db()
        assert (invitation.status, invitation.accepted_at) == (InvitationStatus.ACCEPTED, now)
        session = await Session.get(token_hash=token_hash(grant.token))
        assert (session.user_id, session.account_id, session.ended_at) == (
            user_id,
            user.account_id,
            None,
        )
        assert session.expires_at == now + config.current().session_ttl
        self._expect_audit(
            "accept", events, user.account_id, Counter({AuditAction.INVITATION_ACCEPTED: 1})
        )
        return grant.token

    # ------------------------------------------------------------------ resend / revoke

    @rule(user_id=users, actor=ADMIN_ACTORS, cross=CROSS)
    def resend(self, user_id: int, actor: str, cross: bool) -> None:
        self.run(self._resend(user_id, actor, cross))

    @rule(status=STATUSES, pick=PICK, actor=ADMIN_ACTORS)
    def resend_by_status(self, status: UserStatus, pick: int, actor: str) -> None:
        user_id = self.run(self._pick(status, pick))
        if user_id is not None:
            self.run(self._resend(user_id, actor, cross=False))

    async def _resend(self, user_id: int, actor_kind: str, cross: bool) -> bool:
        user = await User.get(id=user_id)
        actor = await self._actor_for(user, actor_kind, cross)
        invitation = await self._latest_invitation(user_id)
        now = self.clock.now()
        overdue = await self._overdue(user.account_id)
        takes_license = False
        expected: ErrorCode | None = None
        if not actor.is_admin:
            expected = ErrorCode.FORBIDDEN
        elif actor.account_id != user.account_id:
            expected = ErrorCode.NOT_FOUND
        elif invitation is None or invitation.status not in (
            InvitationStatus.PENDING,
            InvitationStatus.EXPIRED,
        ):
            expected = ErrorCode.INVITATION_INVALID
        elif invitation.kind == InvitationKind.LICENSE and (
            invitation.status == InvitationStatus.EXPIRED or invitation.expires_at <= now
        ):
            takes_license = True
            if invitation.status == InvitationStatus.EXPIRED:
                # The job ran: the user holds nothing and needs a free licence.
                assert user.status == UserStatus.DISABLED
                if await self._available_after_expiry(user.account_id) <= 0:
                    expected = ErrorCode.NO_AVAILABLE_LICENSES
            # Pending past expiry: expired first, its own licence comes back.

        ok, _, events = await self._attempt(
            "resend",
            expected,
            lambda: invitations.resend_invitation(
                actor=actor, user_id=str(user_id), clock=self.clock
            ),
        )
        if not ok:
            return False
        assert invitation is not None
        version = invitation.token_version
        await invitation.refresh_from_db()
        assert invitation.status == InvitationStatus.PENDING
        assert invitation.token_version == version + 1
        assert invitation.expires_at == now + config.current().invitation_ttl
        after = await User.get(id=user_id)
        if invitation.kind == InvitationKind.LICENSE:
            assert after.status == UserStatus.INVITED
        else:
            assert after.status == user.status
        self._expect_audit(
            "resend",
            events,
            user.account_id,
            Counter(
                {
                    AuditAction.INVITATION_RESENT: 1,
                    AuditAction.INVITATION_EXPIRED: len(overdue) if takes_license else 0,
                }
            ),
            Counter(
                {
                    EmailKind.INVITATION_RESENT
                    if invitation.kind == InvitationKind.LICENSE
                    else EmailKind.OWNER_PASSWORD_SET: 1
                }
            ),
        )
        return True

    @rule(user_id=users, actor=ADMIN_ACTORS, cross=CROSS)
    def revoke(self, user_id: int, actor: str, cross: bool) -> None:
        self.run(self._revoke(user_id, actor, cross))

    @rule(pick=PICK, actor=ADMIN_ACTORS)
    def revoke_invited(self, pick: int, actor: str) -> None:
        user_id = self.run(self._pick(UserStatus.INVITED, pick))
        if user_id is not None:
            self.run(self._revoke(user_id, actor, cross=False))

    async def _revoke(self, user_id: int, actor_kind: str, cross: bool) -> bool:
        user = await User.get(id=user_id)
        actor = await self._actor_for(user, actor_kind, cross)
        invitation = await self._latest_invitation(user_id)
        now = self.clock.now()
        expected: ErrorCode | None = None
        if not actor.is_admin:
            expected = ErrorCode.FORBIDDEN
        elif actor.account_id != user.account_id:
            expected = ErrorCode.NOT_FOUND
        elif user.role == Role.OWNER or (
            invitation is not None and invitation.kind == InvitationKind.PASSWORD_SET
        ):
            expected = ErrorCode.OWNER_LICENSE_REQUIRED
        elif (
            invitation is None
            or invitation.status != InvitationStatus.PENDING
            or invitation.expires_at <= now
        ):
            expected = ErrorCode.INVITATION_INVALID

        ok, _, events = await self._attempt(
            "revoke",
            expected,
            lambda: invitations.revoke_invitation(
                actor=actor, user_id=str(user_id), clock=self.clock
            ),
        )
        if not ok:
            return False
        assert invitation is not None
        await invitation.refresh_from_db()
        assert invitation.status == InvitationStatus.REVOKED
        after = await User.get(id=user_id)
        assert after.status == UserStatus.DISABLED
        await self._expect_ended(user_id, AssignmentEndReason.INVITATION_REVOKED)
        self._expect_audit(
            "revoke", events, user.account_id, Counter({AuditAction.INVITATION_REVOKED: 1})
        )
        return True

    async def _expect_ended(self, user_id: int, reason: AssignmentEndReason) -> None:
        last = await LicenseAssignment.filter(user_id=user_id).order_by("-id").first()
        assert last is not None
        assert (last.unassigned_at, last.end_reason) == (self.clock.now(), reason)

    # ------------------------------------------------------------------ assign / unassign

    @rule(user_id=users, actor=ADMIN_ACTORS, cross=CROSS)
    def assign(self, user_id: int, actor: str, cross: bool) -> None:
        self.run(self._assign(user_id, actor, cross))

    @rule(pick=PICK, actor=ADMIN_ACTORS)
    def assign_disabled(self, pick: int, actor: str) -> None:
        user_id = self.run(self._pick(UserStatus.DISABLED, pick))
        if user_id is not None:
            self.run(self._assign(user_id, actor, cross=False))

    async def _assign(self, user_id: int, actor_kind: str, cross: bool) -> bool:
        user = await User.get(id=user_id)
        actor = await self._actor_for(user, actor_kind, cross)
        overdue = await self._overdue(user.account_id)
        expected: ErrorCode | None = None
        if not actor.is_admin:
            expected = ErrorCode.FORBIDDEN
        elif actor.account_id != user.account_id:
            expected = ErrorCode.NOT_FOUND
        elif user.status != UserStatus.DISABLED:
            expected = ErrorCode.ALREADY_LICENSED
        elif await self._available_after_expiry(user.account_id) <= 0:
            expected = ErrorCode.NO_AVAILABLE_LICENSES

        ok, _, events = await self._attempt(
            "assign",
            expected,
            lambda: licensing.assign_license(actor=actor, user_id=str(user_id), clock=self.clock),
        )
        if not ok:
            return False
        after = await User.get(id=user_id)
        if user.password_hash is not None:
            assert after.status == UserStatus.ENABLED
        else:
            assert after.status == UserStatus.INVITED
            invitation = await self._latest_invitation(user_id)
            assert invitation is not None
            assert (invitation.kind, invitation.status, invitation.created_at) == (
                InvitationKind.LICENSE,
                InvitationStatus.PENDING,
                self.clock.now(),
            )
        self._expect_audit(
            "assign",
            events,
            user.account_id,
            Counter(
                {AuditAction.LICENSE_ASSIGNED: 1, AuditAction.INVITATION_EXPIRED: len(overdue)}
            ),
            Counter({EmailKind.INVITATION: 0 if user.password_hash else 1}),
        )
        return True

    @rule(user_id=users, actor=ADMIN_ACTORS, cross=CROSS)
    def unassign(self, user_id: int, actor: str, cross: bool) -> None:
        self.run(self._unassign(user_id, actor, cross))

    @rule(status=st.sampled_from([UserStatus.INVITED, UserStatus.ENABLED]), pick=PICK)
    def unassign_licensed(self, status: UserStatus, pick: int) -> None:
        user_id = self.run(self._pick(status, pick, owner=False))
        if user_id is not None:
            self.run(self._unassign(user_id, "owner", cross=False))

    async def _unassign(self, user_id: int, actor_kind: str, cross: bool) -> bool:
        user = await User.get(id=user_id)
        actor = await self._actor_for(user, actor_kind, cross)
        expected: ErrorCode | None = None
        if not actor.is_admin:
            expected = ErrorCode.FORBIDDEN
        elif actor.account_id != user.account_id:
            expected = ErrorCode.NOT_FOUND
        elif user.role == Role.OWNER:
            expected = ErrorCode.OWNER_LICENSE_REQUIRED
        elif user.status == UserStatus.DISABLED:
            expected = ErrorCode.NOT_LICENSED

        ok, _, events = await self._attempt(
            "unassign",
            expected,
            lambda: licensing.unassign_license(actor=actor, user_id=str(user_id), clock=self.clock),
        )
        if not ok:
            return False
        after = await User.get(id=user_id)
        assert after.status == UserStatus.DISABLED
        assert not await Invitation.filter(
            user_id=user_id, status=InvitationStatus.PENDING
        ).exists()
        assert not await Session.filter(user_id=user_id, ended_at__isnull=True).exists()
        await self._expect_ended(user_id, AssignmentEndReason.UNASSIGNED)
        self._expect_audit(
            "unassign",
            events,
            user.account_id,
            Counter({AuditAction.LICENSE_UNASSIGNED: 1}),
            Counter({EmailKind.LICENSE_REMOVED: 1}),
        )
        return True

    # ------------------------------------------------------------------ edit

    @rule(
        user_id=users,
        actor=st.sampled_from(["owner", "token", "admin", "member", "self"]),
        cross=CROSS,
        first_name=st.one_of(st.none(), NAMES, st.just("  ")),
        last_name=st.one_of(st.none(), NAMES),
        role=st.sampled_from([None, None, Role.ADMIN, Role.MEMBER, Role.OWNER]),
        qualification=st.sampled_from([None, None, "PMP", "", "CISSP"]),
    )
    def update_user(
        self,
        user_id: int,
        actor: str,
        cross: bool,
        first_name: str | None,
        last_name: str | None,
        role: Role | None,
        qualification: str | None,
    ) -> None:
        self.run(
            self._update_user(user_id, actor, cross, first_name, last_name, role, qualification)
        )

    async def _update_user(
        self,
        user_id: int,
        actor_kind: str,
        cross: bool,
        first_name: str | None,
        last_name: str | None,
        role: Role | None,
        qualification: str | None,
    ) -> None:
        user = await User.get(id=user_id)
        if actor_kind == "self" and user.status == UserStatus.ENABLED and not cross:
            # The user edits itself (whatever its role).
            actor = user_principal(user.account_id, user.id, Role(user.role))
        else:
            actor = await self._actor_for(
                user, "member" if actor_kind == "self" else actor_kind, cross
            )
        wanted: dict[str, Any] = {}
        if first_name is not None:
            wanted["first_name"] = first_name.strip()
        if last_name is not None:
            wanted["last_name"] = last_name.strip()
        if qualification is not None:
            wanted["qualification"] = qualification.strip() or None
        if role is not None:
            wanted["role"] = role

        expected: ErrorCode | None = None
        if actor.account_id != user.account_id:
            expected = ErrorCode.NOT_FOUND
        elif not actor.is_admin and (
            actor.user_id != user.id or role is not None or qualification is not None
        ):
            expected = ErrorCode.FORBIDDEN
        elif first_name is not None and not first_name.strip():
            expected = ErrorCode.INVALID_INPUT
        elif role is not None and (role == Role.OWNER or user.role == Role.OWNER):
            expected = ErrorCode.OWNER_ROLE_IMMUTABLE
        changed = {name for name, value in wanted.items() if getattr(user, name) != value}

        ok, _, events = await self._attempt(
            "update_user",
            expected,
            lambda: profile.update_user(
                actor=actor,
                user_id=str(user_id),
                first_name=first_name,
                last_name=last_name,
                role=role,
                qualification=qualification,
                clock=self.clock,
            ),
        )
        if not ok:
            return
        after = await User.get(id=user_id)
        for name, value in wanted.items():
            assert getattr(after, name) == value, name
        assert after.sort_name == f"{after.first_name} {after.last_name}".casefold()
        self._expect_audit(
            "update_user",
            events,
            user.account_id,
            Counter({AuditAction.USER_UPDATED: 1 if changed else 0}),
        )

    # ------------------------------------------------------------------ seats

    @rule(
        key=ACCOUNT,
        actor=ADMIN_ACTORS,
        delta=DELTAS,
        agreement=st.sampled_from(["ok", "ok", "ok", "ok", "not_accepted", "outdated"]),
        amount=st.sampled_from([None, None, "right", "wrong"]),
    )
    def change_seat_count(
        self, key: str, actor: str, delta: int, agreement: str, amount: str | None
    ) -> None:
        self.run(self._change_seat_count(key, actor, delta, agreement, amount))

    @rule(key=ACCOUNT, delta=DELTAS)
    def owner_changes_seat_count(self, key: str, delta: int) -> None:
        self.run(self._change_seat_count(key, "owner", delta, "ok", None))

    @rule(
        target=users,
        key=ACCOUNT,
        emails=st.lists(st.sampled_from(EMAILS), min_size=1, max_size=3, unique=True),
        role=ROLES,
        period_ends=st.sampled_from([True, True, False]),
    )
    def reduce_then_invite(self, key: str, emails: list[str], role: Role, period_ends: bool) -> Any:
        """A reduction to the licences in use, then more taken anyway: the
        period end must release someone (in the SPEC's order)."""
        model = self.accounts[key]
        if period_ends:
            # Close to the end, so that these invitations are still pending then.
            self.clock.at = max(self.clock.at, model.bounds()[1] - timedelta(days=1))
        in_use = self.run(Account.get(id=model.id)).seats_in_use
        if in_use + len(emails) > model.total:
            # Room for the newcomers first (charged now), so that they come in.
            self.run(
                self._change_seat_count(
                    key, "owner", in_use + len(emails) - model.total, "ok", None
                )
            )
        self.run(self._change_seat_count(key, "owner", in_use - model.total, "ok", None))
        invited = [self.run(self._invite(key, "owner", email, role)) for email in emails]
        if period_ends:
            self.period_ends(key)
        return multiple(*(user_id for user_id in invited if isinstance(user_id, int)))

    @rule(key=ACCOUNT, delta=DELTAS, later=st.sampled_from([timedelta(0), 90 * SECOND]))
    def preview_then_change_seat_count(self, key: str, delta: int, later: timedelta) -> None:
        """The preview's amount and prorationDate, passed back a little later, hold."""
        self.run(self._preview_then_change_seat_count(key, delta, later))

    async def _preview_then_change_seat_count(self, key: str, delta: int, later: timedelta) -> None:
        model = self.accounts[key]
        owner = await self._principal(key, "owner")
        total = model.total + delta
        if not 1 <= total <= 100_000:
            return
        preview = await seats.preview_seat_change(actor=owner, total=total, clock=self.clock)
        assert preview.proration_date == self.clock.now().replace(microsecond=0)
        assert preview.amount_due_now_cents == self._due(model, delta, preview.proration_date)
        self.clock.advance(later)
        await self._change_seat_count(
            key,
            "owner",
            delta,
            "ok",
            "preview",
            proration_date=preview.proration_date,
            previewed=preview.amount_due_now_cents,
        )

    @staticmethod
    def _due(model: AccountModel, delta: int, at: datetime) -> int:
        """added x price x remaining / length, whole seconds, half up: computed here."""
        start, end = model.bounds()
        length = (end - start) // SECOND
        remaining = min(max((end - at) // SECOND, 0), length)
        return half_up_div(max(delta, 0) * model.price * remaining, length)

    async def _change_seat_count(
        self,
        key: str,
        actor_kind: str,
        delta: int,
        agreement: str,
        amount: str | None,
        *,
        proration_date: datetime | None = None,
        previewed: int | None = None,
    ) -> None:
        model = self.accounts[key]
        actor = await self._principal(key, actor_kind)
        account = await Account.get(id=model.id)
        total = model.total + delta
        at = proration_date or self.clock.now().replace(microsecond=0)
        due = self._due(model, delta, at)
        expected_amount = {None: None, "right": due, "wrong": due + 1, "preview": previewed}[amount]

        expected: ErrorCode | None = None
        if not actor.is_admin:
            expected = ErrorCode.FORBIDDEN
        elif not 1 <= total <= 100_000:
            expected = ErrorCode.SEAT_LIMIT
        elif agreement == "not_accepted":
            expected = ErrorCode.AGREEMENT_NOT_ACCEPTED
        elif agreement == "outdated":
            expected = ErrorCode.AGREEMENT_OUTDATED
        elif amount == "wrong":
            expected = ErrorCode.AMOUNT_MISMATCH
        elif total < account.seats_in_use:
            expected = ErrorCode.SEATS_BELOW_USAGE

        ok, outcome, events = await self._attempt(
            "change_seat_count",
            expected,
            lambda: seats.change_seat_count(
                actor=actor,
                total=total,
                accept_agreement=agreement != "not_accepted",
                agreement_version=(
                    config.AGREEMENT_VERSION if agreement != "outdated" else "1999-01-01"
                ),
                expected_amount_due_cents=expected_amount,
                proration_date=proration_date,
                clock=self.clock,
            ),
        )
        if not ok or outcome is None:
            return
        audit: Counter[AuditAction] = Counter()
        if delta > 0:
            assert outcome.charge is not None
            assert (outcome.charge.quantity, outcome.charge.amount_cents) == (delta, due)
            if model.scheduled is not None:
                audit[AuditAction.SEAT_REDUCTION_CANCELLED] = 1
            audit[AuditAction.SEATS_INCREASED] = 1
            model.total = total
            model.scheduled = None
            model.increases.append((delta, due))
        elif delta < 0:
            assert outcome.charge is None
            audit[AuditAction.SEAT_REDUCTION_SCHEDULED] = 1
            model.scheduled = total
        else:
            assert outcome.charge is None
            if model.scheduled is not None:
                audit[AuditAction.SEAT_REDUCTION_CANCELLED] = 1
            model.scheduled = None
        receipt = Counter({EmailKind.SEAT_CHANGE_RECEIPT: 1 if audit else 0})
        self._expect_audit("change_seat_count", events, model.id, audit, receipt)

    @rule(key=ACCOUNT, actor=ADMIN_ACTORS)
    def cancel_scheduled_seat_change(self, key: str, actor: str) -> None:
        self.run(self._cancel_scheduled_seat_change(key, actor))

    async def _cancel_scheduled_seat_change(self, key: str, actor_kind: str) -> None:
        model = self.accounts[key]
        actor = await self._principal(key, actor_kind)
        expected = None if actor.is_admin else ErrorCode.FORBIDDEN
        ok, _, events = await self._attempt(
            "cancel_scheduled_seat_change",
            expected,
            lambda: seats.cancel_scheduled_seat_change(actor=actor, clock=self.clock),
        )
        if not ok:
            return
        audit = Counter({AuditAction.SEAT_REDUCTION_CANCELLED: 1 if model.scheduled else 0})
        receipt = Counter({EmailKind.SEAT_CHANGE_RECEIPT: 1 if model.scheduled else 0})
        self._expect_audit("cancel_scheduled_seat_change", events, model.id, audit, receipt)
        model.scheduled = None

    # ------------------------------------------------------------------ ownership

    @rule(
        user_id=users,
        actor=st.sampled_from(["owner", "owner", "owner", "admin", "token", "stale_owner"]),
        cross=CROSS,
    )
    def transfer_ownership(self, user_id: int, actor: str, cross: bool) -> None:
        self.run(self._transfer_ownership(user_id, actor, cross))

    @rule(pick=PICK)
    def transfer_ownership_to_enabled(self, pick: int) -> None:
        user_id = self.run(self._pick(UserStatus.ENABLED, pick, owner=False))
        if user_id is not None:
            self.run(self._transfer_ownership(user_id, "owner", cross=False))

    async def _transfer_ownership(self, user_id: int, actor_kind: str, cross: bool) -> None:
        target = await User.get(id=user_id)
        key = self.key_of[target.account_id]
        actor_key = other(key) if cross else key
        if actor_kind == "stale_owner":
            # A principal built while this user was owner; it no longer is.
            former = (
                await User.filter(
                    account_id=self.accounts[actor_key].id,
                    role__in=[Role.ADMIN, Role.MEMBER],
                )
                .order_by("id")
                .first()
            )
            if former is None:
                return
            actor = owner_principal(former.account_id, former.id)
        else:
            actor = await self._principal(actor_key, actor_kind)
        previous_owner = await User.get(account_id=actor.account_id, role=Role.OWNER)

        expected: ErrorCode | None = None
        if actor.kind != ActorKind.USER or actor.user_id != previous_owner.id:
            expected = ErrorCode.FORBIDDEN
        elif actor.account_id != target.account_id:
            expected = ErrorCode.NOT_FOUND
        elif target.status != UserStatus.ENABLED:
            expected = ErrorCode.TARGET_NOT_ELIGIBLE
        elif target.role == Role.OWNER:
            expected = ErrorCode.ALREADY_OWNER

        ok, _, events = await self._attempt(
            "transfer_ownership",
            expected,
            lambda: ownership.transfer_ownership(
                actor=actor, user_id=str(user_id), clock=self.clock
            ),
        )
        if not ok:
            return
        new_owner = await User.get(id=user_id)
        demoted = await User.get(id=previous_owner.id)
        assert (new_owner.role, demoted.role) == (Role.OWNER, Role.ADMIN)
        assert not await Session.filter(user_id=demoted.id, ended_at__isnull=True).exists()
        self._expect_audit(
            "transfer_ownership",
            events,
            target.account_id,
            Counter({AuditAction.OWNERSHIP_TRANSFERRED: 1}),
            Counter(
                {
                    EmailKind.OWNERSHIP_TRANSFERRED_TO_NEW_OWNER: 1,
                    EmailKind.OWNERSHIP_TRANSFERRED_TO_PREVIOUS_OWNER: 1,
                }
            ),
        )

    # ------------------------------------------------------------------ sign in / out

    @rule(
        target=sessions,
        email=st.sampled_from(EMAILS),
        right=st.sampled_from([True, True, False]),
        account=st.sampled_from([None, "A", "B"]),
    )
    def login(self, email: str, right: bool, account: str | None) -> Any:
        return self.run(self._login(email, right, account))

    @rule(target=sessions, pick=PICK, own_account=st.booleans())
    def login_enabled(self, pick: int, own_account: bool) -> Any:
        """A user that can sign in does, with or without naming its account."""
        user_id = self.run(self._pick(UserStatus.ENABLED, pick))
        if user_id is None:
            return multiple()
        user = self.run(User.get(id=user_id))
        if user.password_hash is None:
            return multiple()
        account = self.key_of[user.account_id] if own_account else None
        return self.run(self._login(user.email, True, account))

    async def _login(self, email: str, right: bool, account: str | None) -> Any:
        now = self.clock.now()
        email_key = email.lower()
        password = password_for(email_key) if right else WRONG_PASSWORD
        account_id = self.accounts[account].id if account else None
        query = User.filter(
            email_key=email_key,
            status__in=[UserStatus.INVITED, UserStatus.ENABLED],
            password_hash__isnull=False,
        )
        if account_id is not None:
            query = query.filter(account_id=account_id)
        candidates = await query.order_by("id")
        recent_failures = await LoginFailure.filter(
            scope=f"email:{email_key}",
            created_at__gt=now - config.current().lookback_rate_limit,
        ).count()

        expected: ErrorCode | None = None
        if recent_failures >= config.current().failed_logins_allowed:
            expected = ErrorCode.RATE_LIMITED
        elif not right or not candidates:
            expected = ErrorCode.INVALID_CREDENTIALS
        elif len(candidates) > 1:
            expected = ErrorCode.ACCOUNT_REQUIRED

        failures_before = await LoginFailure.all().count()
        ok, grant, events = await self._attempt(
            "login",
            expected,
            lambda: auth.login(
                email=email,
                password=password,
                account_id=str(account_id) if account_id is not None else None,
                clock=self.clock,
            ),
            refusal_may_write=("login_failures",),
        )
        recorded = await LoginFailure.all().count() - failures_before
        assert recorded == (1 if expected == ErrorCode.INVALID_CREDENTIALS else 0)
        if not ok or grant is None:
            return multiple()
        session = await Session.get(token_hash=token_hash(grant.token))
        assert (session.user_id, session.ended_at) == (candidates[0].id, None)
        self._expect_audit("login", events, candidates[0].account_id, Counter())
        return grant.token

    @rule(email=st.sampled_from(EMAILS))
    def failed_login_burst(self, email: str) -> None:
        """As many wrong passwords as the rate limit allows: the next ones are refused."""
        for _ in range(config.current().failed_logins_allowed):
            self.run(self._login(email, right=False, account=None))

    @rule(token=sessions)
    def logout(self, token: str) -> None:
        self.run(self._logout(token))

    async def _logout(self, token: str) -> None:
        session = await Session.get(token_hash=token_hash(token))
        user = await User.get(id=session.user_id)
        actor = Principal(
            account_id=session.account_id,
            kind=ActorKind.USER,
            role=Role(user.role),
            user_id=session.user_id,
            session_id=session.id,
        )
        ok, _, events = await self._attempt(
            "logout", None, lambda: auth.logout(actor=actor, clock=self.clock)
        )
        assert ok
        await session.refresh_from_db()
        assert session.ended_at is not None
        self._expect_audit("logout", events, session.account_id, Counter())

    @rule(token=sessions)
    def authenticate(self, token: str) -> None:
        self.run(self._authenticate(token))

    async def _authenticate(self, token: str) -> None:
        session = await Session.get(token_hash=token_hash(token))
        user = await User.get(id=session.user_id)
        live = session.ended_at is None and session.expires_at > self.clock.now()
        expected = (
            None if live and user.status != UserStatus.DISABLED else ErrorCode.UNAUTHENTICATED
        )
        ok, principal, events = await self._attempt(
            "authenticate", expected, lambda: auth.authenticate(bearer=token, clock=self.clock)
        )
        if not ok or principal is None:
            return
        assert (principal.account_id, principal.user_id, principal.role, principal.session_id) == (
            user.account_id,
            user.id,
            user.role,
            session.id,
        )
        self._expect_audit("authenticate", events, user.account_id, Counter())

    # ------------------------------------------------------------------ API tokens

    @rule(key=ACCOUNT, actor=ADMIN_ACTORS)
    def create_api_token(self, key: str, actor: str) -> None:
        self.run(self._create_api_token(key, actor))

    async def _create_api_token(self, key: str, actor_kind: str) -> None:
        model = self.accounts[key]
        actor = await self._principal(key, actor_kind)
        expected = None if actor.is_admin else ErrorCode.FORBIDDEN
        ok, created, events = await self._attempt(
            "create_api_token",
            expected,
            lambda: auth.create_api_token(actor=actor, name="Integration", clock=self.clock),
        )
        if not ok or created is None:
            return
        assert created.secret.startswith("lic_")
        row = await ApiToken.get(secret_hash=token_hash(created.secret))
        assert (row.account_id, row.revoked_at, row.prefix) == (
            model.id,
            None,
            created.secret[:12],
        )
        self._expect_audit(
            "create_api_token", events, model.id, Counter({AuditAction.API_TOKEN_CREATED: 1})
        )
        self.token_secrets.append(created.secret)

    @rule(pick=PICK, actor=ADMIN_ACTORS, cross=CROSS)
    def revoke_api_token(self, pick: int, actor: str, cross: bool) -> None:
        secret = self.token_secrets[pick % len(self.token_secrets)]
        self.run(self._revoke_api_token(secret, actor, cross))

    async def _revoke_api_token(self, secret: str, actor_kind: str, cross: bool) -> None:
        token = await ApiToken.get(secret_hash=token_hash(secret))
        key = self.key_of[token.account_id]
        actor = await self._principal(other(key) if cross else key, actor_kind)
        expected: ErrorCode | None = None
        if not actor.is_admin:
            expected = ErrorCode.FORBIDDEN
        elif actor.account_id != token.account_id:
            expected = ErrorCode.NOT_FOUND
        ok, _, events = await self._attempt(
            "revoke_api_token",
            expected,
            lambda: auth.revoke_api_token(actor=actor, token_id=str(token.id), clock=self.clock),
        )
        if not ok:
            return
        was_live = token.revoked_at is None
        await token.refresh_from_db()
        # Idempotent: a second revocation keeps the first one's time, writes nothing.
        assert token.revoked_at is not None
        if was_live:
            assert token.revoked_at == self.clock.now()
        audit = Counter({AuditAction.API_TOKEN_REVOKED: 1 if was_live else 0})
        self._expect_audit("revoke_api_token", events, token.account_id, audit)

    @rule(pick=PICK)
    def authenticate_api_token(self, pick: int) -> None:
        secret = self.token_secrets[pick % len(self.token_secrets)]
        self.run(self._authenticate_api_token(secret))

    async def _authenticate_api_token(self, secret: str) -> None:
        token = await ApiToken.get(secret_hash=token_hash(secret))
        expected = None if token.revoked_at is None else ErrorCode.UNAUTHENTICATED
        ok, principal, events = await self._attempt(
            "authenticate_api_token",
            expected,
            lambda: auth.authenticate(bearer=secret, clock=self.clock),
        )
        if not ok or principal is None:
            return
        assert (principal.account_id, principal.kind, principal.role, principal.token_id) == (
            token.account_id,
            ActorKind.API_TOKEN,
            Role.ADMIN,
            token.id,
        )
        self._expect_audit("authenticate_api_token", events, token.account_id, Counter())

    # ------------------------------------------------------------------ time and jobs

    @rule()
    def prune_login_failures_job(self) -> None:
        self.run(self._prune_login_failures_job())

    async def _prune_login_failures_job(self) -> None:
        cutoff = self.clock.now() - config.current().lookback_rate_limit
        old = await LoginFailure.filter(created_at__lte=cutoff).count()
        ok, pruned, events = await self._attempt(
            "prune_login_failures", None, lambda: auth.prune_login_failures(clock=self.clock)
        )
        assert ok
        assert pruned == old
        assert not events
        assert not self.new_mail

    @rule(
        delta=st.one_of(
            st.integers(1, 40 * 24 * 60).map(lambda minutes: timedelta(minutes=minutes)),
            st.sampled_from(
                [
                    timedelta(milliseconds=500),
                    timedelta(days=7),
                    timedelta(minutes=16),
                    timedelta(days=366),
                ]
            ),
        )
    )
    def advance_clock(self, delta: timedelta) -> None:
        self.clock.advance(delta)

    @rule(key=ACCOUNT, offset=st.sampled_from([-SECOND, timedelta(0), SECOND]))
    def advance_to_period_end(self, key: str, offset: timedelta) -> None:
        target = self.accounts[key].bounds()[1] + offset
        if target > self.clock.now():
            self.clock.at = target

    @rule()
    def expire_invitations_job(self) -> None:
        self.run(self._expire_invitations_job())

    async def _expire_invitations_job(self) -> None:
        overdue = await Invitation.filter(
            kind=InvitationKind.LICENSE,
            status=InvitationStatus.PENDING,
            expires_at__lte=self.clock.now(),
        )
        ok, count, events = await self._attempt(
            "expire_invitations", None, lambda: invitations.expire_invitations(clock=self.clock)
        )
        assert ok
        assert count == len(overdue)
        for invitation in overdue:
            await invitation.refresh_from_db()
            assert invitation.status == InvitationStatus.EXPIRED
            assert (await User.get(id=invitation.user_id)).status == UserStatus.DISABLED
            await self._expect_ended(invitation.user_id, AssignmentEndReason.INVITATION_EXPIRED)
        assert Counter(AuditAction(e.action) for e in events) == +Counter(
            {AuditAction.INVITATION_EXPIRED: len(overdue)}
        )
        assert Counter(e.account_id for e in events) == Counter(i.account_id for i in overdue)
        assert not self.new_mail
        assert all(e.actor_kind == ActorKind.SYSTEM for e in events)

    @rule()
    def run_period_end_job(self) -> None:
        self.run(self._run_period_end_job())

    @rule(key=ACCOUNT)
    def period_ends(self, key: str) -> None:
        """The clock reaches the account's period end and the job runs."""
        self.clock.at = max(self.clock.at, self.accounts[key].bounds()[1])
        self.run(self._run_period_end_job())

    async def _expected_releases(self, model: AccountModel, new_total: int) -> list[int]:
        """Who the reduction to `new_total` releases, in the SPEC's order."""
        now = self.clock.now()
        holders = await User.filter(
            account_id=model.id, status__in=[UserStatus.INVITED, UserStatus.ENABLED]
        )
        pending = {
            invitation.user_id: invitation
            for invitation in await Invitation.filter(
                account_id=model.id,
                kind=InvitationKind.LICENSE,
                status=InvitationStatus.PENDING,
            )
        }
        # Past expiry: expired (released as INVITATION_EXPIRED), not counted.
        holders = [
            user
            for user in holders
            if not (user.id in pending and pending[user.id].expires_at <= now)
        ]
        surplus = len(holders) - new_total
        if surplus <= 0:
            return []
        invited = sorted(
            (u for u in holders if u.status == UserStatus.INVITED and u.role != Role.OWNER),
            key=lambda u: (pending[u.id].created_at, u.id),
            reverse=True,
        )
        enabled = [u for u in holders if u.status == UserStatus.ENABLED and u.role != Role.OWNER]
        never_active = sorted(
            (u for u in enabled if u.last_active_at is None), key=lambda u: (u.created_at, u.id)
        )
        active = sorted(
            (u for u in enabled if u.last_active_at is not None),
            key=lambda u: (u.last_active_at, u.created_at, u.id),
        )
        ordered = [*invited, *never_active, *active]
        if surplus < len(ordered):
            # Who goes is a choice: the order decides it.
            self.stats.outcomes["run_period_end:chosen_by_order"] += surplus
        return [u.id for u in ordered[:surplus]]

    async def _run_period_end_job(self) -> None:
        now = self.clock.now()
        expected_audit: dict[int, Counter[AuditAction]] = {}
        released: dict[int, list[int]] = {}
        expired: dict[int, list[Invitation]] = {}
        renewals = 0
        for model in self.accounts.values():
            periods = 0
            while model.bounds(model.index + periods)[1] <= now:
                periods += 1
            if not periods:
                continue
            renewals += periods
            audit = Counter({AuditAction.PERIOD_RENEWED: periods})
            if model.scheduled is not None:
                expired[model.id] = await self._overdue(model.id)
                released[model.id] = await self._expected_releases(model, model.scheduled)
                audit[AuditAction.SEAT_REDUCTION_APPLIED] = 1
                audit[AuditAction.LICENSE_RELEASED] = len(released[model.id])
                audit[AuditAction.INVITATION_EXPIRED] = len(expired[model.id])
            expected_audit[model.id] = audit

        ok, report, events = await self._attempt(
            "run_period_end", None, lambda: billing.run_period_end(clock=self.clock)
        )
        assert ok
        assert report is not None
        assert report.failed_account_ids == ()
        assert report.periods_renewed == renewals
        assert report.licenses_released == sum(len(ids) for ids in released.values())
        self.stats.outcomes["run_period_end:renewals"] += renewals
        self.stats.outcomes["run_period_end:reductions"] += len(released)
        self.stats.outcomes["run_period_end:released"] += report.licenses_released
        for model in self.accounts.values():
            events_here = [e for e in events if e.account_id == model.id]
            self._expect_audit(
                "run_period_end",
                events_here,
                model.id,
                expected_audit.get(model.id, Counter()),
                Counter({EmailKind.LICENSES_RELEASED: 1 if released.get(model.id) else 0}),
                one_account=False,
            )
            for user_id in released.get(model.id, []):
                assert (await User.get(id=user_id)).status == UserStatus.DISABLED
                await self._expect_ended(user_id, AssignmentEndReason.SEAT_REDUCTION)
                assert not await Session.filter(user_id=user_id, ended_at__isnull=True).exists()
                assert not await Invitation.filter(
                    user_id=user_id, status=InvitationStatus.PENDING
                ).exists()
            for invitation in expired.get(model.id, []):
                await invitation.refresh_from_db()
                assert invitation.status == InvitationStatus.EXPIRED
            # The model closes the same periods: a reduction at the first boundary.
            while model.bounds()[1] <= now:
                model.index += 1
                if model.scheduled is not None:
                    model.total = model.scheduled
                    model.scheduled = None
                start, end = model.bounds()
                model.renewals.append((start, end, model.total, model.total * model.price))

    # ------------------------------------------------------------------ invariants

    @invariant()
    def invariants_hold(self) -> None:
        self.stats.invariant_checks += 1
        self.run(self._check_invariants())

    async def _check_invariants(self) -> None:
        now = self.clock.now()
        all_users = await User.all().order_by("id")
        user_account = {user.id: user.account_id for user in all_users}
        invitations = await Invitation.all().order_by("id")
        assignments = await LicenseAssignment.all().order_by("id")
        sessions = await Session.all().order_by("id")
        charges = await Charge.all().order_by("id")

        for model in self.accounts.values():
            account = await Account.get(id=model.id)
            here = [user for user in all_users if user.account_id == model.id]
            licensed = {user.id for user in here if user.status != UserStatus.DISABLED}
            open_assignments = [
                a.user_id
                for a in assignments
                if a.account_id == model.id and a.unassigned_at is None
            ]

            # Seats.
            assert 1 <= account.seats_total <= 100_000
            assert account.seats_in_use <= account.seats_total
            assert account.seats_in_use == len(open_assignments) == len(licensed)
            assert set(open_assignments) == licensed

            # Exactly one owner, ENABLED and licensed.
            owners = [user for user in here if user.role == Role.OWNER]
            assert len(owners) == 1, f"account {model.key}: {len(owners)} owners"
            assert owners[0].status == UserStatus.ENABLED
            assert owners[0].id in licensed

            # Unique emails (case-insensitive).
            assert len({user.email_key for user in here}) == len(here)

            # Invitations against statuses.
            for user in here:
                mine = [i for i in invitations if i.user_id == user.id]
                pending = [i for i in mine if i.status == InvitationStatus.PENDING]
                assert len(pending) <= 1, f"user {user.id}: {len(pending)} pending invitations"
                latest = mine[-1] if mine else None
                latest_pending_license = (
                    latest is not None
                    and latest.kind == InvitationKind.LICENSE
                    and latest.status == InvitationStatus.PENDING
                )
                assert (user.status == UserStatus.INVITED) == latest_pending_license, (
                    f"user {user.id} is {user.status} with latest invitation "
                    f"{latest and (latest.kind, latest.status)}"
                )
                if any(i.kind == InvitationKind.LICENSE for i in pending):
                    assert user.status == UserStatus.INVITED
                if user.status == UserStatus.INVITED:
                    assert user.password_hash is None
                if any(i.kind == InvitationKind.PASSWORD_SET for i in mine):
                    assert user.id == model.first_owner_id

            # Model of the account: seats, reduction, period.
            start, end = model.bounds()
            assert (
                account.seats_total,
                account.scheduled_total,
                account.period_index,
                account.current_period_start,
                account.current_period_end,
            ) == (model.total, model.scheduled, model.index, start, end)
            if account.scheduled_total is not None:
                assert account.scheduled_total < account.seats_total

            # Ledger.
            mine_charges = [c for c in charges if c.account_id == model.id]
            increases = [
                (c.quantity, c.amount_cents)
                for c in mine_charges
                if c.kind == ChargeKind.SEAT_INCREASE
            ]
            renewals = [c for c in mine_charges if c.kind == ChargeKind.RENEWAL]
            assert increases == model.increases
            assert [
                (c.period_start, c.period_end, c.quantity, c.amount_cents) for c in renewals
            ] == (model.renewals)
            assert len({c.period_start for c in renewals}) == len(renewals)
            for charge in mine_charges:
                assert charge.currency == account.currency
                if charge.kind == ChargeKind.RENEWAL:
                    assert charge.amount_cents == charge.quantity * charge.unit_amount_cents
                else:
                    assert charge.unit_amount_cents == model.price
            assert sum(c.amount_cents for c in mine_charges) == sum(
                amount for _, amount in model.increases
            ) + sum(renewal[3] for renewal in model.renewals)

        # Sessions: live ones belong to ENABLED users only.
        status_of = {user.id: user.status for user in all_users}
        for session in sessions:
            assert session.account_id == user_account[session.user_id]
            if session.ended_at is None and session.expires_at > now:
                assert status_of[session.user_id] == UserStatus.ENABLED, (
                    f"live session of a {status_of[session.user_id]} user {session.user_id}"
                )
        # Rows name users of their own account.
        for invitation in invitations:
            assert invitation.account_id == user_account[invitation.user_id]
        for assignment in assignments:
            assert assignment.account_id == user_account[assignment.user_id]
            assert (assignment.unassigned_at is None) == (assignment.end_reason is None)
        token_account = dict(await ApiToken.all().values_list("id", "account_id"))
        for event in await AuditEvent.filter(id__gt=self.last_checked_audit_id).order_by("id"):
            for user_id in (event.actor_user_id, event.target_user_id):
                if user_id is not None:
                    assert user_account[user_id] == event.account_id
            if event.actor_token_id is not None:
                assert token_account[event.actor_token_id] == event.account_id
            self.last_checked_audit_id = event.id


def machine_for(
    loop: asyncio.AbstractEventLoop, database_dir: Path | None, template: str, stats: Stats
) -> type[LicensesMachine]:
    counter = iter(range(10**9))

    def new_database_url() -> str:
        if POSTGRES_URL or database_dir is None:
            return template
        path = database_dir / f"example-{next(counter)}.db"
        shutil.copyfile(template, path)
        # No fsync per commit: the examples are thrown away, and on a busy
        # disk waiting for it would take most of the run.
        return f"sqlite://{path}?synchronous=OFF"

    def drop_database(url: str) -> None:
        if not POSTGRES_URL:
            path = url.removeprefix("sqlite://").partition("?")[0]
            for suffix in ("", "-wal", "-shm"):
                Path(path + suffix).unlink(missing_ok=True)

    class Machine(LicensesMachine):
        pass

    Machine.loop = loop
    Machine.new_database_url = staticmethod(new_database_url)
    Machine.drop_database = staticmethod(drop_database)
    Machine.stats = stats
    return Machine


@pytest.fixture
def cheap_password_hashing(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Argon2id at the lowest cost: the same code paths, a hash in well under 1 ms."""
    cheap = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    security._dummy_hash.cache_clear()
    monkeypatch.setattr(security, "_hasher", lambda: cheap)
    yield
    security._dummy_hash.cache_clear()


def test_random_sequences_of_operations_keep_every_invariant(
    migrated_template: str, tmp_path: Path, cheap_password_hashing: None
) -> None:
    loop = asyncio.new_event_loop()
    stats = Stats()
    machine = machine_for(loop, tmp_path, migrated_template, stats)
    # Hypothesis caches what it learns from the source in its home directory:
    # keep that out of the working tree.
    set_hypothesis_home_dir(tmp_path / "hypothesis")
    try:
        run_state_machine_as_test(
            machine,
            settings=settings(
                max_examples=EXAMPLES,
                stateful_step_count=STEPS,
                deadline=None,
                database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
            ),
        )
    finally:
        set_hypothesis_home_dir(None)
        loop.run_until_complete(loop.shutdown_default_executor())
        loop.close()
    print(
        f"\n{stats.examples} examples, {stats.invariant_checks} steps checked, "
        f"{stats.steps} domain calls"
    )
    for outcome, count in sorted(stats.outcomes.items()):
        print(f"  {outcome}: {count}")
    # The run must have reached the interesting places, not only refusals.
    if EXAMPLES < 20:
        return
    for outcome in ("invite:ok", "accept:ok", "change_seat_count:ok", "run_period_end:ok"):
        assert stats.outcomes[outcome] > 0, f"never reached {outcome}"
