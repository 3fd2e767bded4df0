"""Mutations: unpack the input, call ONE domain service, wrap the result.

`run_mutation` is the one place that turns a DomainError into the payload's
`errors` (the other fields then null) and that drops the request's loaders
after a change, so the payload shows the state after it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Annotated, Any, TypeVar

import strawberry
from strawberry import Private

from domain import queries
from domain.enums import ActorKind, Role
from domain.errors import DomainError, ErrorCode
from domain.models import User as UserModel
from domain.principal import Principal
from domain.services import auth, ownership, seats, users
from domain.services.sessions import SessionGrant
from schema.context import Info, require_principal
from schema.fields import mutation
from schema.scalars import BigInt
from schema.types import ApiToken, Charge, Invitation, LicenseSummary, User

P = TypeVar("P")
R = TypeVar("R")


@strawberry.type(description="Why a mutation was refused.")
class UserError:
    code: ErrorCode = strawberry.field(description="Machine-readable reason.")
    message: str = strawberry.field(description="Human-readable explanation.")
    field: str | None = strawberry.field(
        description="The input field at fault, as named in the input type (camelCase, no "
        "prefix), when one is."
    )

    @classmethod
    def from_domain(cls, error: DomainError) -> UserError:
        return cls(code=error.code, message=error.message, field=error.field)


async def run_mutation(
    info: Info,
    payload: Callable[..., P],
    call: Awaitable[R],
    wrap: Callable[[R], P],
) -> P:
    """Await the service call; a refusal becomes `payload(errors=[UserError])`."""
    try:
        outcome = await call
    except DomainError as error:
        return payload(errors=[UserError.from_domain(error)])
    info.context.reset_loaders()
    return wrap(outcome)


async def _fresh_licenses(root: Any) -> LicenseSummary | None:
    """The licence summary after the change; null on a refusal, and for a MEMBER
    (who may not read it)."""
    viewer: Principal | None = root._licenses_of
    if viewer is None or not queries.can_read_account_details(viewer):
        return None
    return LicenseSummary.from_domain(
        viewer.account_id, await queries.license_summary_for(actor=viewer)
    )


LICENSES_DESCRIPTION = (
    "The licence summary after the change; null on a refusal or for a MEMBER (who may not read it)."
)
ERRORS_DESCRIPTION = "Empty on success; exactly one error on a refusal (nothing changed)."


def _errors_field() -> Any:
    return strawberry.field(default_factory=list, description=ERRORS_DESCRIPTION)


def _licenses_field() -> Any:
    return strawberry.field(resolver=_fresh_licenses, description=LICENSES_DESCRIPTION)


# ---------------------------------------------------------------------------
# Inputs


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


@strawberry.input(description="What to change; a field left out stays as it is.")
class UpdateUserInput:
    first_name: str | None = strawberry.field(default=strawberry.UNSET, description="New name.")
    last_name: str | None = strawberry.field(default=strawberry.UNSET, description="New name.")
    role: Role | None = strawberry.field(
        default=strawberry.UNSET, description="ADMIN or MEMBER (ADMIN or OWNER only)."
    )
    qualification: str | None = strawberry.field(
        default=strawberry.UNSET,
        description="New qualification; null or an empty string clears it.",
    )


@strawberry.input(description="The new seat count and the agreement it is bought under.")
class ChangeSeatCountInput:
    total: int = strawberry.field(description="The new number of licences, 1..100000.")
    accept_agreement: bool = strawberry.field(description="Must be true.")
    agreement_version: str = strawberry.field(
        description="The version of the licence agreement accepted (licenseAgreement.version)."
    )
    expected_amount_due_cents: BigInt | None = strawberry.field(
        default=strawberry.UNSET,
        description="When given, the change is refused with AMOUNT_MISMATCH unless the "
        "computed amount equals it.",
    )
    proration_date: datetime | None = strawberry.field(
        default=strawberry.UNSET,
        description="Compute the proration at this instant (from seatChangePreview); within "
        "the last 10 minutes, else INVALID_INPUT. Default: now.",
    )


def _given(value: Any) -> Any:
    """An input field left out arrives as UNSET: the service's None."""
    return None if value is strawberry.UNSET else value


# ---------------------------------------------------------------------------
# Payloads


@strawberry.type(description="Result of inviteUser.")
class InviteUserPayload:
    user: User | None = strawberry.field(default=None, description="The invited user.")
    invitation: Invitation | None = strawberry.field(
        default=None, description="The invitation just sent."
    )
    licenses: LicenseSummary | None = _licenses_field()
    errors: list[UserError] = _errors_field()
    _licenses_of: Private[Principal | None] = None


@strawberry.type(description="Result of resendInvitation and revokeInvitation.")
class InvitationPayload:
    user: User | None = strawberry.field(default=None, description="The invited user.")
    invitation: Invitation | None = strawberry.field(
        default=None, description="The invitation after the change."
    )
    licenses: LicenseSummary | None = _licenses_field()
    errors: list[UserError] = _errors_field()
    _licenses_of: Private[Principal | None] = None


