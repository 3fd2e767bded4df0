"""Who may read and run what, through the real ASGI app: a table per operation.

Principals: no token, Acme's MEMBER, ADMIN and OWNER, Acme's API token, and
Globex's ADMIN (another account). Outcomes:

- query fields: UNAUTHENTICATED (top-level, data null), FORBIDDEN (top-level
  error on the field's path, the field null, the rest of the answer intact),
  the data, or null without an error;
- mutations: UNAUTHENTICATED (top-level), a payload refusal (FORBIDDEN,
  NOT_FOUND) that changes nothing in the database, or a success.

Globex's ADMIN never reads or changes anything of Acme: Acme's ids are
NOT_FOUND (null for `account.user(id)`), and what it may run acts on Globex
only, leaving every Acme row as it was.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from domain import config
from domain.clock import FixedClock
from domain.enums import Role
from domain.models import Account, ApiToken, Invitation
from domain.security import invitation_token
from domain.services import auth, invitations
from tests.support.assertions import assert_refused
from tests.support.factories import PASSWORD
from tests.support.http_client import gql, top_codes, warm_up
from tests.support.principals import Principals, owner_principal
from tests.support.snapshot import TABLES, database_snapshot

pytestmark = pytest.mark.anyio

WHO = ("none", "member", "other_admin", "admin", "api", "owner")

OK = "ok"  # data, no error
NULL = "null"  # null, no error
UNAUTHENTICATED = "UNAUTHENTICATED"
FORBIDDEN = "FORBIDDEN"
NOT_FOUND = "NOT_FOUND"
ELSEWHERE = "ok elsewhere"  # succeeds, in the principal's own account only


# ---------------------------------------------------------------------------
# Query fields

ADMIN_READ = {
    "none": UNAUTHENTICATED,
    "member": FORBIDDEN,
    "admin": OK,
    "api": OK,
    "owner": OK,
    "other_admin": OK,  # its own account's
}
EVERYONE = {**ADMIN_READ, "member": OK}

QUERY_FIELDS: dict[str, tuple[str, dict[str, str]]] = {
    "viewer": ("viewer { id email role }", {**EVERYONE, "api": NULL}),
    "account": ("account { id name owner { id email } }", EVERYONE),
    "licenses": ("account { id licenses { total inUse available } }", ADMIN_READ),
    "billing": ("account { id billing { interval currency seatPriceCents } }", ADMIN_READ),
    "users": (
        "account { id users(first: 10) { totalCount edges { node { id email } } } }",
        ADMIN_READ,
    ),
    "user": (
        "account { id user(id: $memberId) { id email status } }",
        {**ADMIN_READ, "other_admin": NULL},
    ),
    "seatChangePreview": ("account { id seatChangePreview(total: 6) { kind } }", ADMIN_READ),
    "charges": ("account { id charges(first: 5) { totalCount } }", ADMIN_READ),
    "auditLog": (
        "account { id auditLog(first: 50) { totalCount edges { node { action } } } }",
        ADMIN_READ,
    ),
    "apiTokens": ("account { id apiTokens { id name prefix } }", ADMIN_READ),
    "reclaimPolicy": ("account { id reclaimPolicy { enabled exemptUsers { id } } }", ADMIN_READ),
    "reclaimPreview": (
        "account { id reclaimPreview(first: 5) { totalCount edges { node { releaseAt } } } }",
        ADMIN_READ,
    ),
    "licenseAgreement": ("licenseAgreement { version }", EVERYONE),
}


def _value(data: Any, field_name: str) -> Any:
    if field_name in ("viewer", "licenseAgreement", "account"):
        return data[field_name]
    return data["account"][field_name]


def check_query(
    body: dict[str, Any], field_name: str, expected: str, p: Principals, who: str
) -> str | None:
    """A description of what is wrong with the answer, or None."""
    codes = top_codes(body)
    data = body.get("data")
    if expected == UNAUTHENTICATED:
        if codes != [UNAUTHENTICATED] or data is not None:
            return f"expected UNAUTHENTICATED, got {body}"
        return None
    if expected == FORBIDDEN:
        paths = [error.get("path") for error in body.get("errors") or ()]
        if codes != [FORBIDDEN] or paths != [["account", field_name]]:
            return f"expected FORBIDDEN on account.{field_name}, got {body}"
        if data is None or data["account"][field_name] is not None:
            return f"expected account.{field_name} null and the account intact, got {body}"
        return None
    if codes:
        return f"expected no error, got {body}"
    value = _value(data, field_name)
    if expected == NULL and value is not None:
        return f"expected null, got {value}"
    if expected == OK and value is None:
        return "expected a value, got null"
    account = data.get("account") if isinstance(data, dict) else None
    own = p.other_account_id if who == "other_admin" else p.account_id
    if account is not None and account["id"] != str(own):
        return f"read account {account['id']}, not its own ({own})"
    if who == "other_admin" and "@example.com" in json.dumps(body):
        return f"another account's ADMIN read Acme's data: {body}"
    return None


@pytest.mark.parametrize("field_name", list(QUERY_FIELDS))
async def test_query_field_matrix(client, principals, field_name):
    selection, expected = QUERY_FIELDS[field_name]
    query = (
        f"query($memberId: ID!) {{ {selection} }}"
        if "$memberId" in selection
        else f"{{ {selection} }}"
    )
    variables = {"memberId": str(principals.member_id)} if "$memberId" in selection else None

    wrong = {}
    for who in WHO:
        body = await gql(client, query, token=principals.token(who), variables=variables)
        problem = check_query(body, field_name, expected[who], principals, who)
        if problem:
            wrong[who] = problem
    assert wrong == {}


USER_FIELDS = """
  id email firstName lastName name role isOwner
  qualification status hasLicense
  invitation { id } licenseHistory { assignedAt } createdAt lastActiveAt
