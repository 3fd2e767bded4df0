"""What every mailer shares: the outgoing email, the failure it reports, the
mailer interface, and the MIME message built from an email."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.errors import MessageError
from email.headerregistry import Address, BaseHeader, HeaderRegistry
from email.message import EmailMessage
from email.policy import default as default_policy
from email.utils import format_datetime, quote
from typing import Protocol

# Server replies end up in `DeliveryError` messages, which are stored on the
# invitation and shown to administrators: keep them to one short line.
_MAX_REASON_LENGTH = 200


class DeliveryError(Exception):
    """A message was not accepted; `permanent` means retrying cannot help."""

    def __init__(self, message: str, *, permanent: bool, smtp_code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.permanent = permanent
        self.smtp_code = smtp_code

    def __str__(self) -> str:
        return self.message

    def __reduce__(self) -> tuple[object, ...]:
        # Keyword-only arguments are lost by the default exception pickling,
        # and job queues pickle exceptions.
        return (_rebuild_delivery_error, (self.message, self.permanent, self.smtp_code))


def _rebuild_delivery_error(message: str, permanent: bool, smtp_code: int | None) -> DeliveryError:
    return DeliveryError(message, permanent=permanent, smtp_code=smtp_code)


@dataclass(frozen=True)
class OutgoingEmail:
    to_address: str
    to_name: str | None
    subject: str
    text: str
    html: str
    # A full header value such as "<outbox-123@licenses.local>", derived by the
    # caller from the outbox row so that a retried job sends the same id.
    message_id: str
    from_address: str


class Mailer(Protocol):
    async def send(self, email: OutgoingEmail) -> None:
        """Deliver one message or raise `DeliveryError`."""
        ...

    async def send_batch(self, emails: Sequence[OutgoingEmail]) -> list[DeliveryError | None]:
        """Deliver several messages over one connection; one result per message."""
        ...

    async def aclose(self) -> None:
        """Release resources held between calls."""
        ...


async def send_as_batch(mailer: Mailer, email: OutgoingEmail) -> None:
    """`Mailer.send` for a mailer whose single message is a batch of one."""
    (error,) = await mailer.send_batch([email])
    if error is not None:
        raise error


def one_line(text: str) -> str:
    # Header injection: a CR/LF in a user-supplied name or subject must not
    # start a new header, and the email package refuses it outright.
    return " ".join(text.split())


def short_reason(text: str) -> str:
    """A failure's text as it is stored: one line, cut to a readable length."""
    line = one_line(text)
    if len(line) > _MAX_REASON_LENGTH:
        line = line[: _MAX_REASON_LENGTH - 1] + "…"
    return line


class _HeaderClasses(HeaderRegistry):
    """The standard header registry, building each header class once.

    `HeaderRegistry.__getitem__` creates a new class (`type(...)`) for every
    header it parses, a good part of the cost of building a message (about
    twenty headers with the MIME parts). The class depends on the header's
    name only, so it is kept per name; the headers are the same.
    """

    def __init__(self) -> None:
        super().__init__()
        self._classes: dict[str, type[BaseHeader]] = {}

    def __getitem__(self, name: str) -> type[BaseHeader]:
        key = name.lower()
        found = self._classes.get(key)
        if found is None:
            found = self._classes[key] = super().__getitem__(name)
        return found


# email.policy.default, with the header classes built once.
_MESSAGE_POLICY = default_policy.clone(header_factory=_HeaderClasses())


def build_message(email: OutgoingEmail) -> EmailMessage:
    """The MIME message (multipart/alternative: text, then HTML) for `email`.

    Raises ValueError when an address cannot be put in a header.
    """
    message = EmailMessage(policy=_MESSAGE_POLICY)
    try:
        message["From"] = email.from_address
        message["To"] = _to_header(one_line(email.to_name or ""), email.to_address.strip())
    except (ValueError, MessageError) as exc:
        raise ValueError(f"invalid address: {exc}") from exc
    message["Subject"] = one_line(email.subject)
    message["Date"] = format_datetime(datetime.now(UTC))
    message["Message-ID"] = email.message_id.strip()
    # Quoted-printable keeps both parts 7-bit with short lines, so the message
    # passes unchanged through servers without 8BITMIME and long HTML lines
    # never hit the 998-octet SMTP limit.
    message.set_content(email.text, cte="quoted-printable")
    message.add_alternative(email.html, subtype="html", cte="quoted-printable")
    return message


def _to_header(name: str, address: str) -> Address | str:
    try:
        return Address(display_name=name, addr_spec=address)
    except (ValueError, MessageError):
        if address.isascii():
            raise
        # An internationalised local part (RFC 6531) is refused by Address
        # but valid once the header is written as UTF-8, which aiosmtplib
        # does when the server offers SMTPUTF8 (and refuses otherwise).
        # (formataddr() would insist on ASCII, hence the header by hand.)
        return f'"{quote(name)}" <{address}>' if name else address
