"""The one SMTP catcher of the tests: aiosmtpd on loopback, every message kept.

`SmtpCatcher` holds aiosmtpd's hooks. It keeps each message it accepts as a
`ReceivedEmail` (and as ``NNNN.eml`` in `directory` when one is given), refuses
the recipients named in `refusals` with the answer given there, can answer DATA
slowly (`delay_seconds`, to catch a client in the middle of a batch), counts
EHLOs (one per session: no STARTTLS here) and lets another thread wait for a
message (`wait_for`). With ``keep=False`` it only counts messages, parsing and
storing nothing (the benchmark's sink).

`SmtpServer` runs a catcher with aiosmtpd's Controller (a thread with its own
event loop) on a loopback port, with AUTH required when given a password:

    with SmtpServer() as smtp:
        ...  # MAIL_URL = smtp.url, or smtp.mailer()
        (received,) = smtp.received

aiosmtpd (a dev dependency) is imported when a server starts, so this module
imports without it.
"""

from __future__ import annotations

import asyncio
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from email.parser import Parser
from pathlib import Path
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

from tests.support.local_services import LOOPBACK, find_free_port
from workers.mail.smtp import SmtpMailer

ACCEPTED = "250 Message accepted for delivery"


def parse_message(raw: bytes) -> EmailMessage:
    """A message as sent. Headers may be raw UTF-8 (RFC 6532, internationalised
    addresses), which a bytes parser would leave surrogate-escaped: decode first."""
    message = Parser(policy=policy.default).parsestr(raw.decode("utf-8", "surrogateescape"))
    assert isinstance(message, EmailMessage)
    return message


def _body(message: EmailMessage, subtype: str) -> str:
    part = message.get_body(preferencelist=(subtype,))
    if part is None or part.get_content_subtype() != subtype:
        return ""
    content = part.get_content()
    return content if isinstance(content, str) else ""


@dataclass(frozen=True)
class ReceivedEmail:
    """One message the catcher accepted, with its envelope."""

    mail_from: str
    rcpt_tos: list[str]
    raw: bytes
    message: EmailMessage
    peer: Any = None
    path: Path | None = None  # NNNN.eml, when the catcher writes files

    @property
    def recipients(self) -> tuple[str, ...]:
        return tuple(self.rcpt_tos)

    @property
    def subject(self) -> str:
        return str(self.message.get("Subject", ""))

    @property
    def message_id(self) -> str:
        return str(self.message["Message-ID"])

    @property
    def text(self) -> str:
        """The text/plain part ("" when there is none)."""
        return _body(self.message, "plain")

    @property
    def html(self) -> str:
        return _body(self.message, "html")

    def links(self) -> list[str]:
        return re.findall(r"https?://[^\s\"'<>]+", self.text)

    def accept_token(self, public_url: str) -> str:
        """The token of the ``{public_url}/accept-invitation?token=…`` link in the text part."""
        prefix = f"{public_url.rstrip('/')}/accept-invitation?"
        for link in self.links():
            if link.startswith(prefix):
                tokens = parse_qs(urlsplit(link).query).get("token")
                if tokens:
                    return tokens[0]
        raise AssertionError(f"no {prefix}token=… link in the email {self.subject!r}:\n{self.text}")


