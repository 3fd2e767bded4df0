"""Email rendering: every kind, escaping, links, money and dates."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import pytest

from domain.enums import EmailKind, SeatChangeKind
from workers.emails import (
    CONTEXT_BY_KIND,
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
    format_money,
    format_utc,
    render_email,
)

EXPIRES = datetime(2026, 12, 5, 14, 0, tzinfo=UTC)
ACCEPT_URL = "https://licenses.example/accept-invitation?token=AbC-123_xyz"
SET_PASSWORD_URL = "https://licenses.example/accept-invitation?token=Own3r-Token_42"

INVITATION = InvitationEmail(
    recipient_name="Ada Lovelace",
    account_name="Acme",
    inviter_name="Grace Hopper",
    accept_url=ACCEPT_URL,
    expires_at=EXPIRES,
)
OWNER_PASSWORD_SET = OwnerPasswordSetEmail(
    recipient_name="Olga Owner",
    account_name="Acme",
    set_password_url=SET_PASSWORD_URL,
    expires_at=EXPIRES,
)
RECEIPT = SeatChangeReceiptEmail(
    recipient_name="Olga Owner",
    account_name="Acme",
    previous_total=3,
    new_total=5,
    amount_cents=123456,
    currency="USD",
    effective_at=EXPIRES,
    kind=SeatChangeKind.INCREASE,
)
CONTEXTS: list[EmailContext] = [
    INVITATION,
    InvitationResentEmail(
        recipient_name="Ada Lovelace",
        account_name="Acme",
        inviter_name=None,
        accept_url=ACCEPT_URL,
        expires_at=EXPIRES,
    ),
    OWNER_PASSWORD_SET,
    LicenseRemovedEmail(recipient_name="Ada Lovelace", account_name="Acme"),
    OwnershipTransferredToNewOwnerEmail(
        recipient_name="Nina New",
        account_name="Acme",
        new_owner_name="Nina New",
        previous_owner_name="Olga Owner",
    ),
    OwnershipTransferredToPreviousOwnerEmail(
        recipient_name="Olga Owner",
        account_name="Acme",
        new_owner_name="Nina New",
        previous_owner_name="Olga Owner",
    ),
    LicensesReleasedEmail(
        recipient_name="Olga Owner",
        account_name="Acme",
        new_total=2,
        released=[("Bob Builder", "bob@example.com"), ("Eve Example", "eve@example.com")],
    ),
    RECEIPT,
    WebhookEndpointDisabledEmail(
        recipient_name="Olga Owner",
        account_name="Acme",
        url="https://hooks.example.com/licences",
        reason="Every delivery failed for three days.",
    ),
    ReclaimNoticeEmail(
        recipient_name="Ada Lovelace",
        account_name="Acme",
        idle_days=23,
        inactive_days=30,
        release_at=EXPIRES,
        sign_in_url="https://licenses.example/",
    ),
    RenewalNoticeEmail(
        recipient_name="Olga Owner",
        account_name="Acme",
        period_end=EXPIRES,
        seats=2,
        amount_cents=2000,
        currency="USD",
        reduced_from=5,
        released=[("Bob Builder", "bob@example.com")],
    ),
]


def kind_id(context: EmailContext) -> str:
    return context.email_kind.value


def test_there_is_one_context_and_one_sample_per_email_kind() -> None:
    assert set(CONTEXT_BY_KIND) == set(EmailKind)
    assert {type(context).email_kind for context in CONTEXTS} == set(EmailKind)


@pytest.mark.parametrize("context", CONTEXTS, ids=kind_id)
def test_every_kind_renders_text_and_html(context: EmailContext) -> None:
    rendered = render_email(context)

    assert rendered.subject
    assert "\n" not in rendered.subject
    assert "Acme" in rendered.subject
    assert rendered.text.startswith(f"Hello {context.recipient_name},\n")
    assert "Acme" in rendered.text
    assert "{{" not in rendered.text
    assert "{%" not in rendered.text
    assert rendered.html.startswith("<!DOCTYPE html>")
    assert rendered.html.rstrip().endswith("</html>")
    assert f"Hello {context.recipient_name}," in rendered.html
    assert "<title>" in rendered.html
    assert "{{" not in rendered.html


@pytest.mark.parametrize("context", CONTEXTS, ids=kind_id)
def test_names_are_escaped_in_html_and_verbatim_in_text(context: EmailContext) -> None:
    hostile = replace(context, recipient_name="<script>x</script>", account_name="A & <b>B</b>")

    rendered = render_email(hostile)

    assert "&lt;script&gt;x&lt;/script&gt;" in rendered.html
    assert "<script>" not in rendered.html
    assert "A &amp; &lt;b&gt;B&lt;/b&gt;" in rendered.html
    assert "<script>x</script>" in rendered.text
    assert "A & <b>B</b>" in rendered.text
    # The subject is plain text; the HTML title escapes it.
    assert "A & <b>B</b>" in rendered.subject


@pytest.mark.parametrize("context", CONTEXTS[:2], ids=kind_id)
def test_invitation_link_is_on_its_own_line_in_text_and_a_link_in_html(
    context: EmailContext,
) -> None:
    rendered = render_email(context)

    assert ACCEPT_URL in rendered.text.splitlines()
    assert f'href="{ACCEPT_URL}"' in rendered.html
    assert "2026-12-05 14:00 UTC" in rendered.text
    assert "2026-12-05 14:00 UTC" in rendered.html


def test_invitation_names_the_inviter_only_when_known() -> None:
    with_inviter = render_email(INVITATION)
    without_inviter = render_email(replace(INVITATION, inviter_name=None))

    assert "Grace Hopper has invited you to join Acme" in with_inviter.text
    assert "Grace Hopper has invited you" in with_inviter.html
    assert "You have been invited to join Acme" in without_inviter.text
    assert "None" not in without_inviter.text
    assert "None" not in without_inviter.html


def test_owner_password_set_link_is_in_both_parts() -> None:
    rendered = render_email(OWNER_PASSWORD_SET)

    assert SET_PASSWORD_URL in rendered.text.splitlines()
    assert f'href="{SET_PASSWORD_URL}"' in rendered.html


def test_link_with_ampersand_is_escaped_in_html_attribute() -> None:
    url = "https://licenses.example/accept-invitation?token=abc&lang=en"

    rendered = render_email(replace(INVITATION, accept_url=url))

    assert url in rendered.text.splitlines()
    assert 'href="https://licenses.example/accept-invitation?token=abc&amp;lang=en"' in (
        rendered.html
    )


def test_released_users_are_listed_and_escaped() -> None:
    context = LicensesReleasedEmail(
        recipient_name="Olga Owner",
        account_name="Acme",
        new_total=1,
        released=[("Bob <Builder>", "bob@example.com")],
    )

    rendered = render_email(context)

    assert "- Bob <Builder> <bob@example.com>" in rendered.text.splitlines()
    assert "<li>Bob &lt;Builder&gt; (bob@example.com)</li>" in rendered.html
    assert "1 licence." in rendered.text
    assert rendered.subject == "1 licence released in Acme"


@pytest.mark.parametrize(
    ("kind", "subject", "phrase"),
    [
        (SeatChangeKind.INCREASE, "Receipt: Acme now has 5 licences", "USD 1,234.56"),
        (SeatChangeKind.DECREASE, "Seat reduction scheduled for Acme", "Nothing is charged"),
        (SeatChangeKind.NONE, "No change to the licences of Acme", "Nothing is charged"),
    ],
)
def test_seat_change_receipt_wording_follows_the_kind(
    kind: SeatChangeKind, subject: str, phrase: str
) -> None:
    amount = 123456 if kind is SeatChangeKind.INCREASE else 0
    context = replace(RECEIPT, kind=kind, amount_cents=amount)

    rendered = render_email(context)

    assert rendered.subject == subject
    assert phrase in rendered.text
    assert phrase in rendered.html
    assert "2026-12-05 14:00 UTC" in rendered.text


@pytest.mark.parametrize(
    ("cents", "currency", "expected"),
    [
        (0, "USD", "USD 0.00"),
        (5, "USD", "USD 0.05"),
        (100, "eur", "EUR 1.00"),
        (123456, "USD", "USD 1,234.56"),
        (-250, "USD", "USD -2.50"),
        # Beyond float precision: only integer arithmetic gets the last cent.
        (10**20 + 1, "USD", "USD 1,000,000,000,000,000,000.01"),
    ],
)
def test_money_is_formatted_from_integer_cents(cents: int, currency: str, expected: str) -> None:
    assert format_money(cents, currency) == expected


def test_dates_are_rendered_in_utc() -> None:
    paris_winter = timezone(timedelta(hours=1))

    assert format_utc(datetime(2026, 12, 5, 15, 0, 30, tzinfo=paris_winter)) == (
        "2026-12-05 14:00 UTC"
    )
    assert format_utc(datetime(2026, 12, 5, 14, 0)) == "2026-12-05 14:00 UTC"


def test_unknown_context_type_is_refused() -> None:
    with pytest.raises(TypeError, match="no email template"):
        render_email(object())  # type: ignore[arg-type]


def test_reclaim_notice_names_the_release_date_and_the_sign_in_link() -> None:
    notice = next(c for c in CONTEXTS if isinstance(c, ReclaimNoticeEmail))

    rendered = render_email(notice)

    assert rendered.subject == "Your Acme licence will be released on 2026-12-05 14:00 UTC"
    assert "for 23 days" in rendered.text
    assert "https://licenses.example/" in rendered.text
    assert 'href="https://licenses.example/"' in rendered.html


def test_renewal_notice_tells_the_amount_and_the_reduction_only_when_there_is_one() -> None:
    notice = next(c for c in CONTEXTS if isinstance(c, RenewalNoticeEmail))
    plain = replace(notice, seats=5, amount_cents=5000, reduced_from=None, released=[])

    with_reduction = render_email(notice)
    without = render_email(plain)

    assert with_reduction.subject == "Acme renews on 2026-12-05 14:00 UTC: USD 20.00"
    assert "A reduction from 5 licences to 2" in with_reduction.text
    assert "Bob Builder <bob@example.com>" in with_reduction.text
    assert "reduction" not in without.text
    assert "USD 50.00" in without.text
