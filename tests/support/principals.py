"""Who acts in a test.

- `Principal` builders, the way authentication builds them: a user acts with its account,
  its id and its role; an API token with ADMIN rights. (`Principal.system(account_id)` is
  the domain's own.)
- `Principals` and `two_accounts`: two accounts made through the domain services, with a
  bearer token per role, for tests through HTTP.
"""

from __future__ import annotations

from dataclasses import dataclass

from domain.clock import FixedClock
from domain.enums import ActorKind, ApiTokenScope, Role
from domain.models import ApiToken, User
from domain.principal import Principal
from tests.support.factories import accept_pending_invitation, invite_and_accept, make_account


def user_principal(account_id: int, user_id: int, role: Role = Role.MEMBER) -> Principal:
    return Principal(account_id=account_id, kind=ActorKind.USER, role=role, user_id=user_id)


def owner_principal(account_id: int, owner_id: int) -> Principal:
    return user_principal(account_id, owner_id, Role.OWNER)


def as_user(user: User) -> Principal:
    """The user acting for itself, with the role its row holds."""
    return Principal.of_user(user)


def api_token_principal(account_id: int, token_id: int) -> Principal:
    """The token `licenses account create` makes: both scopes."""
    return Principal(
        account_id=account_id,
        kind=ActorKind.API_TOKEN,
        role=Role.ADMIN,
        token_id=token_id,
        scopes=frozenset(ApiTokenScope),
    )


async def token_principal(account_id: int) -> Principal:
    """The account's (first) API token acting (Tortoise must be initialised)."""
    token = await ApiToken.filter(account_id=account_id).first()
    assert token is not None
    return api_token_principal(account_id, token.id)


@dataclass(frozen=True)
class Principals:
    account_id: int
    owner_id: int
    admin_id: int
    member_id: int
    owner_token: str
    admin_token: str
    member_token: str
    api_token: str
    other_account_id: int
    other_owner_id: int
    other_admin_id: int
    other_admin_token: str

    def token(self, who: str) -> str | None:
        """By name: none, member, admin, owner, api, other_admin."""
        return {
            "none": None,
            "member": self.member_token,
            "admin": self.admin_token,
            "owner": self.owner_token,
            "api": self.api_token,
            "other_admin": self.other_admin_token,
        }[who]


async def two_accounts(clock: FixedClock) -> Principals:
    """Acme (5 seats: owner, ADMIN, MEMBER in use) and Globex (3 seats: owner, ADMIN),
    every user but Globex's owner signed in with factories.PASSWORD."""
    acme = await make_account(clock, seats=5)
    owner = owner_principal(acme.account_id, acme.owner_user_id)
    owner_token = await accept_pending_invitation(acme.owner_user_id, clock)
    admin_id, admin_token = await invite_and_accept(
        owner, clock, email="adam@example.com", first_name="Adam", role=Role.ADMIN
    )
    member_id, member_token = await invite_and_accept(
        owner, clock, email="mia@example.com", first_name="Mia", role=Role.MEMBER
    )
    globex = await make_account(clock, seats=3, email="boss@globex.example", name="Globex")
    other_owner = owner_principal(globex.account_id, globex.owner_user_id)
    other_admin_id, other_admin_token = await invite_and_accept(
        other_owner, clock, email="eve@globex.example", first_name="Eve", role=Role.ADMIN
    )
    return Principals(
        account_id=acme.account_id,
        owner_id=acme.owner_user_id,
        admin_id=admin_id,
        member_id=member_id,
        owner_token=owner_token,
        admin_token=admin_token,
        member_token=member_token,
        api_token=acme.api_token,
        other_account_id=globex.account_id,
        other_owner_id=globex.owner_user_id,
        other_admin_id=other_admin_id,
        other_admin_token=other_admin_token,
    )
