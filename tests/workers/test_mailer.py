"""Mail delivery against a real SMTP server (aiosmtpd) and a real Maildir."""

import mailbox
import pickle
import socket
from collections.abc import Iterator
from dataclasses import replace
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from tests.support.local_services import find_free_port
from tests.support.smtp import SmtpCatcher, SmtpServer, parse_message
from workers.mail import mailer_from_url
from workers.mail.maildir import MaildirMailer
from workers.mail.message import DeliveryError, OutgoingEmail
from workers.mail.smtp import SmtpMailer


def files_in(folder: Path) -> list[Path]:
    # Sync on purpose: a few directory listings in a test, after the await.
    return sorted(folder.iterdir())


def outgoing(n: int = 1, **changes: Any) -> OutgoingEmail:
    email = OutgoingEmail(
        to_address=f"user{n}@example.com",
        to_name=f"User {n}",
        subject=f"Subject {n}",
        text=f"Plain text {n}\nhttps://licenses.example/accept-invitation?token=t{n}\n",
        html=f"<p>HTML {n}</p>",
        message_id=f"<outbox-{n}@licenses.local>",
        from_address="Licenses & Users <no-reply@licenses.local>",
    )
    return replace(email, **changes)


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    refusals = {
        "nobody@example.com": "550 5.1.1 No such user here",
        "busy@example.com": "450 4.2.1 Mailbox busy, try later",
    }
    with SmtpServer(SmtpCatcher(refusals=refusals)) as server:
        yield server


@pytest.fixture
def auth_smtp_server() -> Iterator[SmtpServer]:
    with SmtpServer(password=b"s3cret p@ss:/") as server:
        yield server


@pytest.mark.anyio
async def test_smtp_delivers_a_multipart_message(smtp_server: SmtpServer) -> None:
    mailer = SmtpMailer("127.0.0.1", smtp_server.port, timeout=5)

    await mailer.send(outgoing(1, to_name="Zoë Müller"))

    (received,) = smtp_server.handler.received
    message = received.message
    assert received.mail_from == "no-reply@licenses.local"
    assert received.rcpt_tos == ["user1@example.com"]
    assert message["Subject"] == "Subject 1"
    assert message["Message-ID"] == "<outbox-1@licenses.local>"
    assert message["Date"] is not None
    assert message["From"].addresses[0].display_name == "Licenses & Users"
    (to,) = message["To"].addresses
    assert (to.display_name, to.addr_spec) == ("Zoë Müller", "user1@example.com")
    # Non-ASCII display names travel as RFC 2047 encoded words.
    assert b"=?utf-8?" in received.raw.split(b"\r\n\r\n", 1)[0].lower()
    assert message.get_content_type() == "multipart/alternative"
    text = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    assert text is not None
    assert html is not None
    assert isinstance(text, EmailMessage)
    assert isinstance(html, EmailMessage)
    assert text.get_content().replace("\r\n", "\n") == (
        "Plain text 1\nhttps://licenses.example/accept-invitation?token=t1\n"
    )
    assert html.get_content().strip() == "<p>HTML 1</p>"


@pytest.mark.anyio
async def test_smtp_header_injection_in_name_or_subject_is_neutralised(
    smtp_server: SmtpServer,
) -> None:
    mailer = SmtpMailer("127.0.0.1", smtp_server.port, timeout=5)

    await mailer.send(outgoing(1, to_name="Eve\r\nBcc: victim@example.com", subject="Hi\nBcc: x@y"))

    (received,) = smtp_server.handler.received
    assert received.rcpt_tos == ["user1@example.com"]
    assert received.message["Bcc"] is None
    assert received.message["Subject"] == "Hi Bcc: x@y"


