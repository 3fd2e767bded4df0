"""What each email's outbox row carries: one typed payload per EmailKind.

The services write these (through `UnitOfWork.email`) and the outbox worker
reads them back (`read_payload`) to compose the message from the state at
send time. The stored JSON keeps the keys and order the rows have always
had, so rows committed before a deployment are delivered after it.

Payloads hold ids and the few facts of a change that the rows no longer
show later. A `recipient_user_id` of None means the account's owner at send
time.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar, Self

from domain.enums import EmailKind, SeatChangeKind

JsonObject = dict[str, Any]


class PayloadError(Exception):
    """A row cannot become an email, now or ever (a payload that does not fit
    its kind, rows it names that do not exist)."""


@dataclass(frozen=True)
class InvitationLinkPayload:
    """An email carrying an invitation's link: {"invitationId", "tokenVersion"}."""

    email_kind: ClassVar[EmailKind]
    invitation_id: int
    # None on rows written before versions were recorded: any version goes.
    token_version: int | None

    def to_payload(self) -> JsonObject:
        return {"invitationId": self.invitation_id, "tokenVersion": self.token_version}

    @classmethod
    def from_payload(cls, data: Mapping[str, Any]) -> Self:
        kind = cls.email_kind
        return cls(
            invitation_id=_int(kind, data, "invitationId"),
            token_version=_optional_int(kind, data, "tokenVersion"),
        )


@dataclass(frozen=True)
class InvitationPayload(InvitationLinkPayload):
    email_kind: ClassVar[EmailKind] = EmailKind.INVITATION


@dataclass(frozen=True)
class InvitationResentPayload(InvitationLinkPayload):
    email_kind: ClassVar[EmailKind] = EmailKind.INVITATION_RESENT


@dataclass(frozen=True)
class OwnerPasswordSetPayload(InvitationLinkPayload):
    email_kind: ClassVar[EmailKind] = EmailKind.OWNER_PASSWORD_SET


InvitationLink = InvitationPayload | InvitationResentPayload | OwnerPasswordSetPayload
INVITATION_LINK_PAYLOADS: dict[EmailKind, type[InvitationLink]] = {
    cls.email_kind: cls
    for cls in (InvitationPayload, InvitationResentPayload, OwnerPasswordSetPayload)
}


@dataclass(frozen=True)
class LicenseRemovedPayload:
    email_kind: ClassVar[EmailKind] = EmailKind.LICENSE_REMOVED
    user_id: int

    def to_payload(self) -> JsonObject:
        return {"userId": self.user_id}

    @classmethod
    def from_payload(cls, data: Mapping[str, Any]) -> Self:
        return cls(user_id=_int(cls.email_kind, data, "userId"))


@dataclass(frozen=True)
class OwnershipTransferredPayload:
    """Both owners' emails about one transfer, each to its recipient."""

    email_kind: ClassVar[EmailKind]
    account_id: int
    previous_owner_id: int
    new_owner_id: int
    recipient_user_id: int | None

    def to_payload(self) -> JsonObject:
        return {
            "accountId": self.account_id,
            "previousOwnerId": self.previous_owner_id,
            "newOwnerId": self.new_owner_id,
            "recipientUserId": self.recipient_user_id,
        }

    @classmethod
    def from_payload(cls, data: Mapping[str, Any]) -> Self:
        kind = cls.email_kind
        return cls(
            account_id=_int(kind, data, "accountId"),
            previous_owner_id=_int(kind, data, "previousOwnerId"),
            new_owner_id=_int(kind, data, "newOwnerId"),
            recipient_user_id=_optional_int(kind, data, "recipientUserId"),
        )


@dataclass(frozen=True)
class OwnershipTransferredToNewOwnerPayload(OwnershipTransferredPayload):
    email_kind: ClassVar[EmailKind] = EmailKind.OWNERSHIP_TRANSFERRED_TO_NEW_OWNER


@dataclass(frozen=True)
class OwnershipTransferredToPreviousOwnerPayload(OwnershipTransferredPayload):
    email_kind: ClassVar[EmailKind] = EmailKind.OWNERSHIP_TRANSFERRED_TO_PREVIOUS_OWNER


