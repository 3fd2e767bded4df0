"""What an identity provider's user becomes here (SPEC section 9): its email
and names, chosen from what it sent. Pure: the SCIM layer unpacks the body."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from domain.errors import DomainError, ErrorCode
from domain.validation import NAME_MAX


@dataclass(frozen=True, slots=True)
class SentEmail:
    value: str
    type: str | None = None
    primary: bool = False


def chosen_email(emails: Sequence[SentEmail], user_name: str) -> str:
    """The email marked primary, else the one of type work, else the first,
    else userName when it is an address."""
    sent = [email for email in emails if email.value and email.value.strip()]
    for email in sent:
        if email.primary:
            return email.value
    for email in sent:
        if (email.type or "").lower() == "work":
            return email.value
    if sent:
        return sent[0].value
    if "@" in user_name:
        return user_name
    raise DomainError(ErrorCode.INVALID_INPUT, "The user has no email address.", field="emails")


def derived_names(
    *, given: str | None, family: str | None, display_name: str | None, email: str
) -> tuple[str, str]:
    """Names the provider omitted: displayName split at its last space, else
    the email's local part. Never refused for being absent."""
    display = (display_name or "").strip()
    if " " in display:
        first_guess, _, last_guess = display.rpartition(" ")
    else:
        local = email.partition("@")[0].strip() or email
        first_guess = last_guess = local
    first = given.strip() if given and given.strip() else first_guess.strip()
    last = family.strip() if family and family.strip() else last_guess.strip()
    return first[:NAME_MAX], last[:NAME_MAX]
