"""The Maildir mailer: each message one file, written at most once per Message-ID
(embedded and development mode)."""

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
from email.policy import EmailPolicy
from pathlib import Path
from urllib.parse import unquote, urlsplit

from workers.mail.message import (
    DeliveryError,
    OutgoingEmail,
    build_message,
    send_as_batch,
    short_reason,
)

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
        await send_as_batch(self, email)

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
                prepared.append(DeliveryError(short_reason(str(exc)), permanent=True))
                continue
            # Raw UTF-8 headers only when the address needs them (see
            # build_message); otherwise encoded words, as an SMTP server stores it.
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
                else DeliveryError(short_reason(f"cannot create Maildir: {exc}"), permanent=False)
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
                    DeliveryError(short_reason(f"cannot write to Maildir: {exc}"), permanent=False)
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