@pytest.mark.anyio
async def test_smtp_delivers_to_an_internationalised_address(smtp_server: SmtpServer) -> None:
    # aiosmtpd's Controller offers SMTPUTF8, which such an address needs.
    mailer = SmtpMailer("127.0.0.1", smtp_server.port, timeout=5)

    await mailer.send(outgoing(1, to_address="zoë@exämple.com", to_name="Zoë"))

    (received,) = smtp_server.handler.received
    assert received.rcpt_tos == ["zoë@exämple.com"]
    (to,) = received.message["To"].addresses
    assert (to.display_name, to.addr_spec) == ("Zoë", "zoë@exämple.com")


@pytest.mark.anyio
async def test_smtp_invalid_address_is_permanent_and_spares_the_batch(
    smtp_server: SmtpServer,
) -> None:
    mailer = SmtpMailer("127.0.0.1", smtp_server.port, timeout=5)

    results = await mailer.send_batch([outgoing(1, to_address="not an address@@"), outgoing(2)])

    assert isinstance(results[0], DeliveryError)
    assert results[0].permanent
    assert "invalid address" in str(results[0])
    assert results[1] is None
    assert [r.rcpt_tos for r in smtp_server.handler.received] == [["user2@example.com"]]


@pytest.mark.anyio
async def test_smtp_batch_uses_one_connection(smtp_server: SmtpServer) -> None:
    mailer = SmtpMailer("127.0.0.1", smtp_server.port, timeout=5)

    results = await mailer.send_batch([outgoing(1), outgoing(2), outgoing(3)])

    assert results == [None, None, None]
    received = smtp_server.handler.received
    assert [r.message["Message-ID"] for r in received] == [
        "<outbox-1@licenses.local>",
        "<outbox-2@licenses.local>",
        "<outbox-3@licenses.local>",
    ]
    assert smtp_server.handler.ehlo_count == 1
    assert len({r.peer for r in received}) == 1


@pytest.mark.anyio
async def test_smtp_batch_goes_on_after_a_refused_recipient(smtp_server: SmtpServer) -> None:
    mailer = SmtpMailer("127.0.0.1", smtp_server.port, timeout=5)

    results = await mailer.send_batch(
        [outgoing(1), outgoing(2, to_address="nobody@example.com"), outgoing(3)]
    )

    assert results[0] is None
    assert results[2] is None
    error = results[1]
    assert isinstance(error, DeliveryError)
    assert error.permanent
    assert [r.rcpt_tos for r in smtp_server.handler.received] == [
        ["user1@example.com"],
        ["user3@example.com"],
    ]
    assert smtp_server.handler.ehlo_count == 1


@pytest.mark.anyio
async def test_smtp_recipient_refused_with_5xx_is_permanent(smtp_server: SmtpServer) -> None:
    mailer = SmtpMailer("127.0.0.1", smtp_server.port, timeout=5)

    with pytest.raises(DeliveryError) as caught:
        await mailer.send(outgoing(1, to_address="nobody@example.com"))

    assert caught.value.permanent is True
    assert caught.value.smtp_code == 550
    assert "550" in str(caught.value)
    assert "\n" not in str(caught.value)
    assert smtp_server.handler.received == []


@pytest.mark.anyio
async def test_smtp_recipient_refused_with_4xx_is_temporary(smtp_server: SmtpServer) -> None:
    mailer = SmtpMailer("127.0.0.1", smtp_server.port, timeout=5)

    with pytest.raises(DeliveryError) as caught:
        await mailer.send(outgoing(1, to_address="busy@example.com"))

    assert caught.value.permanent is False
    assert caught.value.smtp_code == 450


@pytest.mark.anyio
async def test_smtp_unreachable_server_is_a_temporary_error() -> None:
    mailer = SmtpMailer("127.0.0.1", find_free_port(), timeout=2)

    with pytest.raises(DeliveryError) as caught:
        await mailer.send(outgoing(1))
    results = await mailer.send_batch([outgoing(1), outgoing(2)])

    assert caught.value.permanent is False
    assert "127.0.0.1" in str(caught.value)
    assert len(results) == 2
    assert all(isinstance(r, DeliveryError) and not r.permanent for r in results)
    assert results[0] is not results[1]


