"""Mail delivery: SMTP (aiosmtplib) for real servers, a Maildir for development.

Choose one with `mailer_from_url(MAIL_URL)`. Every mailer reports failures as
`DeliveryError`, whose `permanent` flag tells the outbox whether a retry can
ever succeed.
"""

from __future__ import annotations

import asyncio
import errno
import hashlib
import os
import re
import secrets
import socket
import time
from collections.abc import Sequence
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from email.errors import MessageError
from email.headerregistry import Address, BaseHeader, HeaderRegistry
from email.message import EmailMessage
from email.policy import EmailPolicy
from email.policy import default as default_policy
from email.utils import format_datetime, parseaddr, quote
from functools import cache
from pathlib import Path
from typing import Protocol
from urllib.parse import parse_qs, unquote, urlsplit

import aiosmtplib

DEFAULT_TIMEOUT = 10.0
# Connections kept between calls (see SmtpMailer): at most this many, this long.
MAX_KEPT_CONNECTIONS = 4
KEEP_CONNECTION_SECONDS = 30.0
SMTP_PORT = 25
SMTPS_PORT = 465

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


def _one_line(text: str) -> str:
    # Header injection: a CR/LF in a user-supplied name or subject must not
    # start a new header, and the email package refuses it outright.
    return " ".join(text.split())


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
        message["To"] = _to_header(_one_line(email.to_name or ""), email.to_address.strip())
    except (ValueError, MessageError) as exc:
        raise ValueError(f"invalid address: {exc}") from exc
    message["Subject"] = _one_line(email.subject)
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


@cache
def _local_hostname() -> str:
    """The name sent with EHLO: aiosmtplib's default (the FQDN), looked up once
    per process instead of in a thread on every connection."""
    return socket.getfqdn()


def _envelope_sender(email: OutgoingEmail) -> str:
    return parseaddr(email.from_address)[1] or email.from_address


def _reason(text: str) -> str:
    line = _one_line(text)
    if len(line) > _MAX_REASON_LENGTH:
        line = line[: _MAX_REASON_LENGTH - 1] + "…"
    return line


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
        (error,) = await self.send_batch([email])
        if error is not None:
            raise error

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
            return DeliveryError(_reason(str(exc)), permanent=True)
        try:
            await client.send_message(
                message, sender=_envelope_sender(email), recipients=[email.to_address.strip()]
            )
        except aiosmtplib.SMTPNotSupported as exc:
            # Raised before anything is sent, for an address needing SMTPUTF8
            # on a server without it: the same server will never accept it.
            return DeliveryError(_reason(f"not supported by the server: {exc}"), permanent=True)
        except ValueError as exc:
            # aiosmtplib's own address check, before anything is sent.
            return DeliveryError(_reason(f"invalid address: {exc}"), permanent=True)
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
                _reason(f"SMTP server {where} refused the session: {exc.code} {exc.message}"),
                permanent=False,
                smtp_code=exc.code,
            )
        cause = exc.__cause__
        if isinstance(exc, aiosmtplib.SMTPConnectError) and isinstance(cause, OSError):
            reason = os.strerror(cause.errno) if cause.errno else str(cause)
            return DeliveryError(_reason(f"cannot connect to {where}: {reason}"), permanent=False)
        if isinstance(exc, aiosmtplib.SMTPException):
            # Such as "STARTTLS/AUTH not supported": configuration problems,
            # fixed without touching the message, so the outbox keeps retrying.
            return DeliveryError(_reason(f"SMTP {where}: {exc.message}"), permanent=False)
        return DeliveryError(_reason(f"cannot connect to {where}: {exc}"), permanent=False)

    def _send_error(self, exc: Exception) -> DeliveryError:
        if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
            refusal = exc.recipients[0] if exc.recipients else None
            code = refusal.code if refusal else None
            text = refusal.message if refusal else ""
            return DeliveryError(
                _reason(f"recipient refused: {code} {text}"),
                permanent=_is_permanent(code),
                smtp_code=code,
            )
        if isinstance(exc, aiosmtplib.SMTPRecipientRefused | aiosmtplib.SMTPDataError):
            # 5xx after RCPT or DATA is a verdict on this recipient or these
            # bytes; sending them again gets the same answer.
            what = "recipient" if isinstance(exc, aiosmtplib.SMTPRecipientRefused) else "message"
            return DeliveryError(
                _reason(f"{what} refused: {exc.code} {exc.message}"),
                permanent=_is_permanent(exc.code),
                smtp_code=exc.code,
            )
        if isinstance(exc, aiosmtplib.SMTPResponseException):
            # A refused sender or another command refused: our configuration,
            # not this message, so retrying after a fix succeeds.
            return DeliveryError(
                _reason(f"SMTP error: {exc.code} {exc.message}"),
                permanent=False,
                smtp_code=exc.code,
            )
        if isinstance(exc, TimeoutError):
            return DeliveryError(f"timed out talking to {self.host}:{self.port}", permanent=False)
        if isinstance(exc, aiosmtplib.SMTPException):
            return DeliveryError(_reason(f"SMTP error: {exc.message}"), permanent=False)
        return DeliveryError(_reason(f"connection error: {exc}"), permanent=False)

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


# Maildir file names may not contain "/" (a path) or ":" (starts the flags
# part readers append when they move a message to cur/).
_UNSAFE_NAME_CHARS = re.compile(r"[^A-Za-z0-9._@=+-]")
# Empty marker files, one per delivered Message-ID. Not dot-prefixed: Maildir++
# readers (Python's mailbox included) would take ".name" for a sub-folder,
# while other directories are ignored.
_INDEX_DIR = "delivered-ids"
_NO_HARD_LINKS = frozenset({errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENOSYS})
# Like the default policy (LF line ends, as Maildir files have) with UTF-8 headers.
_UTF8_FILE_POLICY = EmailPolicy(utf8=True)


