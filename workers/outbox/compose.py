"""Composing each email: from the row's typed payload and the state at send
time to the message, or the reason it is no longer to be sent.

One composer per kind of payload; kinds whose emails differ only in their
template (an invitation and its resend, the two ownership notices) share one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import assert_never
from urllib.parse import urlencode, urlsplit

from domain.emails import (
    EmailPayload,
    InvitationLinkPayload,
    InvitationPayload,
    InvitationResentPayload,
    LicenseRemovedPayload,
    LicensesReleasedPayload,
    OwnerPasswordSetPayload,
    OwnershipTransferredPayload,
    OwnershipTransferredToNewOwnerPayload,
    OwnershipTransferredToPreviousOwnerPayload,
    PayloadError,
    ReclaimNoticePayload,
    RenewalNoticePayload,
    SeatChangeReceiptPayload,
    WebhookEndpointDisabledPayload,
    read_payload,
)
from domain.enums import EmailKind, Role, UserStatus
from domain.models import Account, Charge, Invitation, OutboxMessage, User, WebhookEndpoint
from domain.rules.invitations import why_invitation_email_is_moot
from domain.rules.reclaim import why_notice_is_moot
from domain.security import invitation_token
from domain.settings import Settings
from workers.emails import (
    EmailContext,
    InvitationEmail,
    InvitationResentEmail,
    LicenseRemovedEmail,
    LicensesReleasedEmail,
    OwnerPasswordSetEmail,
    OwnershipTransferredToNewOwnerEmail,
    OwnershipTransferredToPreviousOwnerEmail,
    ReclaimNoticeEmail,
    RenewalNoticeEmail,
    SeatChangeReceiptEmail,
    WebhookEndpointDisabledEmail,
    render_email,
)
from workers.mail.message import OutgoingEmail

ACCEPT_PATH = "/accept-invitation"


@dataclass(frozen=True)
class Skip:
    reason: str


@dataclass(frozen=True)
class Prepared:
    email: OutgoingEmail
    # Set for the invitation kinds: the delivery is recorded on it too.
    invitation_id: int | None


@dataclass(frozen=True)
class _Draft:
    context: EmailContext
    to_address: str
    to_name: str
    invitation_id: int | None = None


def message_id_header(outbox_id: int, public_url: str) -> str:
    host = urlsplit(public_url).hostname or "localhost"
    return f"<outbox-{outbox_id}@{host}>"


def accept_url(public_url: str, invitation: Invitation) -> str:
    token = invitation_token(invitation.id, invitation.token_version)
    return f"{public_url.rstrip('/')}{ACCEPT_PATH}?{urlencode({'token': token})}"


async def prepare_email(
    row: OutboxMessage, *, settings: Settings, now: datetime
) -> Prepared | Skip:
    """The email for `row` as of now, or why nothing is to be sent.

    Raises PayloadError when the payload does not fit the kind or names rows
    that do not exist.
    """
    draft = await _draft(read_payload(EmailKind(row.kind), row.payload), settings, now)
    if isinstance(draft, Skip):
        return draft
    rendered = render_email(draft.context)
    email = OutgoingEmail(
        to_address=draft.to_address,
        to_name=draft.to_name,
        subject=rendered.subject,
        text=rendered.text,
        html=rendered.html,
        message_id=message_id_header(row.id, settings.public_url),
        from_address=settings.mail_from,
    )
    return Prepared(email=email, invitation_id=draft.invitation_id)


async def _draft(payload: EmailPayload, settings: Settings, now: datetime) -> _Draft | Skip:
    match payload:
        case InvitationPayload() | InvitationResentPayload():
            return await _invitation(payload, settings, now)
        case OwnerPasswordSetPayload():
            return await _owner_password_set(payload, settings, now)
        case LicenseRemovedPayload():
            return await _license_removed(payload)
        case OwnershipTransferredToNewOwnerPayload() | OwnershipTransferredToPreviousOwnerPayload():
            return await _ownership_transferred(payload)
        case LicensesReleasedPayload():
            return await _licenses_released(payload)
        case SeatChangeReceiptPayload():
            return await _seat_change_receipt(payload)
        case WebhookEndpointDisabledPayload():
            return await _webhook_endpoint_disabled(payload)
        case ReclaimNoticePayload():
            return await _reclaim_notice(payload, settings)
        case RenewalNoticePayload():
            return await _renewal_notice(payload)
        case _:  # pragma: no cover - every payload is handled above
            assert_never(payload)


# ---------------------------------------------------------------------------
# Invitation links


async def _invitation(
    payload: InvitationPayload | InvitationResentPayload, settings: Settings, now: datetime
) -> _Draft | Skip:
    invitation = await _sendable_invitation(payload, now)
    if isinstance(invitation, Skip):
        return invitation
    inviter = invitation.invited_by_user
    context_class = (
        InvitationEmail if isinstance(payload, InvitationPayload) else InvitationResentEmail
    )
    context = context_class(
        recipient_name=invitation.user.name,
        account_name=invitation.account.name,
        inviter_name=inviter.name if inviter else None,
        accept_url=accept_url(settings.public_url, invitation),
        expires_at=invitation.expires_at,
    )
    return _invitation_draft(context, invitation)


async def _owner_password_set(
    payload: OwnerPasswordSetPayload, settings: Settings, now: datetime
) -> _Draft | Skip:
    invitation = await _sendable_invitation(payload, now)
    if isinstance(invitation, Skip):
        return invitation
    context = OwnerPasswordSetEmail(
        recipient_name=invitation.user.name,
        account_name=invitation.account.name,
        set_password_url=accept_url(settings.public_url, invitation),
        expires_at=invitation.expires_at,
    )
    return _invitation_draft(context, invitation)


async def _sendable_invitation(payload: InvitationLinkPayload, now: datetime) -> Invitation | Skip:
    # One statement for the invitation, its user, account and inviter.
    invitation = (
        await Invitation.filter(id=payload.invitation_id)
        .select_related("user", "account", "invited_by_user")
        .first()
    )
    if invitation is None:
        raise PayloadError(
            f"{payload.email_kind}: invitation {payload.invitation_id} does not exist"
        )
    reason = why_invitation_email_is_moot(
        invitation, invitation.user, emailed_version=payload.token_version, now=now
    )
    return invitation if reason is None else Skip(reason)


def _invitation_draft(context: EmailContext, invitation: Invitation) -> _Draft:
    return _Draft(context, invitation.email, invitation.user.name, invitation.id)


# ---------------------------------------------------------------------------
# Notices


async def _license_removed(payload: LicenseRemovedPayload) -> _Draft:
    kind = payload.email_kind
    user = await _user(kind, payload.user_id)
    account = await _account(kind, user.account_id)
    context = LicenseRemovedEmail(recipient_name=user.name, account_name=account.name)
    return _Draft(context, user.email, user.name)


async def _ownership_transferred(payload: OwnershipTransferredPayload) -> _Draft:
    kind = payload.email_kind
    account = await _account(kind, payload.account_id)
    recipient = await _recipient(kind, payload.recipient_user_id, account.id)
    new_owner = await _user(kind, payload.new_owner_id)
    previous_owner = await _user(kind, payload.previous_owner_id)
    context_class = (
        OwnershipTransferredToNewOwnerEmail
        if isinstance(payload, OwnershipTransferredToNewOwnerPayload)
        else OwnershipTransferredToPreviousOwnerEmail
    )
    context = context_class(
        recipient_name=recipient.name,
        account_name=account.name,
        new_owner_name=new_owner.name,
        previous_owner_name=previous_owner.name,
    )
    return _Draft(context, recipient.email, recipient.name)


async def _licenses_released(payload: LicensesReleasedPayload) -> _Draft:
    kind = payload.email_kind
    account = await _account(kind, payload.account_id)
    recipient = await _recipient(kind, payload.recipient_user_id, account.id)
    by_id = {user.id: user for user in await User.filter(id__in=list(payload.user_ids))}
    missing = [user_id for user_id in payload.user_ids if user_id not in by_id]
    if missing:
        raise PayloadError(f"{kind}: users {missing} do not exist")
    context = LicensesReleasedEmail(
        recipient_name=recipient.name,
        account_name=account.name,
        new_total=payload.new_total,
        released=[(by_id[user_id].name, by_id[user_id].email) for user_id in payload.user_ids],
    )
    return _Draft(context, recipient.email, recipient.name)


async def _seat_change_receipt(payload: SeatChangeReceiptPayload) -> _Draft:
    kind = payload.email_kind
    account = await _account(kind, payload.account_id)
    recipient = await _recipient(kind, payload.recipient_user_id, account.id)
    charge = None
    if payload.charge_id is not None:
        charge = await Charge.filter(id=payload.charge_id).first()
        if charge is None:
            raise PayloadError(f"{kind}: charge {payload.charge_id} does not exist")
    context = SeatChangeReceiptEmail(
        recipient_name=recipient.name,
        account_name=account.name,
        previous_total=payload.previous_total,
        new_total=payload.new_total,
        amount_cents=charge.amount_cents if charge else 0,
        currency=charge.currency if charge else account.currency,
        effective_at=payload.effective_at,
        kind=payload.change_kind,
    )
    return _Draft(context, recipient.email, recipient.name)


async def _webhook_endpoint_disabled(payload: WebhookEndpointDisabledPayload) -> _Draft | Skip:
    kind = payload.email_kind
    endpoint = await WebhookEndpoint.filter(id=payload.endpoint_id).first()
    if endpoint is None:
        raise PayloadError(f"{kind}: webhook endpoint {payload.endpoint_id} does not exist")
    if endpoint.enabled or endpoint.deleted_at is not None:
        return Skip("the endpoint was enabled again or deleted")
    account = await _account(kind, endpoint.account_id)
    owner = await _recipient(kind, None, account.id)
    context = WebhookEndpointDisabledEmail(
        recipient_name=owner.name,
        account_name=account.name,
        url=endpoint.url,
        reason=endpoint.disabled_reason or "",
    )
    return _Draft(context, owner.email, owner.name)


async def _reclaim_notice(payload: ReclaimNoticePayload, settings: Settings) -> _Draft | Skip:
    from domain.reads.reclaim import load_policy  # noqa: PLC0415 - domain reads, at send time

    user = await _user(payload.email_kind, payload.user_id)
    account = await _account(payload.email_kind, user.account_id)
    policy = await load_policy(account.id)
    reason = why_notice_is_moot(
        status=UserStatus(user.status),
        last_active_at=user.last_active_at,
        noticed_window=payload.inactive_since,
        policy_enabled=policy.terms.enabled,
    )
    if reason is not None:
        return Skip(reason)
    context = ReclaimNoticeEmail(
        recipient_name=user.name,
        account_name=account.name,
        idle_days=max(
            0, (payload.release_at - payload.inactive_since).days - policy.terms.notice_days
        ),
        inactive_days=policy.terms.inactive_days,
        release_at=payload.release_at,
        sign_in_url=f"{settings.public_url.rstrip('/')}/",
    )
    return _Draft(context, user.email, user.name)


async def _renewal_notice(payload: RenewalNoticePayload) -> _Draft | Skip:
    kind = payload.email_kind
    account = await _account(kind, payload.account_id)
    if account.period_index != payload.period_index:
        return Skip("the period has been renewed already")
    owner = await _recipient(kind, None, account.id)
    by_id = {user.id: user for user in await User.filter(id__in=list(payload.released_user_ids))}
    context = RenewalNoticeEmail(
        recipient_name=owner.name,
        account_name=account.name,
        period_end=payload.period_end,
        seats=payload.seats,
        amount_cents=payload.amount_cents,
        currency=payload.currency,
        reduced_from=payload.reduced_from,
        released=[
            (by_id[user_id].name, by_id[user_id].email)
            for user_id in payload.released_user_ids
            if user_id in by_id
        ],
    )
    return _Draft(context, owner.email, owner.name)


async def _user(kind: EmailKind, user_id: int) -> User:
    user = await User.filter(id=user_id).first()
    if user is None:
        raise PayloadError(f"{kind}: user {user_id} does not exist")
    return user


async def _account(kind: EmailKind, account_id: int) -> Account:
    account = await Account.filter(id=account_id).first()
    if account is None:
        raise PayloadError(f"{kind}: account {account_id} does not exist")
    return account


async def _recipient(kind: EmailKind, recipient_id: int | None, account_id: int) -> User:
    """The named recipient, or the account's owner when none is named."""
    if recipient_id is not None:
        return await _user(kind, recipient_id)
    owner = await User.filter(account_id=account_id, role=Role.OWNER).first()
    if owner is None:
        raise PayloadError(f"{kind}: account {account_id} has no owner to write to")
    return owner