def ownership_transferred_notices(
    *, account_id: int, previous_owner_id: int, new_owner_id: int
) -> tuple[OwnershipTransferredToNewOwnerPayload, OwnershipTransferredToPreviousOwnerPayload]:
    """The two emails of one transfer: to the new owner, then to the previous one."""
    ids = (account_id, previous_owner_id, new_owner_id)
    return (
        OwnershipTransferredToNewOwnerPayload(*ids, recipient_user_id=new_owner_id),
        OwnershipTransferredToPreviousOwnerPayload(*ids, recipient_user_id=previous_owner_id),
    )


@dataclass(frozen=True)
class LicensesReleasedPayload:
    email_kind: ClassVar[EmailKind] = EmailKind.LICENSES_RELEASED
    account_id: int
    recipient_user_id: int | None
    user_ids: tuple[int, ...]
    new_total: int

    def to_payload(self) -> JsonObject:
        return {
            "accountId": self.account_id,
            "recipientUserId": self.recipient_user_id,
            "userIds": list(self.user_ids),
            "newTotal": self.new_total,
        }

    @classmethod
    def from_payload(cls, data: Mapping[str, Any]) -> Self:
        kind = cls.email_kind
        return cls(
            account_id=_int(kind, data, "accountId"),
            recipient_user_id=_optional_int(kind, data, "recipientUserId"),
            user_ids=_int_tuple(kind, data, "userIds"),
            new_total=_int(kind, data, "newTotal"),
        )


@dataclass(frozen=True)
class SeatChangeReceiptPayload:
    email_kind: ClassVar[EmailKind] = EmailKind.SEAT_CHANGE_RECEIPT
    account_id: int
    recipient_user_id: int | None
    change_kind: SeatChangeKind
    previous_total: int
    new_total: int
    # None: nothing was charged.
    charge_id: int | None
    effective_at: datetime

    def to_payload(self) -> JsonObject:
        return {
            "accountId": self.account_id,
            "recipientUserId": self.recipient_user_id,
            "kind": self.change_kind.value,
            "previousTotal": self.previous_total,
            "newTotal": self.new_total,
            "chargeId": self.charge_id,
            "effectiveAt": self.effective_at.isoformat(),
        }

    @classmethod
    def from_payload(cls, data: Mapping[str, Any]) -> Self:
        kind = cls.email_kind
        try:
            change_kind = SeatChangeKind(str(data.get("kind")))
            effective_at = datetime.fromisoformat(str(data["effectiveAt"]))
        except (KeyError, ValueError) as exc:
            raise PayloadError(f"{kind} payload: bad 'kind' or 'effectiveAt' ({exc})") from None
        return cls(
            account_id=_int(kind, data, "accountId"),
            recipient_user_id=_optional_int(kind, data, "recipientUserId"),
            change_kind=change_kind,
            previous_total=_int(kind, data, "previousTotal"),
            new_total=_int(kind, data, "newTotal"),
            charge_id=_optional_int(kind, data, "chargeId"),
            effective_at=effective_at,
        )


@dataclass(frozen=True)
class WebhookEndpointDisabledPayload:
    """To the owner: an endpoint failed for three days and was disabled."""

    email_kind: ClassVar[EmailKind] = EmailKind.WEBHOOK_ENDPOINT_DISABLED
    endpoint_id: int

    def to_payload(self) -> JsonObject:
        return {"endpointId": self.endpoint_id}

    @classmethod
    def from_payload(cls, data: Mapping[str, Any]) -> Self:
        return cls(endpoint_id=_int(cls.email_kind, data, "endpointId"))


@dataclass(frozen=True)
class ReclaimNoticePayload:
    """To the user: its licence goes at `release_at` unless it signs in."""

    email_kind: ClassVar[EmailKind] = EmailKind.RECLAIM_NOTICE
    user_id: int
    # The inactivity window noticed: activity since makes the email moot.
    inactive_since: datetime
    release_at: datetime

    def to_payload(self) -> JsonObject:
        return {
            "userId": self.user_id,
            "inactiveSince": self.inactive_since.isoformat(),
            "releaseAt": self.release_at.isoformat(),
        }

    @classmethod
    def from_payload(cls, data: Mapping[str, Any]) -> Self:
        kind = cls.email_kind
        return cls(
            user_id=_int(kind, data, "userId"),
            inactive_since=_datetime(kind, data, "inactiveSince"),
            release_at=_datetime(kind, data, "releaseAt"),
        )


