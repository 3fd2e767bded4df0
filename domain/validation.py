"""Input rules shared by the use cases; each failure names the input field."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

from email_validator import EmailNotValidError, validate_email

from domain.enums import Role
from domain.errors import DomainError, ErrorCode
from domain.rules.roles import require_assignable_role

NAME_MAX = 100
QUALIFICATION_MAX = 200
ACCOUNT_NAME_MAX = 200
EMAIL_MAX = 320


def _has_control_characters(text: str) -> bool:
    # Categories Cc (controls, including newline and tab) and Cf (format marks
    # such as bidi overrides that can disguise a name).
    return any(unicodedata.category(ch) in ("Cc", "Cf") for ch in text)


def clean_email(raw: str, *, field: str = "email") -> tuple[str, str]:
    """Return (email as given but normalised, lower-cased key); syntax only, no DNS."""
    text = raw.strip()
    if not text or len(text) > EMAIL_MAX or _has_control_characters(text):
        raise DomainError(ErrorCode.INVALID_INPUT, "Enter a valid email address.", field=field)
    try:
        checked = validate_email(text, check_deliverability=False)
    except EmailNotValidError:
        raise DomainError(
            ErrorCode.INVALID_INPUT, "Enter a valid email address.", field=field
        ) from None
    return checked.normalized, checked.normalized.lower()


def clean_name(raw: str, *, field: str, maximum: int = NAME_MAX) -> str:
    text = raw.strip()
    if not 1 <= len(text) <= maximum:
        raise DomainError(
            ErrorCode.INVALID_INPUT, f"Must be 1 to {maximum} characters.", field=field
        )
    if _has_control_characters(text):
        raise DomainError(
            ErrorCode.INVALID_INPUT, "Must not contain control characters.", field=field
        )
    return text


def clean_qualification(raw: str | None, *, field: str = "qualification") -> str | None:
    """Free text, optional; an empty or blank value clears it."""
    if raw is None:
        return None
    text = raw.strip()
    if not text:
        return None
    if len(text) > QUALIFICATION_MAX:
        raise DomainError(
            ErrorCode.INVALID_INPUT,
            f"Must be at most {QUALIFICATION_MAX} characters.",
            field=field,
        )
    if _has_control_characters(text):
        raise DomainError(
            ErrorCode.INVALID_INPUT, "Must not contain control characters.", field=field
        )
    return text


@dataclass(frozen=True, slots=True)
class CleanInvitation:
    """An invitation's input once every field has passed its rule."""

    email: str
    email_key: str
    first_name: str
    last_name: str
    role: Role
    qualification: str | None


def clean_invitation(
    *, email: str, first_name: str, last_name: str, role: Role, qualification: str | None
) -> CleanInvitation:
    """The input checks of an invitation, in the order its refusals are reported."""
    address, email_key = clean_email(email, field="email")
    first = clean_name(first_name, field="firstName")
    last = clean_name(last_name, field="lastName")
    cleaned_qualification = clean_qualification(qualification, field="qualification")
    require_assignable_role(role)
    return CleanInvitation(address, email_key, first, last, role, cleaned_qualification)


def sort_name(first_name: str, last_name: str) -> str:
    return f"{first_name} {last_name}".casefold()