@strawberry.type(description="Result of acceptInvitation and login.")
class SessionPayload:
    token: str | None = strawberry.field(default=None, description="Bearer token; null on error.")
    user: User | None = strawberry.field(default=None, description="The signed-in user.")
    expires_at: datetime | None = strawberry.field(
        default=None, description="When the token stops working."
    )
    errors: list[UserError] = _errors_field()


@strawberry.type(description="Result of logout.")
class LogoutPayload:
    errors: list[UserError] = _errors_field()


@strawberry.type(description="Result of assignLicense, unassignLicense and updateUser.")
class UserPayload:
    user: User | None = strawberry.field(default=None, description="The user after the change.")
    licenses: LicenseSummary | None = _licenses_field()
    errors: list[UserError] = _errors_field()
    _licenses_of: Private[Principal | None] = None


@strawberry.type(description="Result of changeSeatCount.")
class ChangeSeatCountPayload:
    licenses: LicenseSummary | None = _licenses_field()
    charge: Charge | None = strawberry.field(
        default=None, description="The charge made now; null for a reduction."
    )
    errors: list[UserError] = _errors_field()
    _licenses_of: Private[Principal | None] = None


@strawberry.type(description="Result of cancelScheduledSeatChange.")
class LicensesPayload:
    licenses: LicenseSummary | None = _licenses_field()
    errors: list[UserError] = _errors_field()
    _licenses_of: Private[Principal | None] = None


@strawberry.type(description="Result of transferOwnership.")
class TransferOwnershipPayload:
    previous_owner: User | None = strawberry.field(
        default=None, description="The previous owner, now ADMIN (signed out)."
    )
    new_owner: User | None = strawberry.field(default=None, description="The new OWNER.")
    errors: list[UserError] = _errors_field()


@strawberry.type(description="Result of createApiToken and revokeApiToken.")
class ApiTokenPayload:
    api_token: ApiToken | None = strawberry.field(default=None, description="The token.")
    secret: str | None = strawberry.field(
        default=None,
        description="The secret, present only in createApiToken's payload; null otherwise.",
    )
    errors: list[UserError] = _errors_field()


def _session(grant: SessionGrant) -> SessionPayload:
    # The payload is read as the user who just signed in.
    viewer = _principal_of(grant.user)
    return SessionPayload(
        token=grant.token,
        user=User.from_model(grant.user, viewer),
        expires_at=grant.expires_at,
    )


def _principal_of(user: UserModel) -> Principal:
    return Principal(
        account_id=user.account_id, kind=ActorKind.USER, role=user.role, user_id=user.id
    )


# ---------------------------------------------------------------------------
# Mutation


UserIdArgument = Annotated[strawberry.ID, strawberry.argument(description="The user's id.")]


def _invitation_payload(actor: Principal) -> Callable[[users.InvitationOutcome], InvitationPayload]:
    """The payload of resend and revoke: the user, its invitation, fresh licences."""

    def wrap(outcome: users.InvitationOutcome) -> InvitationPayload:
        return InvitationPayload(
            user=User.from_model(outcome.user, actor),
            invitation=Invitation.from_model(outcome.invitation),
            _licenses_of=actor,
        )

    return wrap