@dataclass(frozen=True)
class RenewalNoticePayload:
    """To the owner, before the period ends: what the renewal will be.

    The figures are those of the moment the notice was decided; the email is
    dropped if the period has been renewed by the time it is sent."""

    email_kind: ClassVar[EmailKind] = EmailKind.RENEWAL_NOTICE
    account_id: int
    period_index: int
    period_end: datetime
    seats: int
    amount_cents: int
    currency: str
    # The total before a scheduled reduction (None: no reduction scheduled).
    reduced_from: int | None
    released_user_ids: tuple[int, ...]

    def to_payload(self) -> JsonObject:
        return {
            "accountId": self.account_id,
            "periodIndex": self.period_index,
            "periodEnd": self.period_end.isoformat(),
            "seats": self.seats,
            "amountCents": self.amount_cents,
            "currency": self.currency,
            "reducedFrom": self.reduced_from,
            "releasedUserIds": list(self.released_user_ids),
        }

    @classmethod
    def from_payload(cls, data: Mapping[str, Any]) -> Self:
        kind = cls.email_kind
        currency = data.get("currency")
        if not isinstance(currency, str):
            raise PayloadError(f"{kind} payload needs a string 'currency', got {currency!r}")
        return cls(
            account_id=_int(kind, data, "accountId"),
            period_index=_int(kind, data, "periodIndex"),
            period_end=_datetime(kind, data, "periodEnd"),
            seats=_int(kind, data, "seats"),
            amount_cents=_int(kind, data, "amountCents"),
            currency=currency,
            reduced_from=_optional_int(kind, data, "reducedFrom"),
            released_user_ids=_int_tuple(kind, data, "releasedUserIds"),
        )


EmailPayload = (
    InvitationPayload
    | InvitationResentPayload
    | OwnerPasswordSetPayload
    | LicenseRemovedPayload
    | OwnershipTransferredToNewOwnerPayload
    | OwnershipTransferredToPreviousOwnerPayload
    | LicensesReleasedPayload
    | SeatChangeReceiptPayload
    | WebhookEndpointDisabledPayload
    | ReclaimNoticePayload
    | RenewalNoticePayload
)

_PAYLOAD_BY_KIND: dict[EmailKind, type[EmailPayload]] = {
    cls.email_kind: cls
    for cls in (
        InvitationPayload,
        InvitationResentPayload,
        OwnerPasswordSetPayload,
        LicenseRemovedPayload,
        OwnershipTransferredToNewOwnerPayload,
        OwnershipTransferredToPreviousOwnerPayload,
        LicensesReleasedPayload,
        SeatChangeReceiptPayload,
        WebhookEndpointDisabledPayload,
        ReclaimNoticePayload,
        RenewalNoticePayload,
    )
}


def read_payload(kind: EmailKind, data: object) -> EmailPayload:
    """The typed payload of a stored row; PayloadError when it does not fit `kind`."""
    if not isinstance(data, dict):
        raise PayloadError(f"{kind} payload is not an object: {data!r}")
    return _PAYLOAD_BY_KIND[kind].from_payload(data)


def _int(kind: EmailKind, data: Mapping[str, Any], key: str) -> int:
    value = data.get(key)
    if not isinstance(value, int) or isinstance(value, bool):
        raise PayloadError(f"{kind} payload needs an integer {key!r}, got {value!r}")
    return value


def _optional_int(kind: EmailKind, data: Mapping[str, Any], key: str) -> int | None:
    return None if data.get(key) is None else _int(kind, data, key)


def _int_tuple(kind: EmailKind, data: Mapping[str, Any], key: str) -> tuple[int, ...]:
    value = data.get(key)
    if not isinstance(value, list) or not all(
        isinstance(item, int) and not isinstance(item, bool) for item in value
    ):
        raise PayloadError(f"{kind} payload needs a list of integers {key!r}, got {value!r}")
    return tuple(value)


def _datetime(kind: EmailKind, data: Mapping[str, Any], key: str) -> datetime:
    value = data.get(key)
    try:
        return datetime.fromisoformat(str(value))
    except ValueError:
        raise PayloadError(
            f"{kind} payload needs an ISO 8601 time {key!r}, got {value!r}"
        ) from None