"""
PUBLIC_USER_FIELDS = {"id", "email", "firstName", "lastName", "name", "role", "isOwner"}
PRIVATE_USER_FIELDS = {
    "qualification",
    "status",
    "hasLicense",
    "invitation",
    "licenseHistory",
    "createdAt",
    "lastActiveAt",
}


async def test_a_member_reads_only_the_public_fields_of_another_user(client, principals):
    body = await gql(
        client,
        f"{{ account {{ owner {{ {USER_FIELDS} }} }} }}",
        token=principals.member_token,
    )

    owner = body["data"]["account"]["owner"]
    assert {name for name, value in owner.items() if value is not None} == PUBLIC_USER_FIELDS
    assert owner["email"] == "owner@example.com"
    assert owner["isOwner"] is True
    forbidden = {
        error["path"][-1] for error in body["errors"] if error["extensions"]["code"] == FORBIDDEN
    }
    assert forbidden == PRIVATE_USER_FIELDS
    assert len(body["errors"]) == len(PRIVATE_USER_FIELDS)


async def test_a_member_reads_all_of_itself(client, principals):
    body = await gql(client, f"{{ viewer {{ {USER_FIELDS} }} }}", token=principals.member_token)

    assert "errors" not in body
    viewer = body["data"]["viewer"]
    assert viewer["status"] == "ENABLED"
    assert viewer["hasLicense"] is True
    assert viewer["invitation"]["id"]
    assert len(viewer["licenseHistory"]) == 1


async def test_admins_read_every_field_of_every_user(client, principals):
    query = f"query($id: ID!) {{ account {{ user(id: $id) {{ {USER_FIELDS} }} }} }}"
    for who in ("admin", "owner", "api"):
        body = await gql(
            client,
            query,
            token=principals.token(who),
            variables={"id": str(principals.member_id)},
        )
        assert "errors" not in body, (who, body)
        assert body["data"]["account"]["user"]["status"] == "ENABLED"


async def test_ids_of_another_account_read_as_null(client, principals):
    globex_token = await ApiToken.get(account_id=principals.other_account_id)
    body = await gql(
        client,
        """query($user: ID!, $malformed: ID!) {
             account { id a: user(id: $user) { id } b: user(id: $malformed) { id }
                       apiTokens { id } }
           }""",
        token=principals.owner_token,
        variables={"user": str(principals.other_admin_id), "malformed": "1; DROP TABLE users"},
    )

    assert "errors" not in body
    account = body["data"]["account"]
    assert account["a"] is None
    assert account["b"] is None
    assert str(globex_token.id) not in {token["id"] for token in account["apiTokens"]}


# ---------------------------------------------------------------------------
# Mutations


@dataclass
class Ctx:
    http: httpx.AsyncClient
    p: Principals
    clock: FixedClock
    counter: itertools.count[int] = field(default_factory=itertools.count)

    def fresh_email(self) -> str:
        return f"fresh{next(self.counter)}@example.com"

    @property
    def owner(self) -> Any:
        return owner_principal(self.p.account_id, self.p.owner_id)

    async def invited_user(self) -> int:
        outcome = await invitations.invite_user(
            actor=self.owner,
            email=self.fresh_email(),
            first_name="Fresh",
            last_name="User",
            clock=self.clock,
        )
        return outcome.user.id

    async def disabled_user(self) -> int:
        user_id = await self.invited_user()
        await invitations.revoke_invitation(
            actor=self.owner, user_id=str(user_id), clock=self.clock
        )
        return user_id


Prepare = Callable[[Ctx, str], Awaitable[dict[str, Any]]]


async def _no_variables(ctx: Ctx, who: str) -> dict[str, Any]:
    return {}


@dataclass(frozen=True)
class MutationCase:
    query: str
    expected: dict[str, str]
    prepare: Prepare = _no_variables


ADMIN_ON_IDS = {
    "none": UNAUTHENTICATED,
    "member": FORBIDDEN,
    "other_admin": NOT_FOUND,
    "admin": OK,
    "api": OK,
    "owner": OK,
}
ADMIN_IN_OWN_ACCOUNT = {**ADMIN_ON_IDS, "other_admin": ELSEWHERE}
PUBLIC = dict.fromkeys(WHO, OK)


async def _invite_variables(ctx: Ctx, who: str) -> dict[str, Any]:
    return {"input": {"email": ctx.fresh_email(), "firstName": "New", "lastName": "User"}}


async def _pending_user(ctx: Ctx, who: str) -> dict[str, Any]:
    return {"userId": str(await ctx.invited_user())}


async def _disabled_user(ctx: Ctx, who: str) -> dict[str, Any]:
    return {"userId": str(await ctx.disabled_user())}


async def _accept_variables(ctx: Ctx, who: str) -> dict[str, Any]:
    user_id = await ctx.invited_user()
    invitation = await Invitation.get(user_id=user_id)
    token = invitation_token(invitation.id, invitation.token_version)
    return {"input": {"token": token, "password": PASSWORD}}


async def _login_variables(ctx: Ctx, who: str) -> dict[str, Any]:
    return {"input": {"email": "adam@example.com", "password": PASSWORD}}


async def _update_admin(ctx: Ctx, who: str) -> dict[str, Any]:
    return {"id": str(ctx.p.admin_id), "input": {"firstName": f"Renamed{next(ctx.counter)}"}}


async def _seat_increase(ctx: Ctx, who: str) -> dict[str, Any]:
    total = (await Account.get(id=ctx.p.account_id)).seats_total + 1
    return {
        "input": {
            "total": total,
            "acceptAgreement": True,
            "agreementVersion": config.AGREEMENT_VERSION,
        }
    }


async def _transfer_to_admin(ctx: Ctx, who: str) -> dict[str, Any]:
    return {"userId": str(ctx.p.admin_id)}


async def _token_name(ctx: Ctx, who: str) -> dict[str, Any]:
    return {"name": f"token {next(ctx.counter)}"}


async def _reclaim_policy(ctx: Ctx, who: str) -> dict[str, Any]:
    days = 14 + next(ctx.counter)
    return {
        "input": {
            "enabled": True,
            "inactiveDays": days,
            "noticeDays": 7,
            "exemptAdmins": True,
            "exemptUserIds": [],
        }
    }


async def _acme_token(ctx: Ctx, who: str) -> dict[str, Any]:
    created = await auth.create_api_token(actor=ctx.owner, name="to revoke", clock=ctx.clock)
    return {"id": str(created.api_token.id)}


MUTATIONS: dict[str, MutationCase] = {
    "inviteUser": MutationCase(
        "mutation($input: InviteUserInput!) { inviteUser(input: $input) { user { id } %s } }",
        ADMIN_IN_OWN_ACCOUNT,
        _invite_variables,
    ),
    "resendInvitation": MutationCase(
        "mutation($userId: ID!) { resendInvitation(userId: $userId) { invitation { id } %s } }",
        ADMIN_ON_IDS,
        _pending_user,
    ),
    "revokeInvitation": MutationCase(
        "mutation($userId: ID!) { revokeInvitation(userId: $userId) { invitation { id } %s } }",
        ADMIN_ON_IDS,
        _pending_user,
    ),
    "acceptInvitation": MutationCase(
        "mutation($input: AcceptInvitationInput!) { acceptInvitation(input: $input) { token %s } }",
        PUBLIC,
        _accept_variables,
    ),
    "login": MutationCase(
        "mutation($input: LoginInput!) { login(input: $input) { token %s } }",
        PUBLIC,
        _login_variables,
    ),
    "logout": MutationCase(
        "mutation { logout { %s } }", {**dict.fromkeys(WHO, OK), "none": UNAUTHENTICATED}
    ),
    "assignLicense": MutationCase(
        "mutation($userId: ID!) { assignLicense(userId: $userId) { user { id } %s } }",
        ADMIN_ON_IDS,
        _disabled_user,
    ),
    "unassignLicense": MutationCase(
        "mutation($userId: ID!) { unassignLicense(userId: $userId) { user { id } %s } }",
        ADMIN_ON_IDS,
        _pending_user,
    ),
    "updateUser": MutationCase(
        "mutation($id: ID!, $input: UpdateUserInput!) { updateUser(id: $id, input: $input) "
        "{ user { id } %s } }",
        ADMIN_ON_IDS,
        _update_admin,
    ),
    "changeSeatCount": MutationCase(
        "mutation($input: ChangeSeatCountInput!) { changeSeatCount(input: $input) "
        "{ licenses { total } %s } }",
        ADMIN_IN_OWN_ACCOUNT,
        _seat_increase,
    ),
    "cancelScheduledSeatChange": MutationCase(
        "mutation { cancelScheduledSeatChange { licenses { total } %s } }", ADMIN_IN_OWN_ACCOUNT
    ),
    "transferOwnership": MutationCase(
        "mutation($userId: ID!) { transferOwnership(userId: $userId) { newOwner { id } %s } }",
        {
            "none": UNAUTHENTICATED,
            "member": FORBIDDEN,
            "other_admin": FORBIDDEN,
            "admin": FORBIDDEN,
            "api": FORBIDDEN,
            "owner": OK,
        },
        _transfer_to_admin,
    ),
    "createApiToken": MutationCase(
        "mutation($name: String!) { createApiToken(name: $name) { apiToken { id } secret %s } }",
        ADMIN_IN_OWN_ACCOUNT,
        _token_name,
    ),
    "revokeApiToken": MutationCase(
        "mutation($id: ID!) { revokeApiToken(id: $id) { apiToken { id } %s } }",
        ADMIN_ON_IDS,
        _acme_token,
    ),
    "setReclaimPolicy": MutationCase(
        "mutation($input: ReclaimPolicyInput!) { setReclaimPolicy(input: $input) "
        "{ policy { inactiveDays } %s } }",
        ADMIN_IN_OWN_ACCOUNT,
        _reclaim_policy,
    ),
}
ERRORS = "errors { code message field }"


async def account_snapshot(account_id: int) -> dict[str, list[tuple[Any, ...]]]:
    """Every row that belongs to the account."""
    snapshot: dict[str, list[tuple[Any, ...]]] = {}
    for model in TABLES:
        if model is Account:
            query = model.filter(id=account_id)
        elif "account_id" in model._meta.fields_db_projection.values():
            query = model.filter(account_id=account_id)
        else:
            continue
        snapshot[model._meta.db_table] = [
            tuple(row) for row in await query.order_by("id").values_list()
        ]
    return snapshot


@pytest.fixture
async def roomy(principals: Principals) -> Principals:
    """Room for the successes below: 20 licences in each account."""
    await Account.filter(id__in=[principals.account_id, principals.other_account_id]).update(
        seats_total=20
    )
    return principals


@pytest.mark.parametrize("mutation", list(MUTATIONS))
async def test_mutation_matrix(client, roomy, clock, mutation):
    case = MUTATIONS[mutation]
    ctx = Ctx(http=client, p=roomy, clock=clock)
    query = case.query % ERRORS
    wrong: dict[str, str] = {}
    for who in WHO:
        token = roomy.token(who)
        variables = await case.prepare(ctx, who)
        await warm_up(client, token)
        before = await database_snapshot()
        acme_before = await account_snapshot(roomy.account_id)
        body = await gql(client, query, token=token, variables=variables or None)
        expected = case.expected[who]
        try:
            if expected == UNAUTHENTICATED:
                assert body == {
                    "data": None,
                    "errors": [
                        {
                            "message": "Sign in: send a valid bearer token.",
                            "extensions": {"code": UNAUTHENTICATED},
                        }
                    ],
                }, body
                assert await database_snapshot() == before, "changed data"
                continue
            assert "errors" not in body, body
            payload = body["data"][mutation]
            if expected in (FORBIDDEN, NOT_FOUND):
                assert_refused(payload, expected)
                assert await database_snapshot() == before, "changed data"
            else:
                assert payload["errors"] == [], payload
                assert all(value is not None for value in payload.values()), payload
                if expected == ELSEWHERE:
                    assert await account_snapshot(roomy.account_id) == acme_before, (
                        "changed the other account"
                    )
        except AssertionError as failure:
            wrong[who] = f"expected {expected}: {failure}"
    assert wrong == {}


async def test_another_accounts_admin_changes_nothing_of_this_account(client, roomy, clock):
    """Every write naming one of Acme's ids, run by Globex's ADMIN: NOT_FOUND
    (FORBIDDEN for transferOwnership, which needs an owner), nothing changed."""
    ctx = Ctx(http=client, p=roomy, clock=clock)
    p = roomy
    pending = await ctx.invited_user()
    disabled = await ctx.disabled_user()
    token_id = (await ApiToken.get(account_id=p.account_id)).id
    attempts = {
        "resendInvitation": {"userId": str(pending)},
        "revokeInvitation": {"userId": str(pending)},
        "assignLicense": {"userId": str(disabled)},
        "unassignLicense": {"userId": str(p.member_id)},
        "updateUser": {"id": str(p.owner_id), "input": {"firstName": "Pwned", "role": "ADMIN"}},
        "transferOwnership": {"userId": str(p.other_admin_id)},
        "revokeApiToken": {"id": str(token_id)},
    }
    await warm_up(client, p.other_admin_token)
    before = await database_snapshot()
    for mutation, variables in attempts.items():
        body = await gql(
            client,
            MUTATIONS[mutation].query % ERRORS,
            token=p.other_admin_token,
            variables=variables,
        )
        code = FORBIDDEN if mutation == "transferOwnership" else NOT_FOUND
        assert_refused(body["data"][mutation], code)
    assert await database_snapshot() == before
    # Acme still works as before.
    owner = await gql(client, "{ viewer { role } }", token=p.owner_token)
    assert owner["data"]["viewer"]["role"] == Role.OWNER.value
