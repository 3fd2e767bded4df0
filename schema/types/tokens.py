"""API tokens of the account."""

from __future__ import annotations

from datetime import datetime

import strawberry
from strawberry import Private

from domain.enums import ApiTokenScope
from domain.models import ApiToken as ApiTokenModel
from domain.principal import Principal
from domain.services.auth import token_scopes
from schema.context import Info
from schema.fields import object_id, resolver
from schema.types.users import User, load_user


@strawberry.type(description="Belongs to the account (not to its creator); acts with ADMIN rights.")
class ApiToken:
    id: strawberry.ID = strawberry.field(description="Opaque identifier.")
    name: str = strawberry.field(description="A name to recognise the token by.")
    prefix: str = strawberry.field(
        description="The first characters of the secret, for recognising it."
    )
    created_at: datetime = strawberry.field(description="When the token was created.")
    last_used_at: datetime | None = strawberry.field(
        description="When the token last authenticated a request."
    )
    revoked_at: datetime | None = strawberry.field(
        description="When the token was revoked; null while it works."
    )
    scopes: list[ApiTokenScope] = strawberry.field(description="The interfaces it opens.")

    _model: Private[ApiTokenModel]
    _viewer: Private[Principal]

    @classmethod
    def from_model(cls, model: ApiTokenModel, viewer: Principal) -> ApiToken:
        return cls(
            id=object_id(model.id),
            name=model.name,
            prefix=model.prefix,
            created_at=model.created_at,
            last_used_at=model.last_used_at,
            revoked_at=model.revoked_at,
            scopes=[scope for scope in ApiTokenScope if scope in token_scopes(model)],
            _model=model,
            _viewer=viewer,
        )

    @resolver(description="The user who created it; null when created by the system or a token.")
    async def created_by(self, info: Info) -> User | None:
        return await load_user(
            info, self._model.account_id, self._model.created_by_id, self._viewer
        )
