"""The account, its licence summary, and the licence agreement."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import strawberry
from strawberry import Private

from domain import config
from domain.enums import UserOrder
from domain.models import Account as AccountModel
from domain.principal import Principal
from domain.reads import access, reclaim, records, summary, webhooks
from domain.reads.users import get_user
from domain.services import seats
from schema.context import Info, loaders_of
from schema.errors import ForbiddenError, refusals_as_errors
from schema.fields import object_id, resolver
from schema.types.audit import AuditEvent, AuditEventConnection, AuditEventEdge
from schema.types.billing import Billing, Charge, ChargeConnection, ChargeEdge, SeatChangePreview
from schema.types.pagination import (
    PAGE_SIZE_DEFAULT,
    AfterArgument,
    FirstArgument,
    given_text,
    page_size,
)
from schema.types.reclaim import (
    ReclaimCandidate,
    ReclaimCandidateConnection,
    ReclaimCandidateEdge,
    ReclaimPolicy,
)
from schema.types.tokens import ApiToken
from schema.types.users import User, UserConnection, UserFilter, users_page
from schema.types.webhooks import WebhookEndpoint


def _guard_account(viewer: Principal) -> None:
    if not access.can_read_account_details(viewer):
        raise ForbiddenError()


async def _pending_invitations(root: Any, info: Info) -> int:
    # Counted only when asked for: the count grows with the account.
    licenses: LicenseSummary = root
    if licenses._pending is not None:
        return licenses._pending
    loaders = loaders_of(info, licenses._account_id)
    return await loaders.pending_invitations.load(licenses._account_id)


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
    def from_domain(cls, account_id: int, licenses: summary.LicenseSummary) -> LicenseSummary:
        return cls(
            total=licenses.total,
            in_use=licenses.in_use,
            available=licenses.available,
            scheduled_total=licenses.scheduled_total,
            scheduled_at=licenses.scheduled_at,
            released_at_scheduled_change=licenses.released_at_scheduled_change,
            _account_id=account_id,
            _pending=licenses.pending_invitations,
        )


@strawberry.type(description="The licence agreement that changeSeatCount must accept.")
class LicenseAgreement:
    version: str = strawberry.field(description="Pass it as agreementVersion.")
    text: str = strawberry.field(description="The agreement's text.")

    @classmethod
    def current(cls) -> LicenseAgreement:
        return cls(version=config.AGREEMENT_VERSION, text=config.AGREEMENT_TEXT)


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
        return cls(id=object_id(model.id), name=model.name, _model=model, _viewer=viewer)

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
            self._model.id, summary.summarize(self._model, pending_invitations=None)
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
        first: FirstArgument = PAGE_SIZE_DEFAULT,
        after: AfterArgument = strawberry.UNSET,
        filter_: Annotated[
            UserFilter | None,
            strawberry.argument(name="filter", description="Only users matching all of it."),
        ] = strawberry.UNSET,
        order_by: Annotated[
            UserOrder | None, strawberry.argument(description="Sort order; ties by id.")
        ] = UserOrder.NAME_ASC,
    ) -> UserConnection | None:
        _guard_account(self._viewer)
        return await users_page(
            info,
            self._viewer,
            first=first,
            after=after,
            criteria=filter_,
            order=order_by,
        )

    @resolver(description="Null (no error) when no user of this account has this id.")
    async def user(
        self, id: Annotated[strawberry.ID, strawberry.argument(description="The user's id.")]
    ) -> User | None:
        _guard_account(self._viewer)
        with refusals_as_errors():
            model = await get_user(actor=self._viewer, user_id=id)
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
        first: FirstArgument = PAGE_SIZE_DEFAULT,
        after: AfterArgument = strawberry.UNSET,
    ) -> ChargeConnection | None:
        _guard_account(self._viewer)
        with refusals_as_errors():
            page = await records.list_charges(
                actor=self._viewer, first=page_size(first), after=given_text(after)
            )
        return ChargeConnection.of(page, ChargeEdge.along(page, Charge.from_model))

    @resolver(description="Newest first.")
    async def audit_log(
        self,
        first: FirstArgument = PAGE_SIZE_DEFAULT,
        after: AfterArgument = strawberry.UNSET,
    ) -> AuditEventConnection | None:
        _guard_account(self._viewer)
        with refusals_as_errors():
            page = await records.list_audit_events(
                actor=self._viewer, first=page_size(first), after=given_text(after)
            )
        return AuditEventConnection.of(
            page,
            AuditEventEdge.along(page, lambda model: AuditEvent.from_model(model, self._viewer)),
        )

    @resolver(description="Every API token of the account, revoked ones too, newest first.")
    async def api_tokens(self) -> list[ApiToken] | None:
        _guard_account(self._viewer)
        with refusals_as_errors():
            tokens = await records.list_api_tokens(actor=self._viewer)
        return [ApiToken.from_model(token, self._viewer) for token in tokens]

    @resolver(description="The account's webhook endpoints, oldest first.")
    async def webhook_endpoints(self) -> list[WebhookEndpoint] | None:
        _guard_account(self._viewer)
        with refusals_as_errors():
            endpoints = await webhooks.list_webhook_endpoints(actor=self._viewer)
        return [WebhookEndpoint.from_model(endpoint, self._viewer) for endpoint in endpoints]

    @resolver(description="Releases the licences of users who stopped using them.")
    async def reclaim_policy(self) -> ReclaimPolicy | None:
        _guard_account(self._viewer)
        with refusals_as_errors():
            stored = await reclaim.reclaim_policy(actor=self._viewer)
        return ReclaimPolicy.from_domain(stored, self._viewer)

    @resolver(
        description="Who the reclaim policy would release, and when, if nothing changes; "
        "soonest first."
    )
    async def reclaim_preview(
        self,
        info: Info,
        first: FirstArgument = PAGE_SIZE_DEFAULT,
        after: AfterArgument = strawberry.UNSET,
    ) -> ReclaimCandidateConnection | None:
        _guard_account(self._viewer)
        with refusals_as_errors():
            page = await reclaim.reclaim_preview(
                actor=self._viewer,
                first=page_size(first),
                after=given_text(after),
                clock=info.context.clock,
            )
        return ReclaimCandidateConnection.of(
            page,
            ReclaimCandidateEdge.along(
                page, lambda candidate: ReclaimCandidate.from_domain(candidate, self._viewer)
            ),
        )
