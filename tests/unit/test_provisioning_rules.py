"""Which email and names a provider's user gets (SPEC section 9)."""

from __future__ import annotations

import pytest

from domain.errors import DomainError, ErrorCode
from domain.rules.provisioning import SentEmail, chosen_email, derived_names


@pytest.mark.parametrize(
    ("emails", "user_name", "expected"),
    [
        (
            [SentEmail("home@example.com", "home"), SentEmail("p@example.com", "other", True)],
            "u",
            "p@example.com",
        ),
        (
            [SentEmail("home@example.com", "home"), SentEmail("w@example.com", "Work")],
            "u",
            "w@example.com",
        ),
        ([SentEmail("a@example.com"), SentEmail("b@example.com")], "u", "a@example.com"),
        ([SentEmail("  ")], "jo@example.com", "jo@example.com"),
        ([], "jo@example.com", "jo@example.com"),
    ],
)
def test_given_sent_emails_when_one_is_chosen_then_primary_then_work_then_first_then_user_name(
    emails: list[SentEmail], user_name: str, expected: str
) -> None:
    assert chosen_email(emails, user_name) == expected


def test_given_no_address_at_all_when_one_is_chosen_then_invalid_input() -> None:
    with pytest.raises(DomainError) as caught:
        chosen_email([], "jdoe")

    assert caught.value.code == ErrorCode.INVALID_INPUT


@pytest.mark.parametrize(
    ("given", "family", "display", "expected"),
    [
        ("Ada", "Lovelace", "ignored here", ("Ada", "Lovelace")),
        (None, None, "Mary Ann Evans", ("Mary Ann", "Evans")),
        ("Mary", None, "Mary Ann Evans", ("Mary", "Evans")),
        (None, None, "Cher", ("ada.l", "ada.l")),
        (None, None, None, ("ada.l", "ada.l")),
        ("  ", "", "  ", ("ada.l", "ada.l")),
    ],
)
def test_given_omitted_names_when_derived_then_display_name_split_else_the_local_part(
    given: str | None, family: str | None, display: str | None, expected: tuple[str, str]
) -> None:
    assert (
        derived_names(given=given, family=family, display_name=display, email="ada.l@example.com")
        == expected
    )