@pytest.mark.anyio
async def test_smtp_silent_server_times_out_as_a_temporary_error() -> None:
    # Accepts TCP connections (backlog) but never sends the SMTP greeting.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        port = listener.getsockname()[1]
        mailer = SmtpMailer("127.0.0.1", port, timeout=0.5)

        with pytest.raises(DeliveryError) as caught:
            await mailer.send(outgoing(1))

    assert caught.value.permanent is False
    assert "timed out" in str(caught.value)


# aiosmtpd warns about AUTH without TLS; on loopback in a test that is the point.
auth_without_tls = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")


@auth_without_tls
@pytest.mark.anyio
async def test_smtp_authenticates_with_url_decoded_credentials(
    auth_smtp_server: SmtpServer,
) -> None:
    url = f"smtp://mailer%40licenses.local:s3cret%20p%40ss%3A%2F@127.0.0.1:{auth_smtp_server.port}"
    mailer = mailer_from_url(url, timeout=5)

    await mailer.send(outgoing(1))

    assert auth_smtp_server.logins == [(b"mailer@licenses.local", b"s3cret p@ss:/")]
    assert len(auth_smtp_server.handler.received) == 1


@auth_without_tls
@pytest.mark.anyio
async def test_smtp_wrong_password_is_reported_without_the_password(
    auth_smtp_server: SmtpServer,
) -> None:
    mailer = SmtpMailer(
        "127.0.0.1",
        auth_smtp_server.port,
        username="mailer",
        password="wrong-password-xyz",
        timeout=5,
    )

    with pytest.raises(DeliveryError) as caught:
        await mailer.send(outgoing(1))

    assert caught.value.permanent is False
    assert "authentication" in str(caught.value)
    assert "wrong-password-xyz" not in str(caught.value)
    assert "wrong-password-xyz" not in repr(mailer)
    assert auth_smtp_server.handler.received == []


@auth_without_tls
@pytest.mark.anyio
async def test_smtp_server_requiring_auth_refuses_an_anonymous_mailer(
    auth_smtp_server: SmtpServer,
) -> None:
    mailer = SmtpMailer("127.0.0.1", auth_smtp_server.port, timeout=5)

    with pytest.raises(DeliveryError) as caught:
        await mailer.send(outgoing(1))

    assert caught.value.permanent is False
    assert auth_smtp_server.handler.received == []


@pytest.mark.anyio
async def test_maildir_writes_one_file_per_message_id(tmp_path: Path) -> None:
    maildir = tmp_path / "mail"
    mailer = MaildirMailer(maildir)

    await mailer.send(outgoing(1))
    await mailer.send(outgoing(1, subject="Retried job"))

    assert len(files_in(maildir / "new")) == 1
    assert files_in(maildir / "tmp") == []
    box = mailbox.Maildir(maildir, factory=None, create=False)
    (stored,) = box.values()
    message = parse_message(stored.as_bytes())
    assert message["Subject"] == "Subject 1"
    assert message["Message-ID"] == "<outbox-1@licenses.local>"
    assert message.get_content_type() == "multipart/alternative"
    assert message.get_body(preferencelist=("html",)) is not None


@pytest.mark.anyio
async def test_maildir_does_not_rewrite_a_message_a_reader_moved_to_cur(tmp_path: Path) -> None:
    mailer = MaildirMailer(tmp_path)
    await mailer.send(outgoing(1))
    # What a mail client does when the message has been seen.
    box = mailbox.Maildir(tmp_path, factory=None, create=False)
    (key,) = box.keys()
    seen = box.get_message(key)
    seen.set_subdir("cur")
    seen.add_flag("S")
    box[key] = seen

    results = await mailer.send_batch([outgoing(1), outgoing(2)])

    assert results == [None, None]
    assert len(files_in(tmp_path / "cur")) == 1
    new_files = files_in(tmp_path / "new")
    assert len(new_files) == 1
    assert "outbox-2@licenses.local" in new_files[0].name


