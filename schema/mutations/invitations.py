"""Inviting users: invite one or many, resend and revoke an invitation."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

import strawberry
from strawberry import Private

from domain.enums import Role
from domain.principal import Principal
from domain.services import bulk_invitations, invitations
from schema.context import Info, require_principal
from schema.fields import mutation
from schema.mutations.common import (
    UserError,
    UserIdArgument,
    errors_field,
    given,
    licenses_field,
    run_mutation,
)
from schema.types import Invitation, LicenseSummary, User


@strawberry.input(description="Who to invite.")
class InviteUserInput:
    email: str = strawberry.field(description="Email address, unique in the account.")
    first_name: str = strawberry.field(description="1 to 100 characters.")
    last_name: str = strawberry.field(description="1 to 100 characters.")
    role: Role | None = strawberry.field(
        default=Role.MEMBER, description="ADMIN or MEMBER (OWNER: OWNER_ROLE_IMMUTABLE)."
    )
    qualification: str | None = strawberry.field(
        default=strawberry.UNSET, description="Optional free text, at most 200 characters."
    )


@strawberry.type(description="Result of inviteUser.")
class InviteUserPayload:
    user: User | None = strawberry.field(default=None, description="The invited user.")
    invitation: Invitation | None = strawberry.field(
        default=None, description="The invitation just sent."
    )
    licenses: LicenseSummary | None = licenses_field()
    errors: list[UserError] = errors_field()
    _licenses_of: Private[Principal | None] = None


@strawberry.type(description="Result of resendInvitation and revokeInvitation.")
class InvitationPayload:
    user: User | None = strawberry.field(default=None, description="The invited user.")
    invitation: Invitation | None = strawberry.field(
        default=None, description="The invitation after the change."
    )
    licenses: LicenseSummary | None = licenses_field()
    errors: list[UserError] = errors_field()
    _licenses_of: Private[Principal | None] = None


@strawberry.type(description="Result of inviteUsers.")
class InviteUsersPayload:
    results: list[InviteUserPayload] = strawberry.field(
        default_factory=list,
        description="One result per input row, in input order; each row applied on its own.",
    )
    licenses: LicenseSummary | None = licenses_field()
    errors: list[UserError] = strawberry.field(
        default_factory=list,
        description="A refusal of the whole request (e.g. more than 500 rows); empty when rows "
        "were tried.",
    )
    _licenses_of: Private[Principal | None] = None


def _invitation_request(input: InviteUserInput) -> bulk_invitations.InvitationRequest:
    return bulk_invitations.InvitationRequest(
        email=input.email,
        first_name=input.first_name,
        last_name=input.last_name,
        role=given(input.role) or Role.MEMBER,
        qualification=given(input.qualification),
    )


def _row_payload(actor: Principal, row: bulk_invitations.RowResult) -> InviteUserPayload:
    """A row as inviteUser would answer it; its licences are the summary after every row."""
    if row.outcome is None:
        assert row.error is not None
        return InviteUserPayload(errors=[UserError.from_domain(row.error)])
    return InviteUserPayload(
        user=User.from_model(row.outcome.user, actor),
        invitation=Invitation.from_model(row.outcome.invitation),
        _licenses_of=actor,
    )


def _invitation_payload(
    actor: Principal,
) -> Callable[[invitations.InvitationOutcome], InvitationPayload]:
    """The payload of resend and revoke: the user, its invitation, fresh licences."""

    def wrap(outcome: invitations.InvitationOutcome) -> InvitationPayload:
        return InvitationPayload(
            user=User.from_model(outcome.user, actor),
            invitation=Invitation.from_model(outcome.invitation),
            _licenses_of=actor,
        )

    return wrap


@strawberry.type
class InvitationMutations:
    @mutation(description="Creates a user, assigns a licence and emails an invitation.")
    async def invite_user(self, info: Info, input: InviteUserInput) -> InviteUserPayload:
        actor = require_principal(info)
        return await run_mutation(
            info,
            InviteUserPayload,
            invitations.invite_user(
                actor=actor,
                email=input.email,
                first_name=input.first_name,
                last_name=input.last_name,
                role=given(input.role) or Role.MEMBER,
                qualification=given(input.qualification),
                clock=info.context.clock,
            ),
            lambda outcome: InviteUserPayload(
                user=User.from_model(outcome.user, actor),
                invitation=Invitation.from_model(outcome.invitation),
                _licenses_of=actor,
            ),
        )

    @mutation(description="1..500 invitations, each applied on its own (partial success).")
    async def invite_users(
        self,
        info: Info,
        inputs: Annotated[
            list[InviteUserInput],
            strawberry.argument(description="The rows, 1 to 500; results come in this order."),
        ],
    ) -> InviteUsersPayload:
        actor = require_principal(info)
        return await run_mutation(
            info,
            InviteUsersPayload,
            bulk_invitations.invite_users(
                actor=actor,
                requests=[_invitation_request(row) for row in inputs],
                clock=info.context.clock,
            ),
            lambda rows: InviteUsersPayload(
                results=[_row_payload(actor, row) for row in rows], _licenses_of=actor
            ),
        )

    @mutation(description="New token, new expiry, email sent again; the old token stops working.")
    async def resend_invitation(self, info: Info, user_id: UserIdArgument) -> InvitationPayload:
        actor = require_principal(info)
        return await run_mutation(
            info,
            InvitationPayload,
            invitations.resend_invitation(actor=actor, user_id=user_id, clock=info.context.clock),
            _invitation_payload(actor),
        )

    @mutation(description="Revokes a pending invitation and releases its licence.")
    async def revoke_invitation(self, info: Info, user_id: UserIdArgument) -> InvitationPayload:
        actor = require_principal(info)
        return await run_mutation(
            info,
            InvitationPayload,
            invitations.revoke_invitation(actor=actor, user_id=user_id, clock=info.context.clock),
            _invitation_payload(actor),
        )
