"""Email contents: one context dataclass per EmailKind, rendered with Jinja2.

Each kind has `<kind>.txt` (which also sets the subject) and `<kind>.html`
(extending `base.html`) under `workers/templates/`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import ClassVar

import jinja2

from domain.enums import EmailKind, SeatChangeKind

PRODUCT_NAME = "Licenses & Users"
TEMPLATES_DIR = Path(__file__).parent / "templates"


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    text: str
    html: str


@dataclass(frozen=True)
class _InviteEmail:
    email_kind: ClassVar[EmailKind]
    recipient_name: str
    account_name: str
    inviter_name: str | None
    accept_url: str
    expires_at: datetime


@dataclass(frozen=True)
class InvitationEmail(_InviteEmail):
    email_kind: ClassVar[EmailKind] = EmailKind.INVITATION


@dataclass(frozen=True)
class InvitationResentEmail(_InviteEmail):
    email_kind: ClassVar[EmailKind] = EmailKind.INVITATION_RESENT


@dataclass(frozen=True)
class OwnerPasswordSetEmail:
    email_kind: ClassVar[EmailKind] = EmailKind.OWNER_PASSWORD_SET
    recipient_name: str
    account_name: str
    set_password_url: str
    expires_at: datetime


@dataclass(frozen=True)
class LicenseRemovedEmail:
    email_kind: ClassVar[EmailKind] = EmailKind.LICENSE_REMOVED
    recipient_name: str
    account_name: str


@dataclass(frozen=True)
class _OwnershipTransferredEmail:
    email_kind: ClassVar[EmailKind]
    recipient_name: str
    account_name: str
    new_owner_name: str
    previous_owner_name: str


@dataclass(frozen=True)
class OwnershipTransferredToNewOwnerEmail(_OwnershipTransferredEmail):
    email_kind: ClassVar[EmailKind] = EmailKind.OWNERSHIP_TRANSFERRED_TO_NEW_OWNER


@dataclass(frozen=True)
class OwnershipTransferredToPreviousOwnerEmail(_OwnershipTransferredEmail):
    email_kind: ClassVar[EmailKind] = EmailKind.OWNERSHIP_TRANSFERRED_TO_PREVIOUS_OWNER


@dataclass(frozen=True)
class LicensesReleasedEmail:
    email_kind: ClassVar[EmailKind] = EmailKind.LICENSES_RELEASED
    recipient_name: str
    account_name: str
    new_total: int
    # (name, email) of each user whose licence was released.
    released: Sequence[tuple[str, str]]


@dataclass(frozen=True)
class SeatChangeReceiptEmail:
    email_kind: ClassVar[EmailKind] = EmailKind.SEAT_CHANGE_RECEIPT
    recipient_name: str
    account_name: str
    previous_total: int
    new_total: int
    # Charged now: the prorated SEAT_INCREASE charge, 0 for a reduction
    # (scheduled for the period end, never charged) or a cancellation.
    amount_cents: int
    currency: str
    effective_at: datetime
    kind: SeatChangeKind


@dataclass(frozen=True)
class WebhookEndpointDisabledEmail:
    email_kind: ClassVar[EmailKind] = EmailKind.WEBHOOK_ENDPOINT_DISABLED
    recipient_name: str
    account_name: str
    url: str
    reason: str


@dataclass(frozen=True)
class ReclaimNoticeEmail:
    email_kind: ClassVar[EmailKind] = EmailKind.RECLAIM_NOTICE
    recipient_name: str
    account_name: str
    # Whole days since the user's inactivity began, and the policy's threshold.
    idle_days: int
    inactive_days: int
    release_at: datetime
    sign_in_url: str


@dataclass(frozen=True)
class RenewalNoticeEmail:
    email_kind: ClassVar[EmailKind] = EmailKind.RENEWAL_NOTICE
    recipient_name: str
    account_name: str
    period_end: datetime
    seats: int
    amount_cents: int
    currency: str
    reduced_from: int | None
    # (name, email) of each user the reduction would release.
    released: Sequence[tuple[str, str]]


EmailContext = (
    InvitationEmail
    | InvitationResentEmail
    | OwnerPasswordSetEmail
    | LicenseRemovedEmail
    | OwnershipTransferredToNewOwnerEmail
    | OwnershipTransferredToPreviousOwnerEmail
    | LicensesReleasedEmail
    | SeatChangeReceiptEmail
    | WebhookEndpointDisabledEmail
    | ReclaimNoticeEmail
    | RenewalNoticeEmail
)

_TEMPLATE_BY_TYPE: dict[type[EmailContext], str] = {
    InvitationEmail: "invitation",
    InvitationResentEmail: "invitation_resent",
    OwnerPasswordSetEmail: "owner_password_set",
    LicenseRemovedEmail: "license_removed",
    OwnershipTransferredToNewOwnerEmail: "ownership_transferred_to_new_owner",
    OwnershipTransferredToPreviousOwnerEmail: "ownership_transferred_to_previous_owner",
    LicensesReleasedEmail: "licenses_released",
    SeatChangeReceiptEmail: "seat_change_receipt",
    WebhookEndpointDisabledEmail: "webhook_endpoint_disabled",
    ReclaimNoticeEmail: "reclaim_notice",
    RenewalNoticeEmail: "renewal_notice",
}

CONTEXT_BY_KIND: dict[EmailKind, type[EmailContext]] = {
    cls.email_kind: cls for cls in _TEMPLATE_BY_TYPE
}


def format_money(cents: int, currency: str) -> str:
    """`format_money(123456, "usd")` -> "USD 1,234.56"; integers only, no float.

    Amounts are in hundredths of the currency unit, as everywhere in the
    service (the spec's "cents"), so two decimals whatever the currency.
    """
    sign = "-" if cents < 0 else ""
    units, hundredths = divmod(abs(cents), 100)
    return f"{currency.strip().upper()} {sign}{units:,}.{hundredths:02d}"


def format_utc(moment: datetime) -> str:
    """`2026-12-05 14:00 UTC`: one unambiguous form for readers in any zone.

    A naive datetime is taken as UTC, which is how the service stores time.
    """
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _plural(count: int, singular: str, plural: str) -> str:
    return f"{count:,} {singular if count == 1 else plural}"


@cache
def _environment() -> jinja2.Environment:
    # Built once per process: compiling templates is the costly part, and
    # Jinja caches them per environment. auto_reload=False spares a stat()
    # of the template file on every render.
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html",), default=False),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        auto_reload=False,
    )
    env.filters["money"] = format_money
    env.filters["utc"] = format_utc
    env.globals["plural"] = _plural
    env.globals["product_name"] = PRODUCT_NAME
    return env


def render_email(context: EmailContext) -> RenderedEmail:
    """Subject, text and HTML of the email described by `context`."""
    try:
        name = _TEMPLATE_BY_TYPE[type(context)]
    except KeyError:
        raise TypeError(f"no email template for {type(context).__name__}") from None
    env = _environment()
    # Shallow on purpose: asdict() would turn the (name, email) tuples of
    # LicensesReleasedEmail into lists, and copies what it need not.
    variables = {field.name: getattr(context, field.name) for field in fields(context)}
    # The text template sets `subject` at top level; rendering it as a module
    # exposes that variable, so the subject is written next to the body it
    # summarises and the template is rendered once.
    text_module = env.get_template(f"{name}.txt").make_module(variables)
    raw_subject = getattr(text_module, "subject", None)
    if raw_subject is None:
        raise LookupError(f"template {name}.txt does not set a subject")
    subject = " ".join(str(raw_subject).split())
    text = str(text_module)
    html = env.get_template(f"{name}.html").render(variables, subject=subject)
    return RenderedEmail(subject=subject, text=text, html=html)
