"""Object types of the contract, built once from the domain's models.

Leaves are plain attributes (or cheap sync resolvers where a role check
applies); only relations are async, and they go through the request's
DataLoaders. Every object that can reach other users carries the viewer it
was built for, so a MEMBER sees the private fields of itself only.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import strawberry
from strawberry import Private

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
from schema.scalars import JSON, BigInt

MEMBER_HIDDEN = "A MEMBER reads this only for itself (FORBIDDEN otherwise)."


def _id(value: int) -> strawberry.ID:
    return strawberry.ID(str(value))


def _guard_account(viewer: Principal) -> None:
    if not queries.can_read_account_details(viewer):
        raise ForbiddenError()


# ---------------------------------------------------------------------------
# Users, invitations, licence history


@strawberry.type(
    description="A MEMBER reading another user sees id, email, firstName, lastName, name, "
    "role, isOwner; the other fields give a FORBIDDEN error and null."
)
class User:
    id: strawberry.ID = strawberry.field(description="Opaque identifier.")
    email: str = strawberry.field(description="Email address, unique in the account.")
    first_name: str = strawberry.field(description="First name.")
    last_name: str = strawberry.field(description="Last name.")
    name: str = strawberry.field(description="First and last name.")
    role: Role = strawberry.field(description="OWNER, ADMIN or MEMBER.")
    is_owner: bool = strawberry.field(description="True for the account's owner.")

    _model: Private[UserModel]
    _viewer: Private[Principal]
    _readable: Private[bool]

    @classmethod
    def from_model(cls, model: UserModel, viewer: Principal) -> User:
        return cls(
            id=_id(model.id),
            email=model.email,
            first_name=model.first_name,
            last_name=model.last_name,
            name=model.name,
            role=model.role,
            is_owner=model.role == Role.OWNER,
            _model=model,
            _viewer=viewer,
            _readable=queries.can_read_private(viewer, model.id),
        )

    def _check(self) -> None:
        if not self._readable:
            raise ForbiddenError("A MEMBER sees only the public fields of another user.")

    @resolver(description=f"Free text, e.g. a certification. {MEMBER_HIDDEN}")
    def qualification(self) -> str | None:
        self._check()
        return self._model.qualification

    @resolver(description=f"INVITED, ENABLED or DISABLED. {MEMBER_HIDDEN}")
    def status(self) -> UserStatus | None:
        self._check()
        return self._model.status

    @resolver(description=f"Whether the user holds a licence. {MEMBER_HIDDEN}")
    def has_license(self) -> bool | None:
        self._check()
        return self._model.status != UserStatus.DISABLED

    @resolver(
        description="The latest invitation (a resend rotates the token of the same "
        f"invitation). {MEMBER_HIDDEN}"
    )
    async def invitation(self, info: Info) -> Invitation | None:
        self._check()
        loaders = loaders_of(info, self._model.account_id)
        model = await loaders.latest_invitation.load(self._model.id)
        return Invitation.from_model(model) if model is not None else None

    @resolver(description=f"Every licence assignment of this user, newest first. {MEMBER_HIDDEN}")
    async def license_history(self, info: Info) -> list[LicenseAssignment] | None:
        self._check()
        loaders = loaders_of(info, self._model.account_id)
        rows = await loaders.assignments.load(self._model.id)
        return [LicenseAssignment.from_model(row, self._viewer) for row in rows]

    @resolver(description=f"When the user was created. {MEMBER_HIDDEN}")
    def created_at(self) -> datetime | None:
        self._check()
        return self._model.created_at

    @resolver(description=f"Time of the user's last authenticated request. {MEMBER_HIDDEN}")
    def last_active_at(self) -> datetime | None:
        self._check()
        return self._model.last_active_at


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


@strawberry.type(description="Licences of the account: purchased, used, and scheduled.")
class LicenseSummary:
    total: int = strawberry.field(description="Licences purchased for the current billing period.")
    in_use: int = strawberry.field(description="Licences held by users: ENABLED plus INVITED.")
    available: int = strawberry.field(description="total - inUse.")
    pending_invitations: int = strawberry.field(
        description="INVITED users (the owner's password-set email is not an invitation to a "
        "licence)."
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

    @classmethod
    def from_domain(cls, summary: queries.LicenseSummary) -> LicenseSummary:
        return cls(
            total=summary.total,
            in_use=summary.in_use,
            available=summary.available,
            pending_invitations=summary.pending_invitations,
            scheduled_total=summary.scheduled_total,
            scheduled_at=summary.scheduled_at,
            released_at_scheduled_change=summary.released_at_scheduled_change,
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
    cursor: str = strawberry.field(description="Opaque position of this user in the list.")


@strawberry.type(description="One page of the account's users.")
class UserConnection:
    edges: list[UserEdge] = strawberry.field(description="The users of this page, in order.")
    page_info: PageInfo = strawberry.field(description="Where this page ends.")
    total_count: int = strawberry.field(
        description="All users matching the filter, not only this page."
    )


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
    async def licenses(self, info: Info) -> LicenseSummary | None:
        _guard_account(self._viewer)
        pending = await loaders_of(info, self._model.id).pending_invitations.load(self._model.id)
        return LicenseSummary.from_domain(
            queries.summarize(self._model, pending_invitations=pending)
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
        return UserConnection(
            edges=[
                UserEdge(node=User.from_model(edge.node, viewer), cursor=edge.cursor)
                for edge in page.edges
            ],
            page_info=PageInfo.from_page(page),
            total_count=page.total_count,
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
            total_count=page.total_count,
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
            total_count=page.total_count,
        )

    @resolver(description="Every API token of the account, revoked ones too, newest first.")
    async def api_tokens(self) -> list[ApiToken] | None:
        _guard_account(self._viewer)
        with refusals_as_errors():
            tokens = await queries.list_api_tokens(actor=self._viewer)
        return [ApiToken.from_model(token, self._viewer) for token in tokens]


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
