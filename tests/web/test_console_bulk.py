"""The console's "Bulk invite" in Debian's Chromium (Playwright), against a real
`licenses serve` of its own (embedded mode, PERSISTED_QUERIES=allowlist): a
CSV file chosen in the dialog is previewed, sent with inviteUsers in batches
of at most 500, and every row's result is shown. The pages, functions and
checks (console errors, axe-core, 375 px) are those of test_console.py.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.live_server import Account, LiveServer
from tests.web import test_console
from tests.web.test_console import (
    NARROW,
    OWNER_EMAIL,
    OWNER_PASSWORD,
    accept_by_email,
    axe,
    no_horizontal_scroll,
    row,
    sign_in,
    users_page,
)

pytestmark = pytest.mark.slow

# test_console.py's fixtures: one browser per module, pages that fail the test
# on any console or page error.
browser = test_console.browser
pages = test_console.pages

# The account has 10 licences; the owner holds one.
GOOD = [(f"bulk{number}@web.example", f"Person{number}", "Bulk") for number in range(1, 11)]
CSV = (
    "\ufeffE-mail,First Name,Last Name,Role,Qualification,Notes\r\n"
    + f'{GOOD[0][0]},{GOOD[0][1]},{GOOD[0][2]},admin,"Analyst, senior",first\r\n'
    + f"{OWNER_EMAIL.upper()},Wendy,Again,,,\r\n"
    + "not-an-email,Nobody,Here,,,\r\n"
    + "role@web.example,Rolf,Role,boss,,\r\n"
    + "".join(f"{email},{first},{last},member,,\r\n" for email, first, last in GOOD[1:])
)


@pytest.fixture(scope="module")
def server(web_dir: Path, account: Account) -> Iterator[LiveServer]:
    live = LiveServer(
        web_dir / "bulk", account, PERSISTED_QUERIES="allowlist", EMBEDDED_RELAY_SECONDS="1"
    )
    with live:
        accept_by_email(live, OWNER_EMAIL, OWNER_PASSWORD)
        yield live


def csv_file(text: str | bytes, name: str = "people.csv") -> dict[str, Any]:
    data = text.encode("utf-8") if isinstance(text, str) else text
    return {"name": name, "mimeType": "text/csv", "buffer": data}


def open_bulk(page: Any) -> Any:
    page.get_by_role("button", name="Bulk invite").click()
    dialog = page.get_by_role("dialog", name="Bulk invite")
    dialog.wait_for()
    return dialog


def sent_batches(page: Any) -> list[int]:
    """The number of rows of each inviteUsers request the page sends."""
    sizes: list[int] = []

    def record(request: Any) -> None:
        if request.url.endswith("/graphql") and request.method == "POST":
            body = json.loads(request.post_data or "{}")
            if body.get("operationName") == "ConsoleInviteUsers":
                sizes.append(len(body["variables"]["inputs"]))

    page.on("request", record)
    return sizes


def test_a_csv_is_previewed_sent_and_every_row_result_shown(server, pages):
    page = pages.new(bypass_csp=True)  # axe is injected as a script
    sign_in(page)
    users_page(page)
    sizes = sent_batches(page)
    dialog = open_bulk(page)
    # The file input is labelled and takes the focus.
    assert page.evaluate("document.activeElement.type") == "file"
    found = axe(page, "bulk dialog")

    dialog.get_by_label("CSV file").set_input_files(
        csv_file(b"email,firstName,lastName\nb\xe9@x,A,B\n")
    )
    dialog.locator(".form-alert", has_text="not UTF-8").wait_for()
    dialog.get_by_label("CSV file").set_input_files(csv_file("email,firstName\na@x.example,A\n"))
    dialog.locator(".form-alert", has_text="Missing column(s) lastName").wait_for()
    assert dialog.get_by_role("button", name="Send invitations").is_disabled()

    dialog.get_by_label("CSV file").set_input_files(csv_file(CSV))
    preview = dialog.locator(".bulk-preview")
    preview.get_by_text("13 rows read: 12 ready to send, 1 with a problem (not sent).").wait_for()
    preview.get_by_text("Ignored columns: Notes.").wait_for()
    assert preview.locator("tbody tr").count() == 13
    assert "Analyst, senior" in preview.locator("tbody tr").first.inner_text()
    assert "The role must be ADMIN or MEMBER." in preview.locator("tbody tr").nth(3).inner_text()
    found += axe(page, "bulk preview")

    dialog.get_by_role("button", name="Send 12 invitations").click()
    summary = "Bulk invite: 9 invitations sent, 3 refused, 1 not sent (a problem in the file)."
    dialog.locator(".bulk-summary", has_text=summary).wait_for()
    results = dialog.locator(".bulk-results tbody tr")
    assert results.count() == 13
    texts = [results.nth(index).inner_text() for index in range(13)]
    assert "Invited" in texts[0]
    assert "EMAIL_TAKEN" in texts[1]
    assert "INVALID_INPUT" in texts[2]
    assert "Not sent: The role must be ADMIN or MEMBER." in texts[3]
    assert all("Invited" in text for text in texts[4:12])
    assert "NO_AVAILABLE_LICENSES" in texts[12]  # the tenth newcomer: no licence left
    # Focus moves to the results; the summary is announced.
    assert page.evaluate("document.activeElement.textContent") == "Results"
    assert dialog.locator(".bulk-summary").get_attribute("role") == "status"
    assert sizes == [12]
    found += axe(page, "bulk results")

    dialog.get_by_role("button", name="Close").click()
    page.locator(".notice", has_text=summary).wait_for()
    page.locator(".banner", has_text="10 of 10 licenses in use").wait_for()
    row(page, GOOD[0][0]).get_by_text("Invited").wait_for()
    assert "Admin" in row(page, GOOD[0][0]).inner_text()
    assert page.evaluate("document.activeElement.textContent") == "Bulk invite"
    assert found == []


def test_a_file_of_more_than_500_rows_goes_in_batches_of_at_most_500(server, pages):
    page = pages.new()
    sign_in(page)
    users_page(page)
    sizes = sent_batches(page)
    many = "email,firstName,lastName\n" + "".join(
        f"many{number:04d}@web.example,Many,Row{number}\n" for number in range(1001)
    )
    dialog = open_bulk(page)
    dialog.get_by_label("CSV file").set_input_files(csv_file(many))
    dialog.get_by_text("1,001 rows read: 1,001 ready to send.").wait_for()
    dialog.get_by_text("Showing the first 100 of 1,001 rows.").wait_for()

    dialog.get_by_role("button", name="Send 1,001 invitations").click()
    # Every licence is taken by now: each row is tried and refused.
    dialog.locator(".bulk-summary", has_text="0 invitations sent, 1,001 refused").wait_for(
        timeout=60_000
    )

    assert sizes == [500, 500, 1]
    first = dialog.locator(".bulk-results tbody tr").first.inner_text()
    assert "many0000@web.example" in first and "NO_AVAILABLE_LICENSES" in first
    dialog.get_by_text("Only the rows not invited are listed, the first 1,000 of 1,001.").wait_for()
    assert dialog.locator(".bulk-results tbody tr").count() == 1000


def test_at_375_px_the_bulk_dialog_with_results_does_not_scroll_sideways(server, pages):
    page = pages.new(NARROW)
    sign_in(page)
    users_page(page)
    dialog = open_bulk(page)
    dialog.get_by_label("CSV file").set_input_files(csv_file(CSV))
    dialog.get_by_role("button", name="Send 12 invitations").click()
    dialog.locator(".bulk-summary", has_text="0 invitations sent, 12 refused").wait_for()

    no_horizontal_scroll(page)
