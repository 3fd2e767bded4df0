"""Whether an invitation's email is still worth sending when its turn comes."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from domain.enums import InvitationStatus
from domain.rules.seats import holds_license

if TYPE_CHECKING:
    from domain.models import Invitation, User


def why_invitation_email_is_moot(
    invitation: Invitation, user: User, *, emailed_version: int | None, now: datetime
) -> str | None:
    """Why the email about `invitation` (to its `user`), written for token
    `emailed_version`, should not be sent now; None when it should.

    Its link works only while the invitation is pending, unexpired and at
    that version (a resend bumps it and sends its own email), and only for a
    user who still holds the licence.
    """
    if invitation.status != InvitationStatus.PENDING:
        return f"invitation {invitation.id} is {invitation.status}"
    if invitation.expires_at <= now:
        return f"invitation {invitation.id} has expired"
    if emailed_version is not None and emailed_version != invitation.token_version:
        return f"invitation {invitation.id} was re-sent since"
    if not holds_license(user.status):
        return f"user {user.id} no longer holds a licence"
    return None