@pytest.mark.anyio
async def test_maildir_creates_missing_subfolders_of_an_existing_folder(tmp_path: Path) -> None:
    mailer = mailer_from_url(f"maildir://{tmp_path}")

    await mailer.send(outgoing(1))

    assert {p.name for p in files_in(tmp_path)} >= {"cur", "new", "tmp"}
    assert len(files_in(tmp_path / "new")) == 1


@pytest.mark.anyio
async def test_maildir_stores_an_internationalised_address(tmp_path: Path) -> None:
    mailer = MaildirMailer(tmp_path)

    await mailer.send(outgoing(1, to_address="zoë@exämple.com", to_name="Zoë"))

    (path,) = files_in(tmp_path / "new")
    message = parse_message(path.read_bytes())
    assert message["To"].addresses[0].addr_spec == "zoë@exämple.com"


@pytest.mark.anyio
async def test_maildir_unwritable_path_is_a_temporary_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    mailer = MaildirMailer(blocker / "mail")

    with pytest.raises(DeliveryError) as caught:
        await mailer.send(outgoing(1))

    assert caught.value.permanent is False


def test_url_smtp_without_credentials_uses_port_25_and_opportunistic_starttls() -> None:
    mailer = mailer_from_url("smtp://mail.example.com")

    assert isinstance(mailer, SmtpMailer)
    assert (mailer.host, mailer.port) == ("mail.example.com", 25)
    assert (mailer.username, mailer.password) == (None, None)
    assert mailer.use_tls is False
    assert mailer.start_tls is None
    assert mailer.timeout == 10.0


def test_url_smtp_with_credentials_port_and_timeout() -> None:
    mailer = mailer_from_url(
        "smtp://user%40example.com:p%40ss%2Fword@mail.example.com:2525", timeout=3
    )

    assert isinstance(mailer, SmtpMailer)
    assert (mailer.host, mailer.port) == ("mail.example.com", 2525)
    assert (mailer.username, mailer.password) == ("user@example.com", "p@ss/word")
    assert mailer.timeout == 3
    assert "p@ss/word" not in repr(mailer)


def test_url_smtp_starttls_required() -> None:
    mailer = mailer_from_url("smtp://u:p@mail.example.com:587?starttls=required")

    assert isinstance(mailer, SmtpMailer)
    assert mailer.start_tls is True
    assert mailer.port == 587


def test_url_smtps_defaults_to_port_465_with_implicit_tls() -> None:
    default = mailer_from_url("smtps://u:p@mail.example.com")
    explicit = mailer_from_url("smtps://mail.example.com:2465")

    assert isinstance(default, SmtpMailer)
    assert isinstance(explicit, SmtpMailer)
    assert (default.port, default.use_tls, default.start_tls) == (465, True, None)
    assert (explicit.port, explicit.use_tls) == (2465, True)


def test_url_maildir_absolute_and_relative(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)

    absolute = mailer_from_url("maildir:///srv/mail/licenses")
    relative = mailer_from_url("maildir://var/mail")

    assert isinstance(absolute, MaildirMailer)
    assert isinstance(relative, MaildirMailer)
    assert absolute.path == Path("/srv/mail/licenses")
    assert relative.path == tmp_path / "var" / "mail"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://mail.example.com", "unsupported scheme"),
        ("mail.example.com:25", "unsupported scheme"),
        ("smtp://mail.example.com?starttls=maybe", "starttls"),
        ("smtp://mail.example.com?tls=1", "unknown parameter"),
        ("smtps://mail.example.com?starttls=required", "starttls"),
        ("smtp://mail.example.com:99999", "port"),
        ("smtp://user@mail.example.com", "without a password"),
        ("smtp://", "no host"),
        ("maildir://", "no path"),
    ],
)
def test_url_errors_are_clear(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        mailer_from_url(url)


def test_delivery_error_survives_pickling() -> None:
    error = DeliveryError("recipient refused: 550 no such user", permanent=True, smtp_code=550)

    copy = pickle.loads(pickle.dumps(error))

    assert (str(copy), copy.permanent, copy.smtp_code) == (str(error), True, 550)
