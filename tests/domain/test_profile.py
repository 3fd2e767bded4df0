"""Editing a user: names, qualification and role, and who may change what."""

from __future__ import annotations

import pytest

from domain.enums import (
    AuditAction,
    Role,
)
from domain.errors import ErrorCode
from domain.models import (
    User,
)
from domain.services.profile import update_user
from tests.domain.users_support import (
    audit_since,
    enabled_user,
    invite,
    mail_since,
    mark,
    other_account_user,
)
from tests.support.assertions import refused_unchanged as refused
from tests.support.snapshot import database_snapshot

pytestmark = pytest.mark.anyio


# --------------------------------------------------------------------------- update


async def test_update_user_given_an_admin_then_names_qualification_and_role_change_with_audit(
    account, owner, clock
):
    outcome = await invite(owner, clock, qualification="PMP")
    since = await mark()

    updated = await update_user(
        actor=owner,
        user_id=str(outcome.user.id),
        first_name=" Zoe ",
        last_name="Lee",  # unchanged: not in the audit
        role=Role.ADMIN,
        qualification="CISSP",
        clock=clock,
    )

    row = await User.get(id=outcome.user.id)
    assert (row.first_name, row.last_name, row.sort_name) == ("Zoe", "Lee", "zoe lee")
    assert (row.role, row.qualification) == (Role.ADMIN, "CISSP")
    assert (updated.first_name, updated.role) == ("Zoe", Role.ADMIN)
    events = await audit_since(since)
    assert [e.action for e in events] == [AuditAction.USER_UPDATED]
    assert events[0].data == {
        "before": {"firstName": "Ann", "role": "MEMBER", "qualification": "PMP"},
        "after": {"firstName": "Zoe", "role": "ADMIN", "qualification": "CISSP"},
    }
    assert await mail_since(since) == []


async def test_update_user_given_an_empty_qualification_then_it_is_cleared(account, owner, clock):
    outcome = await invite(owner, clock, qualification="PMP")
    since = await mark()

    updated = await update_user(
        actor=owner, user_id=str(outcome.user.id), qualification="", clock=clock
    )

    assert updated.qualification is None
    assert (await User.get(id=outcome.user.id)).qualification is None
    events = await audit_since(since)
    assert [e.data for e in events] == [
        {"before": {"qualification": "PMP"}, "after": {"qualification": None}}
    ]


async def test_update_user_given_no_change_then_no_write_and_no_audit(account, owner, clock):
    outcome = await invite(owner, clock, qualification="PMP")
    snapshot = await database_snapshot()

    for changes in (
        {},
        {"first_name": "Ann", "last_name": " Lee ", "role": Role.MEMBER, "qualification": "PMP"},
    ):
        user = await update_user(actor=owner, user_id=str(outcome.user.id), clock=clock, **changes)
        assert user.first_name == "Ann"
    assert await database_snapshot() == snapshot


async def test_update_user_given_the_owner_then_admin_may_change_its_names(account, owner, clock):
    _, admin = await enabled_user(owner, clock, "adm@example.com", role=Role.ADMIN)

    updated = await update_user(
        actor=admin, user_id=str(account.owner_user_id), last_name="Smith", clock=clock
    )

    assert (updated.last_name, updated.sort_name, updated.role) == (
        "Smith",
        "olive smith",
        Role.OWNER,
    )


async def test_update_user_given_a_member_then_it_may_change_its_own_names(account, owner, clock):
    user, member = await enabled_user(owner, clock)
    since = await mark()

    updated = await update_user(
        actor=member, user_id=str(user.id), first_name="Mia", last_name="Wong", clock=clock
    )

    assert (updated.first_name, updated.last_name, updated.sort_name) == ("Mia", "Wong", "mia wong")
    events = await audit_since(since)
    assert [(e.action, e.actor_user_id) for e in events] == [(AuditAction.USER_UPDATED, user.id)]
    assert events[0].data == {
        "before": {"firstName": "Ann", "lastName": "Lee"},
        "after": {"firstName": "Mia", "lastName": "Wong"},
    }


async def test_update_user_given_a_member_changing_anything_else_then_forbidden(
    account, owner, clock
):
    user, member = await enabled_user(owner, clock)
    other = await invite(owner, clock, "other@example.com")

    for user_id, changes in (
        (other.user.id, {"first_name": "X"}),
        (account.owner_user_id, {"last_name": "X"}),
        (user.id, {"role": Role.ADMIN}),
        (user.id, {"role": Role.MEMBER}),
        (user.id, {"qualification": "PMP"}),
        (user.id, {"first_name": "", "qualification": "PMP"}),
    ):
        await refused(
            update_user(actor=member, user_id=str(user_id), clock=clock, **changes),
            ErrorCode.FORBIDDEN,
        )


async def test_update_user_given_another_accounts_user_then_not_found_even_for_a_member(
    account, owner, clock
):
    _, stranger = await other_account_user(clock)
    _, member = await enabled_user(owner, clock)

    for actor in (owner, member):
        await refused(
            update_user(actor=actor, user_id=str(stranger.id), first_name="X", clock=clock),
            ErrorCode.NOT_FOUND,
        )
    await refused(
        update_user(actor=owner, user_id="nope", first_name="X", clock=clock), ErrorCode.NOT_FOUND
    )


async def test_update_user_given_role_owner_or_the_owners_role_then_owner_role_immutable(
    account, owner, clock
):
    outcome = await invite(owner, clock)

    await refused(
        update_user(actor=owner, user_id=str(outcome.user.id), role=Role.OWNER, clock=clock),
        ErrorCode.OWNER_ROLE_IMMUTABLE,
        field="role",
    )
    for role in (Role.ADMIN, Role.MEMBER, Role.OWNER):
        await refused(
            update_user(actor=owner, user_id=str(account.owner_user_id), role=role, clock=clock),
            ErrorCode.OWNER_ROLE_IMMUTABLE,
            field="role",
        )


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"first_name": "  "}, "firstName"),
        ({"last_name": "x" * 101}, "lastName"),
        ({"last_name": "a\tb"}, "lastName"),
        ({"qualification": "q" * 201}, "qualification"),
        ({"qualification": "q" * 201, "role": Role.OWNER}, "qualification"),
    ],
)
async def test_update_user_given_invalid_input_then_invalid_input_names_the_field(
    account, owner, clock, changes, field
):
    outcome = await invite(owner, clock)

    await refused(
        update_user(actor=owner, user_id=str(outcome.user.id), clock=clock, **changes),
        ErrorCode.INVALID_INPUT,
        field=field,
    )
