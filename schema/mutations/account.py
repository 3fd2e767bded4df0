"""The account itself: its seat count, its owner, its API tokens."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry
from strawberry import Private

from domain.enums import ApiTokenScope
from domain.principal import Principal
from domain.services import auth, ownership, seats
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
from schema.scalars import BigInt
from schema.types import ApiToken, Charge, LicenseSummary, User


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


@strawberry.type(description="Result of changeSeatCount.")
class ChangeSeatCountPayload:
    licenses: LicenseSummary | None = licenses_field()
    charge: Charge | None = strawberry.field(
        default=None, description="The charge made now; null for a reduction."
    )
    errors: list[UserError] = errors_field()
    _licenses_of: Private[Principal | None] = None


@strawberry.type(description="Result of cancelScheduledSeatChange.")
class LicensesPayload:
    licenses: LicenseSummary | None = licenses_field()
    errors: list[UserError] = errors_field()
    _licenses_of: Private[Principal | None] = None


@strawberry.type(description="Result of transferOwnership.")
class TransferOwnershipPayload:
    previous_owner: User | None = strawberry.field(
        default=None, description="The previous owner, now ADMIN (signed out)."
    )
    new_owner: User | None = strawberry.field(default=None, description="The new OWNER.")
    errors: list[UserError] = errors_field()


@strawberry.type(description="Result of createApiToken and revokeApiToken.")
class ApiTokenPayload:
    api_token: ApiToken | None = strawberry.field(default=None, description="The token.")
    secret: str | None = strawberry.field(
        default=None,
        description="The secret, present only in createApiToken's payload; null otherwise.",
    )
    errors: list[UserError] = errors_field()


@strawberry.type
class AccountMutations:
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
                expected_amount_due_cents=given(input.expected_amount_due_cents),
                proration_date=given(input.proration_date),
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
        scopes: Annotated[
            list[ApiTokenScope] | None,
            strawberry.argument(description="The interfaces it opens; null means GRAPHQL."),
        ] = (ApiTokenScope.GRAPHQL,),  # type: ignore[assignment]
    ) -> ApiTokenPayload:
        actor = require_principal(info)
        return await run_mutation(
            info,
            ApiTokenPayload,
            auth.create_api_token(
                actor=actor,
                name=name,
                scopes=scopes if scopes is not None else (ApiTokenScope.GRAPHQL,),
                clock=info.context.clock,
            ),
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
