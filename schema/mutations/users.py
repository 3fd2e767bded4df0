"""A user's licence and details: assign, unassign, update."""

from __future__ import annotations

from collections.abc import Callable

import strawberry
from strawberry import Private

from domain.enums import Role
from domain.models import User as UserModel
from domain.principal import Principal
from domain.services import licensing, profile
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
from schema.types import LicenseSummary, User


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


@strawberry.type(description="Result of assignLicense, unassignLicense and updateUser.")
class UserPayload:
    user: User | None = strawberry.field(default=None, description="The user after the change.")
    licenses: LicenseSummary | None = licenses_field()
    errors: list[UserError] = errors_field()
    _licenses_of: Private[Principal | None] = None


def _user_payload(actor: Principal) -> Callable[[UserModel], UserPayload]:
    """The payload of assign, unassign and update: the user, fresh licences."""

    def wrap(user: UserModel) -> UserPayload:
        return UserPayload(user=User.from_model(user, actor), _licenses_of=actor)

    return wrap


@strawberry.type
class UserMutations:
    @mutation(description="Gives a DISABLED user a licence again.")
    async def assign_license(self, info: Info, user_id: UserIdArgument) -> UserPayload:
        actor = require_principal(info)
        return await run_mutation(
            info,
            UserPayload,
            licensing.assign_license(actor=actor, user_id=user_id, clock=info.context.clock),
            _user_payload(actor),
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
            licensing.unassign_license(actor=actor, user_id=user_id, clock=info.context.clock),
            _user_payload(actor),
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
            profile.update_user(
                actor=actor,
                user_id=id,
                first_name=given(input.first_name),
                last_name=given(input.last_name),
                role=given(input.role),
                # Left out: unchanged; null or "": cleared.
                qualification=(
                    None if qualification is strawberry.UNSET else (qualification or "")
                ),
                clock=info.context.clock,
            ),
            _user_payload(actor),
        )
