"""Query root: the viewer, its account, and the licence agreement."""

from __future__ import annotations

import strawberry

from domain.enums import ActorKind
from schema.context import Info, loaders_of, require_principal
from schema.fields import resolver
from schema.types import Account, LicenseAgreement, User


@strawberry.type(description="Reads, scoped to the account of the bearer token.")
class Query:
    @resolver(
        description="The authenticated user; null when the request is authenticated by an API "
        "token."
    )
    async def viewer(self, info: Info) -> User | None:
        principal = require_principal(info)
        if principal.kind != ActorKind.USER or principal.user_id is None:
            return None
        model = await loaders_of(info, principal.account_id).users.load(principal.user_id)
        return User.from_model(model, principal) if model is not None else None

    @resolver(
        description="The viewer's account. Users, licences, billing and audit need ADMIN or OWNER."
    )
    async def account(self, info: Info) -> Account:
        principal = require_principal(info)
        model = await loaders_of(info, principal.account_id).account.load(principal.account_id)
        if model is None:  # pragma: no cover - a principal always has an account
            raise RuntimeError(f"account {principal.account_id} not found")
        return Account.from_model(model, principal)

    @resolver(description="The licence agreement that changeSeatCount must accept.")
    def license_agreement(self, info: Info) -> LicenseAgreement:
        require_principal(info)
        return LicenseAgreement.current()
