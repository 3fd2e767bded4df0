"""The audit log: state changes of the account, with who made them."""

from __future__ import annotations

from datetime import datetime

import strawberry
from strawberry import Private

from domain.enums import ActorKind, AuditAction
from domain.models import AuditEvent as AuditEventModel
from domain.principal import Principal
from schema.context import Info, loaders_of
from schema.fields import object_id, resolver
from schema.scalars import JSON
from schema.types.pagination import Connection, Edge, specialised
from schema.types.tokens import ApiToken
from schema.types.users import User, load_user


@strawberry.type(description="A state change of the account, with who made it.")
class AuditEvent:
    id: strawberry.ID = strawberry.field(description="Opaque identifier.")
    action: AuditAction = strawberry.field(description="What happened.")
    actor_kind: ActorKind = strawberry.field(description="USER, API_TOKEN or SYSTEM.")
    data: JSON | None = strawberry.field(
        description="What changed (before/after values, amounts, counts)."
    )
    created_at: datetime = strawberry.field(description="When it happened.")

    _model: Private[AuditEventModel]
    _viewer: Private[Principal]

    @classmethod
    def from_model(cls, model: AuditEventModel, viewer: Principal) -> AuditEvent:
        return cls(
            id=object_id(model.id),
            action=model.action,
            actor_kind=model.actor_kind,
            data=JSON(model.data),
            created_at=model.created_at,
            _model=model,
            _viewer=viewer,
        )

    @resolver(description="The acting user; null for the system or an API token.")
    async def actor(self, info: Info) -> User | None:
        return await load_user(
            info, self._model.account_id, self._model.actor_user_id, self._viewer
        )

    @resolver(description="The API token that acted, when actorKind is API_TOKEN.")
    async def actor_token(self, info: Info) -> ApiToken | None:
        token_id = self._model.actor_token_id
        if token_id is None:
            return None
        model = await loaders_of(info, self._model.account_id).api_tokens.load(token_id)
        return ApiToken.from_model(model, self._viewer) if model is not None else None

    @resolver(description="The user acted upon, when there is one.")
    async def target(self, info: Info) -> User | None:
        return await load_user(
            info, self._model.account_id, self._model.target_user_id, self._viewer
        )


@specialised(
    "An audit event with its position in the log.",
    node="The event.",
    cursor="Opaque position of this event in the log.",
)
class AuditEventEdge(Edge[AuditEvent]):
    pass


@specialised(
    "One page of the audit log, newest first.",
    edges="The events of this page.",
    total_count="All events of the account.",
)
class AuditEventConnection(Connection[AuditEventEdge]):
    pass
