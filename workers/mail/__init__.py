"""Mail delivery: SMTP (aiosmtplib) for real servers, a Maildir for development.

Choose one with `mailer_from_url(MAIL_URL)`. Every mailer reports failures as
`DeliveryError` (`workers.mail.message`), whose `permanent` flag tells the
outbox whether a retry can ever succeed.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from workers.mail.maildir import MaildirMailer
from workers.mail.message import Mailer
from workers.mail.smtp import DEFAULT_TIMEOUT, SmtpMailer


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
