"""The SMTP mailer (aiosmtplib): connections reused for a batch and kept for
a short while, server replies turned into retryable or permanent failures."""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections.abc import Sequence
from contextlib import suppress
from email.utils import parseaddr
from functools import cache
from urllib.parse import parse_qs, unquote, urlsplit

import aiosmtplib

from workers.mail.message import (
    DeliveryError,
    OutgoingEmail,
    build_message,
    send_as_batch,
    short_reason,
)

DEFAULT_TIMEOUT = 10.0
# Connections kept between calls (see SmtpMailer): at most this many, this long.
MAX_KEPT_CONNECTIONS = 4
KEEP_CONNECTION_SECONDS = 30.0
SMTP_PORT = 25
SMTPS_PORT = 465


@cache
def _local_hostname() -> str:
    """The name sent with EHLO: aiosmtplib's default (the FQDN), looked up once
    per process instead of in a thread on every connection."""
    return socket.getfqdn()


def _envelope_sender(email: OutgoingEmail) -> str:
    return parseaddr(email.from_address)[1] or email.from_address


class SmtpMailer:
    """Delivers over SMTP; reuses the connection for a batch, and keeps it for
    the next calls for a short while.

    Workers send in bursts, one message per call: connecting, greeting
    (EHLO, STARTTLS, AUTH) and quitting for each one cost more than sending
    it. So after a call whose connection is still sound, the connection is
    kept (at most `MAX_KEPT_CONNECTIONS`, one per concurrent send, each for
    `KEEP_CONNECTION_SECONDS`, well below the five minutes RFC 5321 asks
    servers to wait). Before a kept connection is used it must answer a
    NOOP; one the server has closed meanwhile is dropped for a new one, so
    a message is never handed to a connection known to be dead. `aclose()`
    quits the kept connections (the worker and the embedded runner call it
    when they stop). A kept connection belongs to the event loop that opened
    it and is used on that loop only.
    """

    def __init__(
        self,
        host: str,
        port: int | None = None,
        *,
        username: str | None = None,
        password: str | None = None,
        use_tls: bool = False,
        start_tls: bool | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        if use_tls and start_tls:
            raise ValueError("implicit TLS and STARTTLS are mutually exclusive")
        if (username is None) != (password is None):
            raise ValueError("SMTP username and password must be given together")
        self.host = host
        self.port = port if port is not None else (SMTPS_PORT if use_tls else SMTP_PORT)
        self.username = username
        self.password = password
        self.use_tls = use_tls
        # None: upgrade when the server offers STARTTLS; True: refuse to send
        # without it (aiosmtplib's meaning of the flag).
        self.start_tls = start_tls
        self.timeout = timeout
        # Sound connections of earlier calls: (client, its loop, when kept).
        self._kept: list[tuple[aiosmtplib.SMTP, asyncio.AbstractEventLoop, float]] = []

    @classmethod
    def from_url(cls, url: str, *, timeout: float = DEFAULT_TIMEOUT) -> SmtpMailer:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in ("smtp", "smtps"):
            raise ValueError(f"not an SMTP URL (scheme {scheme!r}); use smtp:// or smtps://")
        if not parts.hostname:
            raise ValueError("MAIL_URL: the SMTP URL has no host")
        try:
            port = parts.port
        except ValueError as exc:
            raise ValueError(f"MAIL_URL: invalid port ({exc})") from None
        query = parse_qs(parts.query, keep_blank_values=True)
        unknown = set(query) - {"starttls"}
        if unknown:
            raise ValueError(f"MAIL_URL: unknown parameter(s) {', '.join(sorted(unknown))}")
        start_tls: bool | None = None
        if "starttls" in query:
            value = query["starttls"][-1].lower()
            if scheme == "smtps":
                raise ValueError("MAIL_URL: starttls does not apply to smtps:// (already TLS)")
            if value == "required":
                start_tls = True
            elif value != "opportunistic":
                raise ValueError("MAIL_URL: starttls must be 'required' or 'opportunistic'")
        username = unquote(parts.username) if parts.username is not None else None
        password = unquote(parts.password) if parts.password is not None else None
        if username is not None and password is None:
            # "smtp://user@host" names a login without a secret; AUTH would
            # fail on every message, so say so at start-up.
            raise ValueError("MAIL_URL: a user name was given without a password")
        return cls(
            parts.hostname,
            port,
            username=username or None,
            password=password if username else None,
            use_tls=scheme == "smtps",
            start_tls=start_tls,
            timeout=timeout,
        )

    def __repr__(self) -> str:
        user = f"{self.username}@" if self.username else ""
        scheme = "smtps" if self.use_tls else "smtp"
        return f"SmtpMailer({scheme}://{user}{self.host}:{self.port})"

    async def send(self, email: OutgoingEmail) -> None:
        await send_as_batch(self, email)

    async def send_batch(self, emails: Sequence[OutgoingEmail]) -> list[DeliveryError | None]:
        if not emails:
            return []
        client = await self._kept_connection()
        if client is None:
            client = aiosmtplib.SMTP(
                hostname=self.host,
                port=self.port,
                username=self.username,
                password=self.password,
                use_tls=self.use_tls,
                start_tls=self.start_tls,
                timeout=self.timeout,
                local_hostname=_local_hostname(),
            )
            try:
                # connect() also negotiates STARTTLS and logs in.
                await client.connect()
            except (aiosmtplib.SMTPException, OSError) as exc:
                # Every message of the batch failed the same way; separate
                # instances because a raised exception carries its own traceback.
                return [self._connect_error(exc) for _ in emails]

        results: list[DeliveryError | None] = []
        try:
            for email in emails:
                error = await self._send_one(client, email)
                results.append(error)
                if error is not None and not client.is_connected:
                    # The rest never reached the server: report them as
                    # retryable rather than as refused.
                    results.extend(
                        DeliveryError(
                            f"not sent: connection to {self.host}:{self.port} was lost",
                            permanent=False,
                        )
                        for _ in range(len(emails) - len(results))
                    )
                    break
        except BaseException:
            # Cancelled or crashed: drop the socket without a polite QUIT,
            # which could wait for the whole timeout.
            client.close()
            raise
        await self._keep_or_quit(client)
        return results

    async def aclose(self) -> None:
        kept, self._kept = self._kept, []
        loop = asyncio.get_running_loop()
        for client, owner, _ in kept:
            if owner is loop:
                await self._quit(client)
            else:
                _drop(client)

    async def _kept_connection(self) -> aiosmtplib.SMTP | None:
        """A kept connection of this event loop that still answers, if any."""
        loop = asyncio.get_running_loop()
        while self._kept:
            client, owner, since = self._kept.pop()
            if (
                owner is not loop
                or not client.is_connected
                or time.monotonic() - since > KEEP_CONNECTION_SECONDS
            ):
                _drop(client)
                continue
            try:
                await client.noop()
            except (aiosmtplib.SMTPException, OSError):
                _drop(client)
                continue
            return client
        return None

    async def _keep_or_quit(self, client: aiosmtplib.SMTP) -> None:
        if client.is_connected and len(self._kept) < MAX_KEPT_CONNECTIONS:
            self._kept.append((client, asyncio.get_running_loop(), time.monotonic()))
        else:
            await self._quit(client)

    async def _send_one(
        self, client: aiosmtplib.SMTP, email: OutgoingEmail
    ) -> DeliveryError | None:
        try:
            message = build_message(email)
        except ValueError as exc:
            return DeliveryError(short_reason(str(exc)), permanent=True)
        try:
            await client.send_message(
                message, sender=_envelope_sender(email), recipients=[email.to_address.strip()]
            )
        except aiosmtplib.SMTPNotSupported as exc:
            # Raised before anything is sent, for an address needing SMTPUTF8
            # on a server without it: the same server will never accept it.
            return DeliveryError(
                short_reason(f"not supported by the server: {exc}"), permanent=True
            )
        except ValueError as exc:
            # aiosmtplib's own address check, before anything is sent.
            return DeliveryError(short_reason(f"invalid address: {exc}"), permanent=True)
        except (aiosmtplib.SMTPException, OSError) as exc:
            if isinstance(exc, OSError):
                # Disconnected or timed out (aiosmtplib's errors for both are
                # OSErrors): the session is in an unknown state, not reusable.
                client.close()
            return self._send_error(exc)
        return None

    def _connect_error(self, exc: Exception) -> DeliveryError:
        where = f"{self.host}:{self.port}"
        if isinstance(exc, aiosmtplib.SMTPAuthenticationError):
            # The server's text is left out: some echo the submitted login.
            return DeliveryError(
                f"SMTP authentication at {where} failed ({exc.code})",
                permanent=False,
                smtp_code=exc.code,
            )
        if isinstance(exc, TimeoutError):
            return DeliveryError(f"timed out connecting to {where}", permanent=False)
        if isinstance(exc, aiosmtplib.SMTPResponseException):
            return DeliveryError(
                short_reason(f"SMTP server {where} refused the session: {exc.code} {exc.message}"),
                permanent=False,
                smtp_code=exc.code,
            )
        cause = exc.__cause__
        if isinstance(exc, aiosmtplib.SMTPConnectError) and isinstance(cause, OSError):
            reason = os.strerror(cause.errno) if cause.errno else str(cause)
            return DeliveryError(
                short_reason(f"cannot connect to {where}: {reason}"), permanent=False
            )
        if isinstance(exc, aiosmtplib.SMTPException):
            # Such as "STARTTLS/AUTH not supported": configuration problems,
            # fixed without touching the message, so the outbox keeps retrying.
            return DeliveryError(short_reason(f"SMTP {where}: {exc.message}"), permanent=False)
        return DeliveryError(short_reason(f"cannot connect to {where}: {exc}"), permanent=False)

    def _send_error(self, exc: Exception) -> DeliveryError:
        if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
            refusal = exc.recipients[0] if exc.recipients else None
            code = refusal.code if refusal else None
            text = refusal.message if refusal else ""
            return DeliveryError(
                short_reason(f"recipient refused: {code} {text}"),
                permanent=_is_permanent(code),
                smtp_code=code,
            )
        if isinstance(exc, aiosmtplib.SMTPRecipientRefused | aiosmtplib.SMTPDataError):
            # 5xx after RCPT or DATA is a verdict on this recipient or these
            # bytes; sending them again gets the same answer.
            what = "recipient" if isinstance(exc, aiosmtplib.SMTPRecipientRefused) else "message"
            return DeliveryError(
                short_reason(f"{what} refused: {exc.code} {exc.message}"),
                permanent=_is_permanent(exc.code),
                smtp_code=exc.code,
            )
        if isinstance(exc, aiosmtplib.SMTPResponseException):
            # A refused sender or another command refused: our configuration,
            # not this message, so retrying after a fix succeeds.
            return DeliveryError(
                short_reason(f"SMTP error: {exc.code} {exc.message}"),
                permanent=False,
                smtp_code=exc.code,
            )
        if isinstance(exc, TimeoutError):
            return DeliveryError(f"timed out talking to {self.host}:{self.port}", permanent=False)
        if isinstance(exc, aiosmtplib.SMTPException):
            return DeliveryError(short_reason(f"SMTP error: {exc.message}"), permanent=False)
        return DeliveryError(short_reason(f"connection error: {exc}"), permanent=False)

    async def _quit(self, client: aiosmtplib.SMTP) -> None:
        if not client.is_connected:
            return
        try:
            await client.quit()
        except (aiosmtplib.SMTPException, OSError):
            # Messages already accepted at DATA stay accepted; a failed QUIT
            # changes nothing for them.
            pass
        finally:
            client.close()


def _drop(client: aiosmtplib.SMTP) -> None:
    """Close a connection without QUIT (it is dead, stale or of another loop)."""
    with suppress(Exception):
        client.close()


def _is_permanent(code: int | None) -> bool:
    return code is not None and 500 <= code < 600