def maildir_file_name(message_id: str) -> str:
    """The file name (and Maildir key) used for a message with this Message-ID.

    Readable for someone browsing the folder, and unique thanks to the hash
    suffix even when two ids differ only in characters replaced here.
    """
    readable = _UNSAFE_NAME_CHARS.sub("_", message_id.strip().strip("<>")).lstrip(".")[:80]
    digest = hashlib.sha256(message_id.strip().encode()).hexdigest()[:16]
    return f"{readable}.{digest}" if readable else digest


class MaildirMailer:
    """Writes each message as one file in a Maildir (embedded/development mode).

    Idempotency: the file name is derived from the Message-ID, and the file
    is hard-linked into new/, which fails when the name exists: two workers
    sending the same message at once produce one file, without a directory
    scan. A reader moves the file to cur/ and renames it (adding flags), so a
    marker in `delivered-ids/` remembers the id after that; checking both is
    two stat calls, whatever the size of the mailbox.

    The stdlib `mailbox.Maildir.add` is not used for writing because it
    always picks a fresh random name, which defeats exactly this check; the
    files follow the same tmp/ then new/ protocol, so `mailbox.Maildir` and
    mail clients read them.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        # Resolved now: a later chdir of the process must not move the mailbox.
        self.path = Path(path).absolute()

    @classmethod
    def from_url(cls, url: str) -> MaildirMailer:
        parts = urlsplit(url)
        if parts.scheme.lower() != "maildir":
            raise ValueError(f"not a Maildir URL (scheme {parts.scheme!r}); use maildir://")
        if parts.query or parts.fragment:
            raise ValueError("MAIL_URL: a maildir:// URL takes no parameters")
        # maildir:///abs/path has an empty authority; maildir://var/mail puts
        # the first segment there, and it is part of the relative path.
        raw = parts.netloc + parts.path
        if not raw:
            raise ValueError("MAIL_URL: the maildir:// URL has no path")
        return cls(unquote(raw))

    def __repr__(self) -> str:
        return f"MaildirMailer({str(self.path)!r})"

    async def send(self, email: OutgoingEmail) -> None:
        (error,) = await self.send_batch([email])
        if error is not None:
            raise error

    async def send_batch(self, emails: Sequence[OutgoingEmail]) -> list[DeliveryError | None]:
        if not emails:
            return []
        # Messages are built here, on the caller's thread, so that only file
        # I/O runs in the worker thread; one thread hop for the whole batch.
        prepared: list[tuple[bytes, str] | DeliveryError] = []
        for email in emails:
            try:
                message = build_message(email)
            except ValueError as exc:
                prepared.append(DeliveryError(_reason(str(exc)), permanent=True))
                continue
            # Raw UTF-8 headers only when the address needs them (see
            # _to_header); otherwise encoded words, as an SMTP server stores it.
            utf8 = not email.to_address.isascii()
            content = message.as_bytes(policy=_UTF8_FILE_POLICY if utf8 else None)
            prepared.append((content, maildir_file_name(email.message_id)))
        return await asyncio.to_thread(self._write_batch, prepared)

    async def aclose(self) -> None:
        return None

    def _write_batch(
        self, prepared: list[tuple[bytes, str] | DeliveryError]
    ) -> list[DeliveryError | None]:
        try:
            self._ensure_dirs()
        except OSError as exc:
            return [
                item
                if isinstance(item, DeliveryError)
                else DeliveryError(_reason(f"cannot create Maildir: {exc}"), permanent=False)
                for item in prepared
            ]
        results: list[DeliveryError | None] = []
        for item in prepared:
            if isinstance(item, DeliveryError):
                results.append(item)
                continue
            content, name = item
            try:
                self._write_one(content, name)
            except OSError as exc:
                results.append(
                    DeliveryError(_reason(f"cannot write to Maildir: {exc}"), permanent=False)
                )
            else:
                results.append(None)
        return results

    def _ensure_dirs(self) -> None:
        # Created every time (a few stat calls): an existing but empty folder,
        # or one whose subfolders were deleted, must work too.
        for sub in ("tmp", "new", "cur", _INDEX_DIR):
            (self.path / sub).mkdir(parents=True, exist_ok=True)

    def _write_one(self, content: bytes, name: str) -> None:
        marker = self.path / _INDEX_DIR / name
        target = self.path / "new" / name
        if marker.exists():
            return
        unique = f"{time.time_ns()}.{os.getpid()}.{secrets.token_hex(4)}.{socket.gethostname()}"
        tmp = self.path / "tmp" / f"{name}.{unique}"
        with tmp.open("xb") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(tmp, target)
        except FileExistsError:
            pass  # Already delivered; the marker below may be what is missing.
        except OSError as exc:
            if exc.errno not in _NO_HARD_LINKS:
                raise
            # Some filesystems (certain container volumes, FAT) have no hard
            # links. rename() is atomic as well but silently replaces an
            # existing file, hence the check; only a race could slip through.
            if not target.exists():
                tmp.rename(target)
        finally:
            tmp.unlink(missing_ok=True)
        marker.touch()


def mailer_from_url(url: str, *, timeout: float = DEFAULT_TIMEOUT) -> Mailer:
    """The mailer for a MAIL_URL: smtp://, smtps:// or maildir://."""
    scheme = urlsplit(url).scheme.lower()
    if scheme in ("smtp", "smtps"):
        return SmtpMailer.from_url(url, timeout=timeout)
    if scheme == "maildir":
        return MaildirMailer.from_url(url)
    raise ValueError(
        f"MAIL_URL: unsupported scheme {scheme!r}; "
        "use smtp://, smtps:// or maildir:// (e.g. maildir://var/mail)"
    )
