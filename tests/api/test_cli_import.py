"""`licenses users import FILE.csv --account ID [--dry-run]` as a process on the
test database, and the CSV format it reads (encoding, header, lines)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from api.users_csv import CsvRow, UsersCsv, check_utf8, parse_role
from domain.enums import ActorKind, AuditAction, Role, UserStatus
from domain.errors import ErrorCode
from domain.models import AuditEvent, Invitation, OutboxMessage, User
from domain.services.accounts import CreatedAccount
from tests.support.cli import run_cli
from tests.support.database import TEST_SECRET_KEY
from tests.support.snapshot import database_snapshot

pytestmark = pytest.mark.anyio

# Acme has 5 licences, the owner holds one: room for 4.
MIXED = (
    "email,firstName,lastName,role,qualification\r\n"
    "ann@example.com,Ann,Able,admin,CPA\r\n"  # 2: imported
    "not-an-email,Bob,Bad,,\r\n"  # 3: INVALID_INPUT (email)
    "OWNER@example.com,Olive,Again,,\r\n"  # 4: EMAIL_TAKEN (the owner)
    "\r\n"  # 5: blank, skipped
    "cat@example.com,Cat,Cole,chief,\r\n"  # 6: INVALID_INPUT (role)
    "ann@example.com,Ann,Twice,,\r\n"  # 7: EMAIL_TAKEN (line 2)
    "dan@example.com,Dan,Dale,,\r\n"  # 8: imported
    "eve@example.com,Eve,Eden,member,Nurse\r\n"  # 9: imported
    "fay@example.com,Fay,Fox,,\r\n"  # 10: imported (the fourth licence)
    "gus@example.com,Gus,Gray,,\r\n"  # 11: NO_AVAILABLE_LICENSES
)
REFUSED = [
    "Line 3: INVALID_INPUT (email): Enter a valid email address.",
    "Line 4: EMAIL_TAKEN (email): A user with this email already exists in the account.",
    "Line 6: INVALID_INPUT (role): The role must be ADMIN or MEMBER.",
    "Line 7: EMAIL_TAKEN (email): A user with this email already exists in the account.",
    "Line 11: NO_AVAILABLE_LICENSES: Every purchased licence is in use.",
]
IMPORTED = ["ann@example.com", "dan@example.com", "eve@example.com", "fay@example.com"]


def import_csv(db: str, tmp_path: Path, content: bytes | str, *args: str):
    path = tmp_path / "users.csv"
    path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    return run_cli(
        "users",
        "import",
        str(path),
        *args,
        env={
            "DATABASE_URL": db,
            "MAIL_URL": f"maildir://{tmp_path / 'mail'}",
            "SECRET_KEY": TEST_SECRET_KEY.decode(),
            "LOG_LEVEL": "WARNING",
        },
        cwd=tmp_path,
    )


async def invited_emails(account_id: int) -> list[str]:
    return sorted(
        await User.filter(account_id=account_id, status=UserStatus.INVITED).values_list(
            "email", flat=True
        )
    )


async def test_given_good_and_bad_rows_when_imported_then_good_invited_and_bad_reported(
    db, account: CreatedAccount, tmp_path
):
    result = import_csv(db, tmp_path, MIXED, "--account", str(account.account_id))

    assert result.returncode == 1, result.stderr
    assert result.stdout.splitlines() == [*REFUSED, "Imported 4 of 9 rows; 5 refused."]
    assert "Importing" in result.stderr  # the progress bar
    assert await invited_emails(account.account_id) == IMPORTED
    ann = await User.get(account_id=account.account_id, email="ann@example.com")
    assert (ann.role, ann.qualification, ann.first_name) == (Role.ADMIN, "CPA", "Ann")
    # Invited as SYSTEM: the audit trail names no user, the invitations no inviter.
    actors = await AuditEvent.filter(
        account_id=account.account_id, action=AuditAction.USER_INVITED
    ).values_list("actor_kind", "actor_user_id", "actor_token_id")
    assert actors == [(ActorKind.SYSTEM, None, None)] * 4
    inviters = await Invitation.filter(email__in=IMPORTED).values_list(
        "invited_by_user_id", flat=True
    )
    assert inviters == [None] * 4
    # Each invitation email waits in the outbox for the workers.
    assert await OutboxMessage.filter(account_id=account.account_id).count() >= 4 + 1


async def test_given_every_row_valid_when_imported_then_exit_0(
    db, account: CreatedAccount, tmp_path
):
    content = "email,firstName,lastName\nzoe@example.com,Zoe,Zed\nyan@example.com,Yan,Yu\n"

    result = import_csv(db, tmp_path, content, "--account", str(account.account_id))

    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["Imported 2 of 2 rows; 0 refused."]
    assert await invited_emails(account.account_id) == ["yan@example.com", "zoe@example.com"]


async def test_given_a_dry_run_then_the_same_report_and_nothing_is_written(
    db, account: CreatedAccount, tmp_path
):
    before = await database_snapshot()

    result = import_csv(db, tmp_path, MIXED, "--account", str(account.account_id), "--dry-run")

    assert result.returncode == 1, result.stderr
    assert result.stdout.splitlines() == [
        *REFUSED,
        "Dry run: 4 of 9 rows would be imported, 5 refused. Nothing was written.",
    ]
    assert await database_snapshot() == before


async def test_given_a_dry_run_of_valid_rows_then_exit_0_and_nothing_written(
    db, account: CreatedAccount, tmp_path
):
    before = await database_snapshot()

    result = import_csv(
        db, tmp_path, "email,firstName,lastName\nzoe@example.com,Zoe,Zed\n",
        "--account", str(account.account_id), "--dry-run",
    )  # fmt: skip

    assert result.returncode == 0, result.stderr
    assert await database_snapshot() == before


async def test_given_a_bom_mixed_case_headers_and_extra_columns_then_rows_are_read(
    db, account: CreatedAccount, tmp_path
):
    content = (
        "\ufeffE-Mail,FIRST NAME,last_name,Status,Qualification\r\n"
        'ida@example.com,Ida,Iles,ENABLED,"Line one, with a comma"\r\n'
    )

    result = import_csv(db, tmp_path, content, "--account", str(account.account_id))

    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "Ignored columns: Status.",
        "Imported 1 of 1 rows; 0 refused.",
    ]
    ida = await User.get(account_id=account.account_id, email="ida@example.com")
    assert ida.qualification == "Line one, with a comma"


@pytest.mark.parametrize(
    ("content", "says"),
    [
        pytest.param(b"email,firstName,lastName\nbad\xff@x.example,A,B\n", "Line 2 is not UTF-8"),
        pytest.param("email,firstName\nann@example.com,Ann\n", "Missing column(s) lastName"),
        pytest.param("email,firstName,lastName,EMAIL\n", "email is named twice"),
        pytest.param("", "The file is empty"),
    ],
    ids=["latin-1", "missing-column", "duplicate-column", "empty"],
)
async def test_given_an_unusable_file_then_exit_2_and_nothing_is_tried(
    db, account: CreatedAccount, tmp_path, content, says
):
    before = await database_snapshot()

    result = import_csv(db, tmp_path, content, "--account", str(account.account_id))

    assert result.returncode == 2
    assert says in result.stderr
    assert "Traceback" not in result.stderr
    assert await database_snapshot() == before


async def test_given_an_unknown_account_then_exit_1_with_not_found(db, account, tmp_path):
    result = import_csv(
        db, tmp_path, "email,firstName,lastName\nzoe@example.com,Zoe,Zed\n",
        "--account", "999999",
    )  # fmt: skip

    assert result.returncode == 1
    assert "NOT_FOUND" in result.stderr
    assert await User.filter(email="zoe@example.com").count() == 0


# --- the format, read in-process ----------------------------------------------------------


def read(content: bytes) -> list[tuple[int, str]]:
    """Each row as (line, email or error code)."""
    stream = io.BytesIO(content)
    check_utf8(stream)
    found = []
    for item in UsersCsv(stream).rows():
        if isinstance(item, CsvRow):
            found.append((item.line, item.request.email))
        else:
            found.append((item.line, item.error.code.value))
    return found


def test_given_a_bom_or_none_then_the_same_rows():
    plain = b"email,firstName,lastName\r\nann@example.com,Ann,Able\r\n"

    assert read(plain) == read(b"\xef\xbb\xbf" + plain) == [(2, "ann@example.com")]


def test_given_a_quoted_field_over_two_lines_then_later_rows_keep_their_file_line():
    content = (
        b"email,firstName,lastName,qualification\n"
        b"\n"
        b'ann@example.com,Ann,Able,"two\nlines"\n'
        b",,,\n"
        b"bob@example.com,Bob,Bell,,extra\n"
        b"cat@example.com,Cat,Cole\n"
    )

    assert read(content) == [
        (3, "ann@example.com"),
        (6, ErrorCode.INVALID_INPUT.value),
        (7, "cat@example.com"),
    ]


def test_given_cells_the_export_neutralised_then_they_are_read_back():
    stream = io.BytesIO(b"email,firstName,lastName\nann@example.com,'=Ann,'-Able\n")
    [row] = list(UsersCsv(stream).rows())

    assert isinstance(row, CsvRow)
    assert (row.request.first_name, row.request.last_name) == ("=Ann", "-Able")


def test_given_roles_in_any_case_then_parsed_and_empty_is_member():
    assert [parse_role(text) for text in ("admin", " Member ", "", "OWNER")] == [
        Role.ADMIN,
        Role.MEMBER,
        Role.MEMBER,
        Role.OWNER,  # refused later by the service, as in inviteUser
    ]
