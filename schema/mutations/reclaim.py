"""The reclaim policy: set it (the job and the preview live in the domain)."""

from __future__ import annotations

import strawberry

from domain.services import reclaim
from schema.context import Info, require_principal
from schema.fields import mutation
from schema.mutations.common import UserError, errors_field, run_mutation
from schema.types.reclaim import ReclaimPolicy


@strawberry.input(description="The whole policy: it replaces the one in place.")
class ReclaimPolicyInput:
    enabled: bool = strawberry.field(description="Off: nobody is noticed or released.")
    inactive_days: int = strawberry.field(description="14..365.")
    notice_days: int = strawberry.field(
        description="0..30, and shorter than inactiveDays; 0: no notice."
    )
    exempt_admins: bool = strawberry.field(description="ADMIN users are never reclaimed.")
    exempt_user_ids: list[strawberry.ID] | None = strawberry.field(
        default_factory=list, description="Users of the account never reclaimed."
    )


@strawberry.type(description="Result of setReclaimPolicy.")
class ReclaimPolicyPayload:
    policy: ReclaimPolicy | None = strawberry.field(default=None, description="The policy now.")
    errors: list[UserError] = errors_field()


@strawberry.type
class ReclaimMutations:
    @mutation(description="ADMIN or OWNER. Replaces the account's reclaim policy.")
    async def set_reclaim_policy(
        self, info: Info, input: ReclaimPolicyInput
    ) -> ReclaimPolicyPayload:
        actor = require_principal(info)
        return await run_mutation(
            info,
            ReclaimPolicyPayload,
            reclaim.set_reclaim_policy(
                actor=actor,
                enabled=input.enabled,
                inactive_days=input.inactive_days,
                notice_days=input.notice_days,
                exempt_admins=input.exempt_admins,
                exempt_user_ids=[str(i) for i in input.exempt_user_ids or ()],
                clock=info.context.clock,
            ),
            lambda stored: ReclaimPolicyPayload(policy=ReclaimPolicy.from_domain(stored, actor)),
        )
