"""Signing in and out: accept an invitation, log in, log out (the public mutations
and the one that ends a session)."""

from __future__ import annotations

from datetime import datetime

import strawberry

from domain.principal import Principal
from domain.services import auth, invitations
from domain.services.sessions import SessionGrant
from schema.context import Info, require_principal
from schema.fields import mutation
from schema.mutations.common import UserError, errors_field, given, run_mutation
from schema.types import User


@strawberry.input(description="The token from the invitation link and the new password.")
class AcceptInvitationInput:
    token: str = strawberry.field(description="The `token` parameter of the invitation link.")
    password: str = strawberry.field(description="10 to 256 characters.")


@strawberry.input(description="Credentials.")
class LoginInput:
    email: str = strawberry.field(description="The user's email.")
    password: str = strawberry.field(description="The user's password.")
    account_id: strawberry.ID | None = strawberry.field(
        default=strawberry.UNSET,
        description="Needed when the email and password match in several accounts.",
    )


@strawberry.type(description="Result of acceptInvitation and login.")
class SessionPayload:
    token: str | None = strawberry.field(default=None, description="Bearer token; null on error.")
    user: User | None = strawberry.field(default=None, description="The signed-in user.")
    expires_at: datetime | None = strawberry.field(
        default=None, description="When the token stops working."
    )
    errors: list[UserError] = errors_field()


@strawberry.type(description="Result of logout.")
class LogoutPayload:
    errors: list[UserError] = errors_field()


def _session(grant: SessionGrant) -> SessionPayload:
    # The payload is read as the user who just signed in.
    viewer = Principal.of_user(grant.user)
    return SessionPayload(
        token=grant.token,
        user=User.from_model(grant.user, viewer),
        expires_at=grant.expires_at,
    )


@strawberry.type
class SessionMutations:
    @mutation(description="Public. Activates an invited user and starts a session.")
    async def accept_invitation(self, info: Info, input: AcceptInvitationInput) -> SessionPayload:
        return await run_mutation(
            info,
            SessionPayload,
            invitations.accept_invitation(
                token=input.token, password=input.password, clock=info.context.clock
            ),
            _session,
        )

    @mutation(description="Public.")
    async def login(self, info: Info, input: LoginInput) -> SessionPayload:
        return await run_mutation(
            info,
            SessionPayload,
            auth.login(
                email=input.email,
                password=input.password,
                account_id=given(input.account_id),
                client_address=info.context.client_address,
                clock=info.context.clock,
            ),
            _session,
        )

    @mutation(description="Ends the session of the bearer token.")
    async def logout(self, info: Info) -> LogoutPayload:
        actor = require_principal(info)
        return await run_mutation(
            info,
            LogoutPayload,
            auth.logout(actor=actor, clock=info.context.clock),
            lambda _: LogoutPayload(),
        )
