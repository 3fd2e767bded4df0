"""Users, their invitations and licence history, and the users page.

Every object that can reach other users carries the viewer it was built for,
so a MEMBER sees the private fields of itself only.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

import strawberry
from strawberry import Private

from domain.enums import (
    ActorKind,
    AssignmentEndReason,
    InvitationStatus,
    Role,
    UserOrder,
    UserStatus,
)
from domain.models import Invitation as InvitationModel
from domain.models import LicenseAssignment as LicenseAssignmentModel
from domain.models import User as UserModel
from domain.principal import Principal
from domain.reads import access
from domain.reads.rows import InvitationRow, UserRow
from domain.reads.users import count_users, list_users
from schema.context import Info, loaders_of
from schema.errors import refusals_as_errors
from schema.fields import NotFromRoot, built, from_root, object_id, resolver
from schema.hidden import HIDDEN, hidden_error
from schema.selections import selects
from schema.types.pagination import (
    Connection,
    Edge,
    given,
    given_text,
    page_size,
    specialised,
)

MEMBER_HIDDEN = "A MEMBER reads this only for itself (FORBIDDEN otherwise)."
# Markers for a user's preloaded invitation: not read at all, read and absent.
_NOT_LOADED: Any = object()
_NONE: Any = object()
# Read once: a member read through its enum class costs a descriptor call.
_OWNER = Role.OWNER


def _preloaded_invitation(root: Any) -> Invitation | None:
    """User.invitation from what the users page read for all its users at once;
    NotFromRoot when it was not read so or the viewer may not see it."""
    user: User = root
    preloaded = user._invitation
    if preloaded is _NOT_LOADED or not user._readable:
        raise NotFromRoot
    return Invitation.from_model(preloaded) if preloaded is not _NONE else None


def _user_invitation(root: Any, info: Info) -> Invitation | None:
    # Synchronous when the users page read the invitations of all its users
    # (an async resolver costs a coroutine and a task per user); otherwise it
    # returns the coroutine that loads this one (graphql-core awaits it).
    user: User = root
    user._check()
    if user._invitation is not _NOT_LOADED:
        return _preloaded_invitation(user)
    return cast("Invitation | None", _load_invitation(info, user._model))


async def _load_invitation(info: Info, model: UserModel | UserRow) -> Invitation | None:
    found = await loaders_of(info, model.account_id).latest_invitation.load(model.id)
    return Invitation.from_model(found) if found is not None else None


async def _user_license_history(root: Any, info: Info) -> list[LicenseAssignment] | None:
    user: User = root
    user._check()
    loaders = loaders_of(info, user._model.account_id)
    rows = await loaders.assignments.load(user._model.id)
    return [LicenseAssignment.from_model(row, user._viewer) for row in rows]


@strawberry.type(
    description="A MEMBER reading another user sees id, email, firstName, lastName, name, "
    "role, isOwner; the other fields give a FORBIDDEN error and null."
)
class User:
    # The private fields hold HIDDEN when the viewer may not read them: the
    # schema's attribute resolver (schema.hidden) answers FORBIDDEN for it.
    # Plain attributes rather than a resolver method each, because a page of
    # users reads hundreds of them and a resolver costs several times more.
    id: strawberry.ID = strawberry.field(description="Opaque identifier.")
    email: str = strawberry.field(description="Email address, unique in the account.")
    first_name: str = strawberry.field(description="First name.")
    last_name: str = strawberry.field(description="Last name.")
    name: str = strawberry.field(description="First and last name.")
    role: Role = strawberry.field(description="OWNER, ADMIN or MEMBER.")
    is_owner: bool = strawberry.field(description="True for the account's owner.")
    qualification: str | None = strawberry.field(
        description=f"Free text, e.g. a certification. {MEMBER_HIDDEN}"
    )
    status: UserStatus | None = strawberry.field(
        description=f"INVITED, ENABLED or DISABLED. {MEMBER_HIDDEN}"
    )
    has_license: bool | None = strawberry.field(
        description=f"Whether the user holds a licence. {MEMBER_HIDDEN}"
    )
    invitation: Invitation | None = strawberry.field(
        resolver=_user_invitation,
        metadata=from_root(_preloaded_invitation),
        description="The latest invitation (a resend rotates the token of the same "
        f"invitation). {MEMBER_HIDDEN}",
    )
    license_history: list[LicenseAssignment] | None = strawberry.field(
        resolver=_user_license_history,
        description=f"Every licence assignment of this user, newest first. {MEMBER_HIDDEN}",
    )
    created_at: datetime | None = strawberry.field(
        description=f"When the user was created. {MEMBER_HIDDEN}"
    )
    last_active_at: datetime | None = strawberry.field(
        description=f"Time of the user's last authenticated request. {MEMBER_HIDDEN}"
    )

    # A model, or the plain row the users page reads (the same attributes).
    _model: Private[UserModel | UserRow]
    _viewer: Private[Principal]
    _readable: Private[bool]
    # The latest invitation when the users page read it for the whole page at
    # once (_NONE: it has none); _NOT_LOADED otherwise.
    _invitation: Private[Any]

    @classmethod
    def from_model(
        cls, model: UserModel | UserRow, viewer: Principal, *, invitation: Any = None
    ) -> User:
        readable = access.can_read_private(viewer, model.id)
        role = model.role
        return built(
            cls,
            {
                "id": object_id(model.id),
                "email": model.email,
                "first_name": model.first_name,
                "last_name": model.last_name,
                "name": model.name,
                "role": role,
                "is_owner": role == _OWNER,
                "qualification": model.qualification if readable else HIDDEN,
                "status": model.status if readable else HIDDEN,
                "has_license": model.holds_license if readable else HIDDEN,
                "created_at": model.created_at if readable else HIDDEN,
                "last_active_at": model.last_active_at if readable else HIDDEN,
                "_model": model,
                "_viewer": viewer,
                "_readable": readable,
                "_invitation": _NOT_LOADED if invitation is None else invitation,
            },
        )

    def _check(self) -> None:
        if not self._readable:
            raise hidden_error()


async def load_user(
    info: Info, account_id: int, user_id: int | None, viewer: Principal
) -> User | None:
    if user_id is None:
        return None
    model = await loaders_of(info, account_id).users.load(user_id)
    return User.from_model(model, viewer) if model is not None else None


@strawberry.type(
    description="An emailed invitation to a licence (or the owner's password-set link)."
)
class Invitation:
    id: strawberry.ID = strawberry.field(description="Opaque identifier.")
    status: InvitationStatus = strawberry.field(
        description="PENDING, ACCEPTED, REVOKED or EXPIRED."
    )
    email: str = strawberry.field(description="Where the invitation was sent.")
    created_at: datetime = strawberry.field(description="When the invitation was created.")
    sent_at: datetime | None = strawberry.field(
        description="When the latest email for it was accepted by the mail server."
    )
    expires_at: datetime = strawberry.field(description="The token stops working at this time.")
    accepted_at: datetime | None = strawberry.field(description="When the user accepted it.")
    revoked_at: datetime | None = strawberry.field(description="When it was revoked.")
    delivery_attempts: int = strawberry.field(
        description="Attempts to deliver the latest email (retries included)."
    )
    last_delivery_error: str | None = strawberry.field(
        description="The error of the last failed delivery attempt, if any."
    )

    @classmethod
    def from_model(cls, model: InvitationModel | InvitationRow) -> Invitation:
        return built(
            cls,
            {
                "id": object_id(model.id),
                "status": model.status,
                "email": model.email,
                "created_at": model.created_at,
                "sent_at": model.sent_at,
                "expires_at": model.expires_at,
                "accepted_at": model.accepted_at,
                "revoked_at": model.revoked_at,
                "delivery_attempts": model.delivery_attempts,
                "last_delivery_error": model.last_delivery_error,
            },
        )


@strawberry.type(description="One span during which a user held a licence.")
class LicenseAssignment:
    assigned_at: datetime = strawberry.field(description="When the licence was taken.")
    assigned_by_kind: ActorKind = strawberry.field(description="Who assigned it.")
    unassigned_at: datetime | None = strawberry.field(
        description="When the licence was released; null while held."
    )
    unassigned_by_kind: ActorKind | None = strawberry.field(description="Who released it.")
    end_reason: AssignmentEndReason | None = strawberry.field(
        description="Why the licence was released; null while held."
    )

    _model: Private[LicenseAssignmentModel]
    _viewer: Private[Principal]

    @classmethod
    def from_model(cls, model: LicenseAssignmentModel, viewer: Principal) -> LicenseAssignment:
        return cls(
            assigned_at=model.assigned_at,
            assigned_by_kind=model.assigned_by_kind,
            unassigned_at=model.unassigned_at,
            unassigned_by_kind=model.unassigned_by_kind,
            end_reason=model.end_reason,
            _model=model,
            _viewer=viewer,
        )

    @resolver(description="The user who assigned it; null for an API token or the system.")
    async def assigned_by(self, info: Info) -> User | None:
        return await load_user(
            info, self._model.account_id, self._model.assigned_by_user_id, self._viewer
        )

    @resolver(
        description="The user who released it; null for an API token, the system, or while held."
    )
    async def unassigned_by(self, info: Info) -> User | None:
        return await load_user(
            info, self._model.account_id, self._model.unassigned_by_user_id, self._viewer
        )


@strawberry.input(description="Narrows account.users; every given condition must hold.")
class UserFilter:
    status: UserStatus | None = strawberry.field(
        default=strawberry.UNSET, description="Only users in this status."
    )
    role: Role | None = strawberry.field(
        default=strawberry.UNSET, description="Only users with this role."
    )
    has_license: bool | None = strawberry.field(
        default=strawberry.UNSET,
        description="true: INVITED or ENABLED users; false: DISABLED users.",
    )
    search: str | None = strawberry.field(
        default=strawberry.UNSET,
        description="Case-insensitive substring match on first name, last name or email.",
    )


@specialised(
    "A user with its position in the list.",
    node="The user.",
    cursor="Opaque position of this user in the list.",
)
class UserEdge(Edge[User]):
    pass


@specialised(
    "One page of the account's users.",
    edges="The users of this page, in order.",
    total_count="All users matching the filter, not only this page.",
)
class UserConnection(Connection[UserEdge]):
    pass


async def users_page(
    info: Info,
    viewer: Principal,
    *,
    first: int | None,
    after: str | None,
    criteria: UserFilter | None,
    order: UserOrder | None,
) -> UserConnection:
    """account.users: one page of the account's users, counted only when asked."""
    conditions = _conditions(criteria or None)
    # With the invitations (one statement for the whole page), every User
    # resolves its invitation synchronously (see User.invitation).
    with_invitations = selects(info, "edges", "node", "invitation")
    with refusals_as_errors():
        page = await list_users(
            actor=viewer,
            first=page_size(first),
            after=given_text(after),
            order=order or UserOrder.NAME_ASC,
            latest_invitations=with_invitations,
            **conditions,
        )
    # Not primed into the request's DataLoader: priming costs a future per
    # key, and only User.invitation reads them, from the User objects.
    found = page.latest_invitations or {}
    return UserConnection.of(
        page,
        UserEdge.along(
            page,
            lambda model: User.from_model(
                model, viewer, invitation=_preloaded(found, model.id) if with_invitations else None
            ),
        ),
        count=lambda: count_users(actor=viewer, **conditions),
    )


def _preloaded(found: dict[int, InvitationRow | None], user_id: int) -> Any:
    invitation = found.get(user_id)
    return _NONE if invitation is None else invitation


def _conditions(criteria: UserFilter | None) -> dict[str, Any]:
    """The filter's conditions as the read side takes them (left out or null: none)."""
    return {
        "status": (criteria.status or None) if criteria else None,
        "role": (criteria.role or None) if criteria else None,
        "has_license": given(criteria.has_license) if criteria else None,
        "search": (criteria.search or None) if criteria else None,
    }
