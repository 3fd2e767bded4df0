"""Rows for tests.

- `make_account`, `accept_pending_invitation`, `invite_and_accept`: through the domain
  services (the production code paths).
- `add_user`: a user written straight to the tables, no service involved, so that a test
  can set up states (times, statuses, licences) the services would take many steps to reach.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import cache

from tortoise.expressions import F

from domain import security
from domain.clock import FixedClock
from domain.enums import ActorKind, InvitationKind, InvitationStatus, Role, UserStatus
from domain.models import Account, Invitation, LicenseAssignment, User
from domain.principal import Principal
from domain.services import invitations
from domain.services.accounts import CreatedAccount, create_account
from domain.validation import sort_name

# The password of the users that `accept_pending_invitation` and `invite_and_accept` sign in.
PASSWORD = "correct horse battery staple"
# Far away, so that moving a test clock by months does not expire the invitation.
_INVITATION_LIFETIME = timedelta(days=3650)


async def make_account(
    clock: FixedClock, *, seats: int = 5, email: str = "owner@example.com", name: str = "Acme"
) -> CreatedAccount:
    return await create_account(
        name=name,
        owner_email=email,
        owner_first_name="Olive",
        owner_last_name="Owner",
        seats=seats,
        seat_price_cents=1000,
        clock=clock,
    )


async def accept_pending_invitation(user_id: int, clock: FixedClock) -> str:
    """Accept the user's latest invitation (owner's password-set link included) with
    PASSWORD: the bearer token of the session it starts."""
    invitation = await Invitation.filter(user_id=user_id).order_by("-id").first()
    assert invitation is not None
    grant = await invitations.accept_invitation(
        token=security.invitation_token(invitation.id, invitation.token_version),
        password=PASSWORD,
        clock=clock,
    )
    return grant.token


async def invite_and_accept(
    inviter: Principal, clock: FixedClock, *, email: str, first_name: str, role: Role
) -> tuple[int, str]:
    """A user invited by `inviter` who accepted: its id and its bearer token."""
    outcome = await invitations.invite_user(
        actor=inviter,
        email=email,
        first_name=first_name,
        last_name="Tester",
        role=role,
        clock=clock,
    )
    return outcome.user.id, await accept_pending_invitation(outcome.user.id, clock)


@cache
def hashed_password(password: str) -> str:
    """Argon2 costs ~50-100 ms: each password is hashed once per test process."""
    return security.hash_password(password)


async def add_user(
    account_id: int,
    *,
    created_at: datetime,
    email: str | None = None,
    first_name: str = "Test",
    last_name: str | None = None,
    role: Role = Role.MEMBER,
    status: UserStatus = UserStatus.ENABLED,
    last_active_at: datetime | None = None,
    qualification: str | None = None,
    password: str | None = None,
    licensed: bool = False,
    assigned_by: int | None = None,
    invitation: bool = False,
    invited_at: datetime | None = None,
    invitation_expires_at: datetime | None = None,
) -> User:
    """A user row and, on request, what goes with it.

    - The email defaults to ``first.last@example.com``; the last name to the email's local
      part when an email is given, else "Tester".
    - ``licensed=True``: the user as the users service leaves it. An INVITED or ENABLED
      user holds a licence (an open assignment and the account's seat counter moved; it
      fails when no licence is left), and an INVITED one has its pending invitation.
    - ``assigned_by``: an open licence assignment made by that user (the seat counter is
      left alone unless ``licensed``).
    - ``invitation=True``: a pending invitation whatever the status.
    - An invitation is sent at ``invited_at`` (default ``created_at``), invited by
      ``assigned_by``, and expires at ``invitation_expires_at`` (default: years later).
    """
    if last_name is None:
        last_name = email.split("@", 1)[0] if email else "Tester"
    address = email or f"{first_name}.{last_name}@example.com".lower()
    user = await User.create(
        account_id=account_id,
        email=address,
        email_key=address.lower(),
        first_name=first_name,
        last_name=last_name,
        sort_name=sort_name(first_name, last_name),
        role=role,
        qualification=qualification,
        status=status,
        password_hash=hashed_password(password) if password else None,
        created_at=created_at,
        last_active_at=last_active_at,
    )
    holds_licence = licensed and status != UserStatus.DISABLED
    if holds_licence:
        taken = await Account.filter(id=account_id, seats_in_use__lt=F("seats_total")).update(
            seats_in_use=F("seats_in_use") + 1
        )
        assert taken == 1, "no licence left for the test user"
    if holds_licence or assigned_by is not None:
        await LicenseAssignment.create(
            account_id=account_id,
            user_id=user.id,
            assigned_at=invited_at or created_at,
            assigned_by_kind=ActorKind.SYSTEM if assigned_by is None else ActorKind.USER,
            assigned_by_user_id=assigned_by,
        )
    if invitation or (licensed and status == UserStatus.INVITED):
        sent = invited_at or created_at
        await Invitation.create(
            account_id=account_id,
            user_id=user.id,
            kind=InvitationKind.LICENSE,
            email=address,
            token_hash=security.token_hash(security.random_token()),
            status=InvitationStatus.PENDING,
            invited_by_user_id=assigned_by,
            created_at=sent,
            sent_at=sent,
            expires_at=invitation_expires_at or sent + _INVITATION_LIFETIME,
        )
    return user
