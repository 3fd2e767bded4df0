"""How the account is billed: its billing terms, seat change previews, charges."""

from __future__ import annotations

from datetime import datetime

import strawberry

from domain.enums import BillingInterval, ChargeKind, SeatChangeKind
from domain.models import Account as AccountModel
from domain.models import Charge as ChargeModel
from domain.services import seats
from schema.fields import object_id
from schema.scalars import BigInt
from schema.types.pagination import Connection, Edge, specialised


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
            id=object_id(model.id),
            kind=model.kind,
            quantity=model.quantity,
            unit_amount_cents=BigInt(model.unit_amount_cents),
            amount_cents=BigInt(model.amount_cents),
            currency=model.currency,
            period_start=model.period_start,
            period_end=model.period_end,
            created_at=model.created_at,
        )


@specialised(
    "A charge with its position in the list.",
    node="The charge.",
    cursor="Opaque position of this charge in the list.",
)
class ChargeEdge(Edge[Charge]):
    pass


@specialised(
    "One page of the account's charges, newest first.",
    edges="The charges of this page.",
    total_count="All charges of the account.",
)
class ChargeConnection(Connection[ChargeEdge]):
    pass