@strawberry.type(description="Every change to the account.")
class Mutation:
    @mutation(description="Creates a user, assigns a licence and emails an invitation.")
    async def invite_user(self, info: Info, input: InviteUserInput) -> InviteUserPayload:
        actor = require_principal(info)
        return await run_mutation(
            info,
            InviteUserPayload,
            users.invite_user(
                actor=actor,
                email=input.email,
                first_name=input.first_name,
                last_name=input.last_name,
                role=_given(input.role) or Role.MEMBER,
                qualification=_given(input.qualification),
                clock=info.context.clock,
            ),
            lambda outcome: InviteUserPayload(
                user=User.from_model(outcome.user, actor),
                invitation=Invitation.from_model(outcome.invitation),
                _licenses_of=actor,
            ),
        )

    @mutation(description="New token, new expiry, email sent again; the old token stops working.")
    async def resend_invitation(self, info: Info, user_id: UserIdArgument) -> InvitationPayload:
        actor = require_principal(info)
        return await run_mutation(
            info,
            InvitationPayload,
            users.resend_invitation(actor=actor, user_id=user_id, clock=info.context.clock),
            _invitation_payload(actor),
        )

    @mutation(description="Revokes a pending invitation and releases its licence.")
    async def revoke_invitation(self, info: Info, user_id: UserIdArgument) -> InvitationPayload:
        actor = require_principal(info)
        return await run_mutation(
            info,
            InvitationPayload,
            users.revoke_invitation(actor=actor, user_id=user_id, clock=info.context.clock),
            _invitation_payload(actor),
        )

    @mutation(description="Public. Activates an invited user and starts a session.")
    async def accept_invitation(self, info: Info, input: AcceptInvitationInput) -> SessionPayload:
        return await run_mutation(
            info,
            SessionPayload,
            users.accept_invitation(
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
                account_id=_given(input.account_id),
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

    @mutation(description="Gives a DISABLED user a licence again.")
    async def assign_license(self, info: Info, user_id: UserIdArgument) -> UserPayload:
        actor = require_principal(info)
        return await run_mutation(
            info,
            UserPayload,
            users.assign_license(actor=actor, user_id=user_id, clock=info.context.clock),
            lambda user: UserPayload(user=User.from_model(user, actor), _licenses_of=actor),
        )

    @mutation(
        description="Releases the user's licence at once; the user stays, DISABLED, and is "
        "signed out."
    )
    async def unassign_license(self, info: Info, user_id: UserIdArgument) -> UserPayload:
        actor = require_principal(info)
        return await run_mutation(
            info,
            UserPayload,
            users.unassign_license(actor=actor, user_id=user_id, clock=info.context.clock),
            lambda user: UserPayload(user=User.from_model(user, actor), _licenses_of=actor),
        )

    @mutation(
        description="Names, qualification and role (ADMIN or OWNER); a MEMBER may change only "
        "its own names."
    )
    async def update_user(
        self, info: Info, id: UserIdArgument, input: UpdateUserInput
    ) -> UserPayload:
        actor = require_principal(info)
        qualification = input.qualification
        return await run_mutation(
            info,
            UserPayload,
            users.update_user(
                actor=actor,
                user_id=id,
                first_name=_given(input.first_name),
                last_name=_given(input.last_name),
                role=_given(input.role),
                # Left out: unchanged; null or "": cleared.
                qualification=(
                    None if qualification is strawberry.UNSET else (qualification or "")
                ),
                clock=info.context.clock,
            ),
            lambda user: UserPayload(user=User.from_model(user, actor), _licenses_of=actor),
        )

    @mutation(
        description="Increase now (prorated charge) or schedule a reduction for the period end."
    )
    async def change_seat_count(
        self, info: Info, input: ChangeSeatCountInput
    ) -> ChangeSeatCountPayload:
        actor = require_principal(info)
        return await run_mutation(
            info,
            ChangeSeatCountPayload,
            seats.change_seat_count(
                actor=actor,
                total=input.total,
                accept_agreement=input.accept_agreement,
                agreement_version=input.agreement_version,
                expected_amount_due_cents=_given(input.expected_amount_due_cents),
                proration_date=_given(input.proration_date),
                clock=info.context.clock,
            ),
            lambda outcome: ChangeSeatCountPayload(
                charge=Charge.from_model(outcome.charge) if outcome.charge else None,
                _licenses_of=actor,
            ),
        )

    @mutation(
        description="ADMIN or OWNER; no agreement needed; succeeds without effect when nothing "
        "is scheduled."
    )
    async def cancel_scheduled_seat_change(self, info: Info) -> LicensesPayload:
        actor = require_principal(info)
        return await run_mutation(
            info,
            LicensesPayload,
            seats.cancel_scheduled_seat_change(actor=actor, clock=info.context.clock),
            lambda _: LicensesPayload(_licenses_of=actor),
        )

    @mutation(description="OWNER only. The previous owner becomes ADMIN and is signed out.")
    async def transfer_ownership(
        self, info: Info, user_id: UserIdArgument
    ) -> TransferOwnershipPayload:
        actor = require_principal(info)
        return await run_mutation(
            info,
            TransferOwnershipPayload,
            ownership.transfer_ownership(actor=actor, user_id=user_id, clock=info.context.clock),
            lambda outcome: TransferOwnershipPayload(
                previous_owner=User.from_model(outcome.previous_owner, actor),
                new_owner=User.from_model(outcome.new_owner, actor),
            ),
        )

    @mutation(description="ADMIN or OWNER. The secret is shown once, in this payload.")
    async def create_api_token(
        self,
        info: Info,
        name: Annotated[str, strawberry.argument(description="A name to recognise it by.")],
    ) -> ApiTokenPayload:
        actor = require_principal(info)
        return await run_mutation(
            info,
            ApiTokenPayload,
            auth.create_api_token(actor=actor, name=name, clock=info.context.clock),
            lambda created: ApiTokenPayload(
                api_token=ApiToken.from_model(created.api_token, actor), secret=created.secret
            ),
        )

    @mutation(description="ADMIN or OWNER. The token stops working at once.")
    async def revoke_api_token(
        self,
        info: Info,
        id: Annotated[strawberry.ID, strawberry.argument(description="The token's id.")],
    ) -> ApiTokenPayload:
        actor = require_principal(info)
        return await run_mutation(
            info,
            ApiTokenPayload,
            auth.revoke_api_token(actor=actor, token_id=id, clock=info.context.clock),
            lambda token: ApiTokenPayload(api_token=ApiToken.from_model(token, actor)),
        )
