"""The console's "Inactive licences" page in Debian's Chromium (Playwright), against a
real `licenses serve` of its own (embedded mode, PERSISTED_QUERIES=allowlist): the
reclaim policy is read, refused at the field, saved with an exempt person, and its
preview follows. The pages, helpers and checks are those of test_console.py.
"""

from __future__ import annotations

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
    console_call,
    no_horizontal_scroll,
    sign_in,
)

pytestmark = pytest.mark.slow

browser = test_console.browser
pages = test_console.pages

IDA = "ida@web.example"


@pytest.fixture(scope="module")
def server(web_dir: Path, account: Account) -> Iterator[LiveServer]:
    live = LiveServer(
        web_dir / "reclaim", account, PERSISTED_QUERIES="allowlist", EMBEDDED_RELAY_SECONDS="1"
    )
    with live:
        accept_by_email(live, OWNER_EMAIL, OWNER_PASSWORD)
        invited = console_call(
            live,
            "ConsoleInviteUser",
            {"input": {"email": IDA, "firstName": "Ida", "lastName": "Idle"}},
            live.token,
        )
        assert invited["data"]["inviteUser"]["errors"] == [], invited
        accept_by_email(live, IDA, "ida-password-123")
        yield live


def open_page(page: Any) -> None:
    sign_in(page)
    page.get_by_role("link", name="Inactive licences").click()
    page.get_by_role("heading", name="Reclaim policy").wait_for()


def preview_rows(page: Any) -> Any:
    return page.locator(".preview tbody tr")


def test_the_policy_is_refused_at_the_field_saved_with_an_exempt_person_and_previewed(
    server, pages
):
    page = pages.new(bypass_csp=True)  # axe is injected as a script
    open_page(page)
    assert page.get_by_label("Release inactive licences").is_checked() is False
    assert page.get_by_label("Days without signing in").input_value() == "90"
    page.locator(".preview .list-status", has_text="Showing 1 of 1").wait_for()
    assert IDA in preview_rows(page).first.inner_text()
    assert "Not yet" in preview_rows(page).first.inner_text()
    found = axe(page, "inactive licences")

    page.get_by_label("Release inactive licences").check()
    page.get_by_label("Days without signing in").fill("7")
    page.get_by_role("button", name="Save policy").click()
    page.get_by_text("inactiveDays must be 14..365.").wait_for()
    assert page.get_by_label("Days without signing in").get_attribute("aria-invalid") == "true"

    page.get_by_label("Days without signing in").fill("30")
    page.get_by_label("Exempt people").fill("ida@")
    page.get_by_label("Exempt people").press("Enter")
    page.get_by_text("Ida Idle is exempt once you save.").wait_for()
    page.get_by_role("button", name="Save policy").click()
    page.get_by_text("Policy saved: it applies from now.").wait_for()
    page.locator(".preview .list-status", has_text="Nothing yet.").wait_for()
    found += axe(page, "inactive licences, saved")

    page.get_by_role("button", name="Remove Ida Idle").click()
    page.get_by_role("button", name="Save policy").click()
    page.locator(".preview .list-status", has_text="Showing 1 of 1").wait_for()

    stored = console_call(server, "ConsoleReclaimPolicy", {}, server.token)
    assert stored["data"]["account"]["reclaimPolicy"] == {
        "enabled": True,
        "inactiveDays": 30,
        "noticeDays": 7,
        "exemptAdmins": True,
        "exemptUsers": [],
    }
    assert found == []


def test_at_375_px_the_inactive_licences_page_does_not_scroll_sideways(server, pages):
    page = pages.new(NARROW)
    sign_in(page)
    page.goto("/#inactive-licences")
    page.get_by_role("heading", name="Reclaim policy").wait_for()
    page.locator(".preview .list-status").filter(has_text="Showing").wait_for()

    no_horizontal_scroll(page)
