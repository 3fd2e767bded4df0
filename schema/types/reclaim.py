"""The reclaim policy of the account and its preview."""

from __future__ import annotations

from datetime import datetime

import strawberry
from strawberry import Private

from domain.principal import Principal
from domain.reads import reclaim
from schema.errors import refusals_as_errors
from schema.fields import resolver
from schema.types.pagination import Connection, Edge, specialised
from schema.types.users import User


@strawberry.type(description="Releases the licences of users who stopped using them.")
class ReclaimPolicy:
    enabled: bool = strawberry.field(description="Off until an administrator turns it on.")
    inactive_days: int = strawberry.field(
        description="Days without an authenticated request after which a licence is released "
        "(14..365)."
    )
    notice_days: int = strawberry.field(
        description="Days before the release at which the user is emailed (0..30)."
    )
    exempt_admins: bool = strawberry.field(description="ADMIN users are never reclaimed when true.")

    _user_ids: Private[tuple[int, ...]]
    _viewer: Private[Principal]

    @classmethod
    def from_domain(cls, stored: reclaim.StoredPolicy, viewer: Principal) -> ReclaimPolicy:
        terms = stored.terms
        return cls(
            enabled=terms.enabled,
            inactive_days=terms.inactive_days,
            notice_days=terms.notice_days,
            exempt_admins=terms.exempt_admins,
            _user_ids=tuple(sorted(terms.exempt_user_ids)),
            _viewer=viewer,
        )

    @resolver(description="Users the policy never reclaims, in id order.")
    async def exempt_users(self) -> list[User]:
        with refusals_as_errors():
            models = await reclaim.exempt_users(actor=self._viewer, user_ids=self._user_ids)
        return [User.from_model(model, self._viewer) for model in models]


@strawberry.type(description="A user the reclaim policy would release, and when.")
class ReclaimCandidate:
    user: User = strawberry.field(description="The user.")
    inactive_since: datetime = strawberry.field(
        description="The later of lastActiveAt and the start of the current assignment."
    )
    release_at: datetime = strawberry.field(
        description="When the licence will be released if nothing changes."
    )
    notice_sent_at: datetime | None = strawberry.field(
        description="When the user was emailed about it; null before the notice."
    )

    @classmethod
    def from_domain(
        cls, candidate: reclaim.ReclaimCandidate, viewer: Principal
    ) -> ReclaimCandidate:
        return cls(
            user=User.from_model(candidate.user, viewer),
            inactive_since=candidate.plan.inactive_since,
            release_at=candidate.plan.release_at,
            notice_sent_at=candidate.notice_sent_at,
        )


@specialised(
    "A candidate with its position in the preview.",
    node="The candidate.",
    cursor="Opaque position of this candidate in the preview.",
)
class ReclaimCandidateEdge(Edge[ReclaimCandidate]):
    pass


@specialised(
    "One page of the reclaim preview, soonest first.",
    edges="The candidates of this page.",
    total_count="Every user the policy covers.",
)
class ReclaimCandidateConnection(Connection[ReclaimCandidateEdge]):
    pass
