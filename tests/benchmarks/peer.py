"""B7's peer: the users page as the libraries' own documentation would build it.

Strawberry types with field resolvers, the ASGI `GraphQL` app subclassed for
its context, Tortoise querysets with `prefetch_related` for the invitations;
no hand-tuned batching, no caches, no hand-written SQL. It serves the same
query text as the product's endpoint and returns the same values, so the two
can be compared request for request (the harness checks they agree).

Authentication: the bearer API token is hashed (SHA-256, as the product
stores it) and looked up with one `ApiToken.get_or_none` per request, which
gives the account; no scopes, roles, activity stamping or visibility rules
(the API token acts as ADMIN in the product, so every field is readable).
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

import strawberry
from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.types import Info

from domain.models import Account, ApiToken, User

PEER_PATH = "/bench/peer"


@strawberry.type
class PeerInvitation:
    status: str
    expires_at: datetime


@strawberry.type
class PeerUser:
    id: strawberry.ID
    email: str
    first_name: str
    last_name: str
    role: str
    qualification: str | None
    status: str
    last_active_at: datetime | None
    record: strawberry.Private[User]

    @strawberry.field
    def name(self) -> str:
        return f"{self.first_name} {self.last_name}"

    @strawberry.field
    def is_owner(self) -> bool:
        return self.role == "OWNER"

    @strawberry.field
    def has_license(self) -> bool:
        return self.status != "DISABLED"

    @strawberry.field
    def invitation(self) -> PeerInvitation | None:
        # The reverse relation Tortoise adds, filled by prefetch_related.
        invitations = list(self.record.invitations)  # type: ignore[attr-defined]
        if not invitations:
            return None
        latest = max(invitations, key=lambda invitation: invitation.id)
        return PeerInvitation(status=latest.status.value, expires_at=latest.expires_at)


@strawberry.type
class PeerUserEdge:
    node: PeerUser


@strawberry.type
class PeerUserConnection:
    edges: list[PeerUserEdge]


@strawberry.type
class PeerLicenses:
    total: int
    in_use: int

    @strawberry.field
    def available(self) -> int:
        return max(0, self.total - self.in_use)


@strawberry.type
class PeerAccount:
    id: strawberry.ID
    record: strawberry.Private[Account]

    @strawberry.field
    def licenses(self) -> PeerLicenses:
        return PeerLicenses(total=self.record.seats_total, in_use=self.record.seats_in_use)

    @strawberry.field
    async def users(self, first: int = 50) -> PeerUserConnection:
        users = (
            await User.filter(account_id=self.record.id)
            .order_by("sort_name", "id")
            .limit(first)
            .prefetch_related("invitations")
        )
        return PeerUserConnection(
            edges=[
                PeerUserEdge(
                    node=PeerUser(
                        id=strawberry.ID(str(user.id)),
                        email=user.email,
                        first_name=user.first_name,
                        last_name=user.last_name,
                        role=user.role.value,
                        qualification=user.qualification,
                        status=user.status.value,
                        last_active_at=user.last_active_at,
                        record=user,
                    )
                )
                for user in users
            ]
        )


@strawberry.type
class PeerQuery:
    @strawberry.field
    async def account(self, info: Info) -> PeerAccount | None:
        account_id = info.context["account_id"]
        if account_id is None:
            return None
        account = await Account.get(id=account_id)
        return PeerAccount(id=strawberry.ID(str(account.id)), record=account)


class PeerGraphQL(GraphQL):
    async def get_context(
        self, request: Request | WebSocket, response: Response | WebSocket
    ) -> Any:
        header = request.headers.get("authorization", "")
        bearer = header.removeprefix("Bearer ").strip()
        token = await ApiToken.get_or_none(
            secret_hash=hashlib.sha256(bearer.encode()).hexdigest(), revoked_at=None
        )
        return {"account_id": token.account_id if token else None}


def peer_app() -> PeerGraphQL:
    return PeerGraphQL(strawberry.Schema(query=PeerQuery), graphql_ide=None)