class SmtpCatcher:
    """aiosmtpd's hooks: keep (or count) every message, refuse chosen recipients."""

    def __init__(
        self,
        *,
        refusals: Mapping[str, str] | None = None,
        delay_seconds: float = 0.0,
        directory: Path | None = None,
        keep: bool = True,
    ) -> None:
        self.refusals = dict(refusals or {})
        self.delay_seconds = delay_seconds
        self.directory = directory
        self.keep = keep
        self.received: list[ReceivedEmail] = []
        self.count = 0
        self.ehlo_count = 0
        self.arrived = threading.Condition()

    async def handle_EHLO(
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        # The controller's own readiness probe sends no EHLO.
        self.ehlo_count += 1
        session.host_name = hostname
        return responses

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        if address in self.refusals:
            return self.refusals[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if not self.keep:
            self.count += 1
            return ACCEPTED
        content = envelope.original_content or envelope.content
        raw = content.encode("utf-8") if isinstance(content, str) else bytes(content)
        message = parse_message(raw)
        # Recorded when the whole message is here: from now on it counts as
        # delivered, whether or not the client lives to read the reply.
        with self.arrived:
            path = None
            if self.directory is not None:
                path = self.directory / f"{len(self.received) + 1:04d}.eml"
                path.write_bytes(raw)
            self.received.append(
                ReceivedEmail(
                    mail_from=str(envelope.mail_from),
                    rcpt_tos=[str(rcpt) for rcpt in envelope.rcpt_tos],
                    raw=raw,
                    message=message,
                    peer=session.peer,
                    path=path,
                )
            )
            self.count += 1
            self.arrived.notify_all()
        if self.delay_seconds:
            await asyncio.sleep(self.delay_seconds)
        return ACCEPTED

    def messages(self) -> list[ReceivedEmail]:
        """A copy of what has arrived so far (safe from another thread)."""
        with self.arrived:
            return list(self.received)

    def wait_for(
        self, matches: Callable[[ReceivedEmail], bool], *, timeout: float, skip: int = 0
    ) -> ReceivedEmail | None:
        """The first (after ``skip`` matches) message that ``matches``, waiting up to
        ``timeout`` seconds for it; None when none came."""
        deadline = time.monotonic() + timeout
        with self.arrived:
            while True:
                found = [message for message in self.received if matches(message)]
                if len(found) > skip:
                    return found[skip]
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self.arrived.wait(min(remaining, 0.5))


class SmtpServer:
    """A catcher behind aiosmtpd's Controller on LOOPBACK:`port` (free one by default)."""

    def __init__(
        self,
        handler: SmtpCatcher | None = None,
        port: int | None = None,
        *,
        password: bytes | None = None,
    ) -> None:
        self.handler = handler or SmtpCatcher()
        self.port = port or find_free_port()
        self.password = password
        self.logins: list[tuple[bytes, bytes]] = []  # (login, password) of each AUTH
        self._controller: Any = None

    @property
    def url(self) -> str:
        return f"smtp://{LOOPBACK}:{self.port}"

    @property
    def received(self) -> list[ReceivedEmail]:
        return self.handler.received

    def message_ids(self) -> Counter[str]:
        return Counter(received.message_id for received in self.handler.messages())

    def mailer(self) -> SmtpMailer:
        return SmtpMailer(LOOPBACK, self.port, timeout=5)

    def start(self) -> Self:
        if self._controller is not None:
            return self
        from aiosmtpd.controller import Controller  # noqa: PLC0415 - a dev dependency

        if self.handler.directory is not None:
            self.handler.directory.mkdir(parents=True, exist_ok=True)
        controller = Controller(
            self.handler,
            hostname=LOOPBACK,
            port=self.port,
            server_hostname="mail.test",
            ready_timeout=10.0,
            **self._auth_options(),
        )
        controller.start()
        self._controller = controller
        return self

    def _auth_options(self) -> dict[str, Any]:
        if self.password is None:
            return {}
        from aiosmtpd.smtp import AuthResult, LoginPassword  # noqa: PLC0415 - a dev dependency

        def authenticator(
            server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
        ) -> Any:
            assert isinstance(auth_data, LoginPassword)
            self.logins.append((auth_data.login, auth_data.password))
            # handled=False: aiosmtpd answers 535 on failure.
            return AuthResult(success=auth_data.password == self.password, handled=False)

        return {"authenticator": authenticator, "auth_required": True, "auth_require_tls": False}

    def stop(self) -> None:
        controller, self._controller = self._controller, None
        if controller is not None:
            controller.stop()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
