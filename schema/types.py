"""Object types of the contract, built once from the domain's models.

Leaves are plain attributes (or cheap sync resolvers where a role check
applies); only relations are async, and they go through the request's
DataLoaders. Every object that can reach other users carries the viewer it
was built for, so a MEMBER sees the private fields of itself only.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Annotated, Any, cast

import strawberry
from strawberry import Private
from strawberry.types.nodes import SelectedField

from domain import config, queries
from domain.enums import (
    ActorKind,
    AssignmentEndReason,
    AuditAction,
    BillingInterval,
    ChargeKind,
    InvitationStatus,
    Role,
    SeatChangeKind,
    UserOrder,
    UserStatus,
)
from domain.models import Account as AccountModel
from domain.models import ApiToken as ApiTokenModel
from domain.models import AuditEvent as AuditEventModel
from domain.models import Charge as ChargeModel
from domain.models import Invitation as InvitationModel
from domain.models import LicenseAssignment as LicenseAssignmentModel
from domain.models import User as UserModel
from domain.principal import Principal
from domain.services import seats
from schema import enums as _enums  # noqa: F401 - registers the enums with Strawberry
from schema.context import Info, loaders_of
from schema.errors import ForbiddenError, refusals_as_errors
from schema.fields import resolver
from schema.hidden import HIDDEN, hidden_error
from schema.scalars import JSON, BigInt

MEMBER_HIDDEN = "A MEMBER reads this only for itself (FORBIDDEN otherwise)."
# Markers for a user's preloaded invitation: not read at all, read and absent.
_NOT_LOADED: Any = object()
_NONE: Any = object()


def _id(value: int) -> strawberry.ID:
    return strawberry.ID(str(value))


def _guard_account(viewer: Principal) -> None:
    if not queries.can_read_account_details(viewer):
        raise ForbiddenError()


# ---------------------------------------------------------------------------
# Users, invitations, licence history


def _user_invitation(root: Any, info: Info) -> Invitation | None:
    # Synchronous when the users page read the invitations of all its users
    # (an async resolver costs a coroutine and a task per user); otherwise it
    # returns the coroutine that loads this one (graphql-core awaits it).
    user: User = root
    user._check()
    preloaded = user._invitation
    if preloaded is not _NOT_LOADED:
        return Invitation.from_model(preloaded) if preloaded is not _NONE else None
    return cast("Invitation | None", _load_invitation(info, user._model))


async def _load_invitation(info: Info, model: UserModel) -> Invitation | None:
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

    _model: Private[UserModel]
    _viewer: Private[Principal]
    _readable: Private[bool]
    # The latest invitation when the users page read it for the whole page at
    # once (_NONE: it has none); _NOT_LOADED otherwise.
    _invitation: Private[Any]

    @classmethod
    def from_model(cls, model: UserModel, viewer: Principal, *, invitation: Any = None) -> User:
        readable = queries.can_read_private(viewer, model.id)
        return cls(
            id=_id(model.id),
            email=model.email,
            first_name=model.first_name,
            last_name=model.last_name,
            name=model.name,
            role=model.role,
            is_owner=model.role == Role.OWNER,
            qualification=model.qualification if readable else HIDDEN,
            status=model.status if readable else HIDDEN,
            has_license=model.status != UserStatus.DISABLED if readable else HIDDEN,
            created_at=model.created_at if readable else HIDDEN,
            last_active_at=model.last_active_at if readable else HIDDEN,
            _model=model,
            _viewer=viewer,
            _readable=readable,
            _invitation=_NOT_LOADED if invitation is None else invitation,
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
    def from_model(cls, model: InvitationModel) -> Invitation:
        return cls(
            id=_id(model.id),
            status=model.status,
            email=model.email,
            created_at=model.created_at,
            sent_at=model.sent_at,
            expires_at=model.expires_at,
            accepted_at=model.accepted_at,
            revoked_at=model.revoked_at,
            delivery_attempts=model.delivery_attempts,
            last_delivery_error=model.last_delivery_error,
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


# ---------------------------------------------------------------------------
# Account and what hangs off it


async def _pending_invitations(root: Any, info: Info) -> int:
    # Counted only when asked for: the count grows with the account.
    summary: LicenseSummary = root
    if summary._pending is not None:
        return summary._pending
    loaders = loaders_of(info, summary._account_id)
    return await loaders.pending_invitations.load(summary._account_id)


@strawberry.type(description="Licences of the account: purchased, used, and scheduled.")
class LicenseSummary:
    total: int = strawberry.field(description="Licences purchased for the current billing period.")
    in_use: int = strawberry.field(description="Licences held by users: ENABLED plus INVITED.")
    available: int = strawberry.field(description="total - inUse.")

    pending_invitations: int = strawberry.field(
        resolver=_pending_invitations,
        description="INVITED users (the owner's password-set email is not an invitation to a "
        "licence).",
    )
    scheduled_total: int | None = strawberry.field(
        description="The total after a scheduled reduction; null when none is scheduled."
    )
    scheduled_at: datetime | None = strawberry.field(
        description="When the scheduled reduction takes effect (end of the current period)."
    )
    released_at_scheduled_change: int = strawberry.field(
        description="Licences that would be released if the scheduled reduction took effect now."
    )

    _account_id: Private[int]
    _pending: Private[int | None]

    @classmethod
    def from_domain(cls, account_id: int, summary: queries.LicenseSummary) -> LicenseSummary:
        return cls(
            total=summary.total,
            in_use=summary.in_use,
            available=summary.available,
            scheduled_total=summary.scheduled_total,
            scheduled_at=summary.scheduled_at,
            released_at_scheduled_change=summary.released_at_scheduled_change,
            _account_id=account_id,
            _pending=summary.pending_invitations,
        )


@strawberry.type(description="How the account is billed.")
class Billing:
    interval: BillingInterval = strawberry.field(description="MONTH or YEAR.")
    current_period_start: datetime = strawberry.field(description="Start of the current period.")
    current_period_end: datetime = strawberry.field(description="End of the current period.")
    seat_price_cents: BigInt = strawberry.field(
        description="Price of one licence per period, in minor units of the currency."
    )
    currency: str = strawberry.field(description="ISO 4217 currency code.")

    @classmethod
    def from_model(cls, model: AccountModel) -> Billing:
        return cls(
            interval=model.billing_interval,
            current_period_start=model.current_period_start,
            current_period_end=model.current_period_end,
            seat_price_cents=BigInt(model.seat_price_cents),
            currency=model.currency,
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


@strawberry.type(description="Where a page ends, and whether another follows.")
class PageInfo:
    has_next_page: bool = strawberry.field(description="True when another page follows.")
    end_cursor: str | None = strawberry.field(
        description="Pass as `after` to get the next page; null for an empty page."
    )

    @classmethod
    def from_page(cls, page: queries.Page[Any]) -> PageInfo:
        return cls(has_next_page=page.has_next_page, end_cursor=page.end_cursor)


@strawberry.type(description="A user with its position in the list.")
class UserEdge:
    node: User = strawberry.field(description="The user.")

    _edge: Private[queries.Edge[UserModel]]

    @resolver(description="Opaque position of this user in the list.")
    def cursor(self) -> str:
        # Built when asked for (an HMAC each).
        return self._edge.cursor


@strawberry.type(description="One page of the account's users.")
class UserConnection:
    edges: list[UserEdge] = strawberry.field(description="The users of this page, in order.")
    page_info: PageInfo = strawberry.field(description="Where this page ends.")

    _count: Private[Callable[[], Awaitable[int]]]

    @resolver(description="All users matching the filter, not only this page.")
    async def total_count(self) -> int:
        # Counted when asked for: a COUNT reads every matching row.
        return await self._count()


@strawberry.type(description="What changeSeatCount(total) would do now, computed by the same code.")
class SeatChangePreview:
    kind: SeatChangeKind = strawberry.field(description="INCREASE, DECREASE or NONE.")
    current_total: int = strawberry.field(description="Licences purchased now.")
    new_total: int = strawberry.field(description="The requested total.")
    amount_due_now_cents: BigInt = strawberry.field(
        description="Prorated charge for an increase; 0 for a reduction or no change."
    )
    currency: str = strawberry.field(description="ISO 4217 currency code.")
    proration_date: datetime = strawberry.field(
        description="The instant the amount is computed at; pass it back to changeSeatCount "
        "to get exactly this amount."
    )
    effective_at: datetime = strawberry.field(
        description="Now for an increase or no change; the end of the current period for a "
        "reduction."
    )
    agreement_version: str = strawberry.field(
        description="The licence agreement version changeSeatCount must accept."
    )
    licenses_over_new_total: int = strawberry.field(
        description="Licences in use above newTotal; a reduction below usage is refused."
    )

    @classmethod
    def from_domain(cls, preview: seats.SeatChangePreview) -> SeatChangePreview:
        return cls(
            kind=preview.kind,
            current_total=preview.current_total,
            new_total=preview.new_total,
            amount_due_now_cents=BigInt(preview.amount_due_now_cents),
            currency=preview.currency,
            proration_date=preview.proration_date,
            effective_at=preview.effective_at,
            agreement_version=preview.agreement_version,
            licenses_over_new_total=preview.licenses_over_new_total,
        )


@strawberry.type(
    description="quantity seats at unitAmountCents per whole period, for the span "
    "periodStart..periodEnd: for RENEWAL the whole period; for SEAT_INCREASE from the "
    "proration date to the period end, amountCents = quantity x unitAmountCents x span / "
    "period, rounded half up."
)
class Charge:
    id: strawberry.ID = strawberry.field(description="Opaque identifier.")
    kind: ChargeKind = strawberry.field(description="SEAT_INCREASE or RENEWAL.")
    quantity: int = strawberry.field(description="Licences charged.")
    unit_amount_cents: BigInt = strawberry.field(
        description="Price of one licence for a whole period, in minor units."
    )
    amount_cents: BigInt = strawberry.field(description="The amount owed, in minor units.")
    currency: str = strawberry.field(description="ISO 4217 currency code.")
    period_start: datetime = strawberry.field(description="Start of the charged span.")
    period_end: datetime = strawberry.field(description="End of the charged span.")
    created_at: datetime = strawberry.field(description="When the charge was recorded.")

    @classmethod
    def from_model(cls, model: ChargeModel) -> Charge:
        return cls(
            id=_id(model.id),
            kind=model.kind,
            quantity=model.quantity,
            unit_amount_cents=BigInt(model.unit_amount_cents),
            amount_cents=BigInt(model.amount_cents),
            currency=model.currency,
            period_start=model.period_start,
            period_end=model.period_end,
            created_at=model.created_at,
        )


@strawberry.type(description="A charge with its position in the list.")
class ChargeEdge:
    node: Charge = strawberry.field(description="The charge.")
    cursor: str = strawberry.field(description="Opaque position of this charge in the list.")


@strawberry.type(description="One page of the account's charges, newest first.")
class ChargeConnection:
    edges: list[ChargeEdge] = strawberry.field(description="The charges of this page.")
    page_info: PageInfo = strawberry.field(description="Where this page ends.")
    total_count: int = strawberry.field(description="All charges of the account.")


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

    _model: Private[ApiTokenModel]
    _viewer: Private[Principal]

    @classmethod
    def from_model(cls, model: ApiTokenModel, viewer: Principal) -> ApiToken:
        return cls(
            id=_id(model.id),
            name=model.name,
            prefix=model.prefix,
            created_at=model.created_at,
            last_used_at=model.last_used_at,
            revoked_at=model.revoked_at,
            _model=model,
            _viewer=viewer,
        )

    @resolver(description="The user who created it; null when created by the system or a token.")
    async def created_by(self, info: Info) -> User | None:
        return await load_user(
            info, self._model.account_id, self._model.created_by_id, self._viewer
        )


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
            id=_id(model.id),
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


@strawberry.type(description="An audit event with its position in the log.")
class AuditEventEdge:
    node: AuditEvent = strawberry.field(description="The event.")
    cursor: str = strawberry.field(description="Opaque position of this event in the log.")


@strawberry.type(description="One page of the audit log, newest first.")
class AuditEventConnection:
    edges: list[AuditEventEdge] = strawberry.field(description="The events of this page.")
    page_info: PageInfo = strawberry.field(description="Where this page ends.")
    total_count: int = strawberry.field(description="All events of the account.")


@strawberry.type(description="The licence agreement that changeSeatCount must accept.")
class LicenseAgreement:
    version: str = strawberry.field(description="Pass it as agreementVersion.")
    text: str = strawberry.field(description="The agreement's text.")

    @classmethod
    def current(cls) -> LicenseAgreement:
        return cls(version=config.AGREEMENT_VERSION, text=config.AGREEMENT_TEXT)


PAGE_FIRST = "How many, 1..200 (INVALID_INPUT otherwise)."
PAGE_AFTER = "The endCursor of the previous page."


@strawberry.type(
    description="Fields other than id, name and owner need ADMIN or OWNER (or an API token)."
)
class Account:
    id: strawberry.ID = strawberry.field(description="Opaque identifier.")
    name: str = strawberry.field(description="The customer's name.")

    _model: Private[AccountModel]
    _viewer: Private[Principal]

    @classmethod
    def from_model(cls, model: AccountModel, viewer: Principal) -> Account:
        return cls(id=_id(model.id), name=model.name, _model=model, _viewer=viewer)

    @resolver(description="The account's owner.")
    async def owner(self, info: Info) -> User:
        model = await loaders_of(info, self._model.id).owner.load(self._model.id)
        if model is None:  # pragma: no cover - an account always has an owner
            raise RuntimeError(f"account {self._model.id} has no owner")
        return User.from_model(model, self._viewer)

    @resolver(description="Licences purchased, in use and scheduled. ADMIN or OWNER.")
    def licenses(self) -> LicenseSummary | None:
        _guard_account(self._viewer)
        return LicenseSummary.from_domain(
            self._model.id, queries.summarize(self._model, pending_invitations=None)
        )

    @resolver(description="Price, currency and billing period. ADMIN or OWNER.")
    def billing(self) -> Billing | None:
        _guard_account(self._viewer)
        return Billing.from_model(self._model)

    @resolver(
        description="Keyset-paginated, forward only; `first` in 1..200, otherwise INVALID_INPUT."
    )
    async def users(
        self,
        info: Info,
        first: Annotated[int | None, strawberry.argument(description=PAGE_FIRST)] = 50,
        after: Annotated[
            str | None, strawberry.argument(description=PAGE_AFTER)
        ] = strawberry.UNSET,
        filter_: Annotated[
            UserFilter | None,
            strawberry.argument(name="filter", description="Only users matching all of it."),
        ] = strawberry.UNSET,
        order_by: Annotated[
            UserOrder | None, strawberry.argument(description="Sort order; ties by id.")
        ] = UserOrder.NAME_ASC,
    ) -> UserConnection | None:
        _guard_account(self._viewer)
        criteria = filter_ or None
        with refusals_as_errors():
            page = await queries.list_users(
                actor=self._viewer,
                first=50 if first is None else first,
                after=_given_text(after),
                status=(criteria.status or None) if criteria else None,
                role=(criteria.role or None) if criteria else None,
                has_license=_given(criteria.has_license) if criteria else None,
                search=(criteria.search or None) if criteria else None,
                order=order_by or UserOrder.NAME_ASC,
            )
        viewer = self._viewer
        invitations: list[Any] = [None] * len(page.edges)
        if _selects(info, "edges", "node", "invitation"):
            # One statement for the whole page, and every User then resolves
            # its invitation synchronously (see User.invitation).
            ids = [edge.node.id for edge in page.edges]
            found = await queries.latest_invitation_by_user_ids(
                account_id=self._model.id, user_ids=ids
            )
            loaders_of(info, self._model.id).latest_invitation.prime_many(
                dict(zip(ids, found, strict=True))
            )
            invitations = [_NONE if model is None else model for model in found]
        return UserConnection(
            edges=[
                UserEdge(node=User.from_model(edge.node, viewer, invitation=invitation), _edge=edge)
                for edge, invitation in zip(page.edges, invitations, strict=True)
            ],
            page_info=PageInfo.from_page(page),
            _count=lambda: queries.count_users(
                actor=viewer,
                status=(criteria.status or None) if criteria else None,
                role=(criteria.role or None) if criteria else None,
                has_license=_given(criteria.has_license) if criteria else None,
                search=(criteria.search or None) if criteria else None,
            ),
        )

    @resolver(description="Null (no error) when no user of this account has this id.")
    async def user(
        self, id: Annotated[strawberry.ID, strawberry.argument(description="The user's id.")]
    ) -> User | None:
        _guard_account(self._viewer)
        with refusals_as_errors():
            model = await queries.get_user(actor=self._viewer, user_id=id)
        return User.from_model(model, self._viewer) if model is not None else None

    @resolver(
        description="What changeSeatCount(total) would do now, computed by the same code, "
        "without doing it."
    )
    async def seat_change_preview(
        self,
        info: Info,
        total: Annotated[int, strawberry.argument(description="The seat count to preview.")],
    ) -> SeatChangePreview | None:
        _guard_account(self._viewer)
        with refusals_as_errors():
            preview = await seats.preview_seat_change(
                actor=self._viewer, total=total, clock=info.context.clock
            )
        return SeatChangePreview.from_domain(preview)

    @resolver(description="Newest first.")
    async def charges(
        self,
        first: Annotated[int | None, strawberry.argument(description=PAGE_FIRST)] = 50,
        after: Annotated[
            str | None, strawberry.argument(description=PAGE_AFTER)
        ] = strawberry.UNSET,
    ) -> ChargeConnection | None:
        _guard_account(self._viewer)
        with refusals_as_errors():
            page = await queries.list_charges(
                actor=self._viewer, first=50 if first is None else first, after=_given_text(after)
            )
        return ChargeConnection(
            edges=[
                ChargeEdge(node=Charge.from_model(edge.node), cursor=edge.cursor)
                for edge in page.edges
            ],
            page_info=PageInfo.from_page(page),
            total_count=_counted(page),
        )

    @resolver(description="Newest first.")
    async def audit_log(
        self,
        first: Annotated[int | None, strawberry.argument(description=PAGE_FIRST)] = 50,
        after: Annotated[
            str | None, strawberry.argument(description=PAGE_AFTER)
        ] = strawberry.UNSET,
    ) -> AuditEventConnection | None:
        _guard_account(self._viewer)
        with refusals_as_errors():
            page = await queries.list_audit_events(
                actor=self._viewer, first=50 if first is None else first, after=_given_text(after)
            )
        viewer = self._viewer
        return AuditEventConnection(
            edges=[
                AuditEventEdge(node=AuditEvent.from_model(edge.node, viewer), cursor=edge.cursor)
                for edge in page.edges
            ],
            page_info=PageInfo.from_page(page),
            total_count=_counted(page),
        )

    @resolver(description="Every API token of the account, revoked ones too, newest first.")
    async def api_tokens(self) -> list[ApiToken] | None:
        _guard_account(self._viewer)
        with refusals_as_errors():
            tokens = await queries.list_api_tokens(actor=self._viewer)
        return [ApiToken.from_model(token, self._viewer) for token in tokens]


def _selects(info: Info, *path: str) -> bool:
    """Whether the query selects this path below the current field, through
    fragments too (@skip and @include are not evaluated: the answer may be yes
    for a field that will be skipped, which costs a needless read only)."""
    level: list[Any] = [part for field in info.selected_fields for part in _children(field)]
    for name in path:
        matched = [selection for selection in _fields(level) if selection.name == name]
        if not matched:
            return False
        level = [part for field in matched for part in field.selections]
    return True


def _fields(selections: list[Any]) -> list[SelectedField]:
    """The fields of a selection set, fragments flattened."""
    fields: list[SelectedField] = []
    pending = list(selections)
    while pending:
        selection = pending.pop()
        if isinstance(selection, SelectedField):
            fields.append(selection)
        else:  # a fragment spread or an inline fragment
            pending.extend(selection.selections)
    return fields


def _children(selection: Any) -> list[Any]:
    return list(selection.selections)


def _counted(page: queries.Page[Any]) -> int:
    if page.total_count is None:  # pragma: no cover - charges and audit pages always count
        raise RuntimeError("this page was not counted")
    return page.total_count


def _given_text(value: str | None) -> str | None:
    return value if isinstance(value, str) else None


def _given(value: bool | None) -> bool | None:
    """An input field left out (UNSET) or null: no condition."""
    return value if isinstance(value, bool) else None


__all__ = [
    "Account",
    "ApiToken",
    "AuditEvent",
    "Billing",
    "Charge",
    "Invitation",
    "LicenseAgreement",
    "LicenseAssignment",
    "LicenseSummary",
    "PageInfo",
    "SeatChangePreview",
    "User",
    "UserConnection",
    "UserFilter",
]
