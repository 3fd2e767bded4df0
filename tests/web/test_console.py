"""The web console in Debian's Chromium (Playwright), against one real
`licenses serve` in embedded mode with PERSISTED_QUERIES=allowlist, so every
request the page makes must come from the shipped manifest.

The tests run in order, as one account's life: the owner sets a password from
the email in the Maildir, invites people (one of them accepts in a second
browser context), changes the number of licences, works the rows, pages
through the users, uses the admin pages, and finally hands the primary
contact role on and is signed out. Every page watches for console errors and
page errors; axe-core checks every page and dialog; 375 px never scrolls
sideways. Screenshots for the README are written to docs/screenshots when
UPDATE_SCREENSHOTS=1 (or when missing).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from email import policy
from email.parser import BytesParser
from pathlib import Path
from typing import Any

import pytest

from tests.support.live_server import REPO_ROOT, Account, LiveServer
from tests.support.tools import CHROMIUM_ARGS, chromium_path, ensure_node_modules

pytestmark = pytest.mark.slow

OWNER_EMAIL = "owner@web.example"
OWNER_PASSWORD = "owner-password-1"
ADA = {"email": "ada@web.example", "first": "Ada", "last": "Lovelace"}
ADA_PASSWORD = "ada-password-12"
CLEO_PASSWORD = "cleo-password-1"
WIDE = {"width": 1280, "height": 900}
NARROW = {"width": 375, "height": 760}
SCREENSHOTS = REPO_ROOT / "docs" / "screenshots"
LINK = re.compile(r"https?://\S+/accept-invitation\?token=[A-Za-z0-9_-]+")


# --- the server, the browser, pages that watch for errors ------------------------------------


@pytest.fixture(scope="module")
def server(web_dir: Path, account: Account) -> Iterator[LiveServer]:
    live = LiveServer(
        web_dir / "console", account, PERSISTED_QUERIES="allowlist", EMBEDDED_RELAY_SECONDS="1"
    )
    with live:
        yield live


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    executable = chromium_path()
    from playwright.sync_api import sync_playwright  # noqa: PLC0415 - needs the check first

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(executable), args=CHROMIUM_ARGS, headless=True
        )
        yield launched
        launched.close()


class Pages:
    """New browser contexts for a test; each page's console errors and page
    errors are collected, and the test fails on any (but those it allows)."""

    def __init__(self, browser: Any, server: LiveServer) -> None:
        self.browser = browser
        self.server = server
        self.contexts: list[Any] = []
        self.errors: list[str] = []
        self.allowed: list[re.Pattern[str]] = []

    def new(self, viewport: dict[str, int] = WIDE, *, bypass_csp: bool = False) -> Any:
        context = self.browser.new_context(
            viewport=viewport, base_url=self.server.base_url, bypass_csp=bypass_csp
        )
        context.set_default_timeout(10_000)
        self.contexts.append(context)
        page = context.new_page()
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.errors.append(f"pageerror: {error}"))
        return page

    def _console(self, message: Any) -> None:
        if message.type == "error" and not any(p.search(message.text) for p in self.allowed):
            self.errors.append(f"console: {message.text}")

    def allow(self, pattern: str) -> None:
        self.allowed.append(re.compile(pattern))

    def close(self) -> None:
        for context in self.contexts:
            context.close()


@pytest.fixture
def pages(browser: Any, server: LiveServer) -> Iterator[Pages]:
    opened = Pages(browser, server)
    yield opened
    opened.close()
    assert opened.errors == []


# --- helpers ---------------------------------------------------------------------------------


def console_call(server: LiveServer, name: str, variables: dict[str, Any], token: str) -> Any:
    """One of the console's own operations, by hash, as the page sends it."""
    manifest = json.loads((REPO_ROOT / "api" / "persisted_operations.json").read_text())
    [entry] = [op for op in manifest["operations"] if op["name"] == name]
    body = {
        "operationName": name,
        "variables": variables,
        "extensions": {"persistedQuery": {"version": 1, "sha256Hash": entry["id"]}},
    }
    request = urllib.request.Request(
        server.graphql_url,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
    )
    with urllib.request.urlopen(request, timeout=10) as reply:
        return json.loads(reply.read())


def invitation_links(server: LiveServer, to: str) -> list[str]:
    """The accept-invitation links of the emails to `to` in the server's Maildir, oldest first."""
    found: list[tuple[float, str]] = []
    for path in (server.work_dir / "mail" / "new").glob("*"):
        message = BytesParser(policy=policy.default).parsebytes(path.read_bytes())
        if to not in str(message["To"]):
            continue
        body = message.get_body(("plain",))
        text = body.get_content() if body is not None else ""
        found += [(path.stat().st_mtime, link) for link in LINK.findall(text)]
    return [link for _, link in sorted(found)]


def wait_for_link(server: LiveServer, to: str, *, count: int = 1, timeout: float = 20) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        links = invitation_links(server, to)
        if len(links) >= count:
            return links[-1]
        time.sleep(0.2)
    raise AssertionError(f"no invitation email #{count} for {to} in {server.work_dir / 'mail'}")


def accept_by_email(server: LiveServer, to: str, password: str) -> None:
    """Accept the latest invitation emailed to `to`, as the console does, setting `password`."""
    token = wait_for_link(server, to).rpartition("token=")[2]
    accepted = console_call(
        server,
        "ConsoleAcceptInvitation",
        {"input": {"token": token, "password": password}},
        server.token,
    )
    assert accepted["data"]["acceptInvitation"]["errors"] == [], accepted


def sign_in(
    page: Any,
    email: str = OWNER_EMAIL,
    password: str = OWNER_PASSWORD,
    *,
    account_id: str | None = None,
) -> None:
    page.goto("/")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Sign in").click()
    if account_id is not None:  # the email signs in to several accounts
        page.get_by_label("Account ID").fill(account_id)
        page.get_by_role("button", name="Sign in").click()
    page.get_by_role("button", name="Sign out").wait_for()


def users_page(page: Any) -> None:
    page.get_by_role("button", name="Invite new user").wait_for()
    page.locator(".list-status", has_text="Showing").wait_for()


def row(page: Any, text: str) -> Any:
    return page.locator("tbody tr", has_text=text)


def no_horizontal_scroll(page: Any) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    viewport = page.evaluate("window.innerWidth")
    assert width <= viewport, f"scrolls sideways: {width}px in {viewport}px"


def screenshot(page: Any, name: str, **options: Any) -> None:
    target = SCREENSHOTS / f"{name}.png"
    if os.environ.get("UPDATE_SCREENSHOTS") == "1" or not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(target), **options)


def axe(page: Any, where: str) -> list[str]:
    """Serious and critical violations axe-core finds on the page as it is now."""
    script = ensure_node_modules() / "axe-core" / "axe.min.js"
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.add_script_tag(path=str(script))
    result = page.evaluate(
        "async () => (await axe.run(document, {resultTypes: ['violations']})).violations"
        ".map(v => ({id: v.id, impact: v.impact, nodes: v.nodes.map(n => n.target.join(' '))}))"
    )
    return [
        f"{where}: {violation['id']} ({violation['impact']}) at {violation['nodes'][:3]}"
        for violation in result
        if violation["impact"] in ("serious", "critical")
    ]


# --- the flows, in order ---------------------------------------------------------------------


def test_in_the_default_apq_mode_the_page_signs_in_through_the_same_hashes(browser, servers):
    default = servers["default"]  # PERSISTED_QUERIES unset: automatic persisted queries
    watched = Pages(browser, default)
    try:
        page = watched.new()
        page.goto("/")
        page.get_by_label("Email").fill(OWNER_EMAIL)
        page.get_by_label("Password", exact=True).fill("no-password-set-yet")
        page.get_by_role("button", name="Sign in").click()
        refusal = page.locator(".form-alert:not([hidden])")
        refusal.wait_for()
        assert "PERSISTED" not in refusal.inner_text().upper()
    finally:
        watched.close()
    assert watched.errors == []


def test_the_owner_sets_a_password_from_the_email_and_lands_on_the_users_page(server, pages):
    link = wait_for_link(server, OWNER_EMAIL)
    page = pages.new()
    page.goto("/accept-invitation?token=not-a-real-token")
    page.get_by_label("Password", exact=True).fill(OWNER_PASSWORD)
    page.get_by_label("Repeat the password").fill(OWNER_PASSWORD)
    page.get_by_role("button", name="Set password and sign in").click()
    page.locator(".form-alert:not([hidden])").wait_for()  # INVITATION_INVALID, above the form
    page.reload()  # the token left the address bar: the page asks for the link again
    page.get_by_text("This invitation link is incomplete.").wait_for()

    page.goto(link)
    page.get_by_role("heading", name="Accept your invitation").wait_for()
    assert "token" not in page.url  # the token left the address bar
    page.get_by_label("Password", exact=True).fill("short")
    page.get_by_label("Repeat the password").fill("short")
    page.get_by_role("button", name="Set password and sign in").click()
    weak = page.locator('.field[data-field="password"] .field-error')
    weak.wait_for()
    assert weak.is_visible()
    assert page.get_by_label("Password", exact=True).get_attribute("aria-invalid") == "true"

    page.get_by_label("Password", exact=True).fill(OWNER_PASSWORD)
    page.get_by_label("Repeat the password").fill(OWNER_PASSWORD)
    page.get_by_role("button", name="Set password and sign in").click()
    users_page(page)

    assert page.url == f"{server.base_url}/"
    assert row(page, OWNER_EMAIL).get_by_text("Primary contact").is_visible()
    banner = page.locator(".banner")
    assert "1 of 10 licenses in use" in banner.inner_text()
    assert "9 available" in banner.inner_text()


def test_sign_in_refusals_reload_keeps_the_session_in_the_tab_and_sign_out_ends_it(server, pages):
    page = pages.new()
    page.goto("/")
    page.get_by_label("Email").fill(OWNER_EMAIL)
    page.get_by_label("Password", exact=True).fill("not-the-password")
    page.get_by_role("button", name="Sign in").click()
    page.locator(".form-alert:not([hidden])").wait_for()
    assert page.locator(".form-alert").inner_text().strip() != ""

    sign_in(page)
    users_page(page)
    stored = page.evaluate("[sessionStorage.length, localStorage.getItem('licenses.session')]")
    assert stored == [1, None]
    page.reload()
    users_page(page)
    assert page.evaluate("Object.keys(localStorage)") == ["licenses.accounts"]

    other_tab = page.context.new_page()  # sessionStorage is per tab
    other_tab.goto("/")
    other_tab.get_by_role("button", name="Sign in").wait_for()
    other_tab.close()

    page.get_by_role("button", name="Sign out").click()
    page.get_by_text("You are signed out.").wait_for()
    assert page.evaluate("sessionStorage.length") == 0
    page.reload()
    page.get_by_role("button", name="Sign in").wait_for()


def invite(page: Any, email: str, first: str, last: str, role: str = "Member") -> None:
    page.get_by_role("button", name="Invite new user").click()
    dialog = page.get_by_role("dialog", name="Invite new user")
    dialog.get_by_label("Email").fill(email)
    dialog.get_by_label("First Name").fill(first)
    dialog.get_by_label("Last Name").fill(last)
    dialog.get_by_label("Role").select_option(label=role)
    dialog.get_by_role("button", name="Send invitation").click()


def test_invite_shows_errors_at_the_field_and_the_invitee_accepts_in_a_second_context(
    server, pages
):
    page = pages.new()
    sign_in(page)
    users_page(page)

    invite(page, "not-an-email", "Ada", "Lovelace")
    dialog = page.get_by_role("dialog", name="Invite new user")
    error = dialog.locator('.field[data-field="email"] .field-error')
    error.wait_for()
    assert dialog.get_by_label("Email").get_attribute("aria-invalid") == "true"
    screenshot(page, "invite-dialog")
    dialog.get_by_label("Email").fill(OWNER_EMAIL)
    dialog.get_by_role("button", name="Send invitation").click()
    dialog.locator(
        '.field[data-field="email"] .field-error', has_text=re.compile("already|exists", re.I)
    ).wait_for()
    dialog.get_by_label("Email").fill(ADA["email"])
    dialog.get_by_label("Qualification").fill("Analyst")
    dialog.get_by_role("button", name="Send invitation").click()
    page.get_by_text(f"Invitation sent to {ADA['email']}.").wait_for()
    assert not dialog.is_visible()
    row(page, ADA["email"]).get_by_text("Invited").wait_for()
    page.locator(".banner", has_text="1 pending invitation").wait_for()

    # The invitee opens the link from the Maildir in a browser of its own.
    link = wait_for_link(server, ADA["email"])
    invitee = pages.new()
    invitee.goto(link)
    invitee.get_by_label("Password", exact=True).fill(ADA_PASSWORD)
    invitee.get_by_label("Repeat the password").fill("something-else")
    invitee.get_by_role("button", name="Set password and sign in").click()
    invitee.locator('.field[data-field="repeat"] .field-error').wait_for()
    invitee.get_by_label("Repeat the password").fill(ADA_PASSWORD)
    invitee.get_by_role("button", name="Set password and sign in").click()
    # A MEMBER sees itself and what the contract lets it read.
    invitee.get_by_role("heading", name="Your profile").wait_for()
    profile = invitee.locator(".profile").inner_text()
    assert "Ada Lovelace" in profile and "Analyst" in profile and "Wendy Web" in profile
    assert invitee.get_by_role("link", name="Charges").count() == 0
    invitee.get_by_role("button", name="Edit your name").click()
    invitee.get_by_role("dialog").get_by_label("First Name").fill("Augusta Ada")
    invitee.get_by_role("dialog").get_by_role("button", name="Save changes").click()
    invitee.get_by_text("Your name is updated.").wait_for()

    page.reload()
    users_page(page)
    row(page, ADA["email"]).get_by_text("Enabled").wait_for()
    assert "Augusta Ada Lovelace" in row(page, ADA["email"]).inner_text()

    # A second member, for the later tests (accepted without a browser).
    invited = console_call(
        server,
        "ConsoleInviteUser",
        {"input": {"email": "cleo@web.example", "firstName": "Cleo", "lastName": "Member"}},
        server.token,
    )
    assert invited["data"]["inviteUser"]["errors"] == []
    token = wait_for_link(server, "cleo@web.example").rpartition("token=")[2]
    accepted = console_call(
        server,
        "ConsoleAcceptInvitation",
        {"input": {"token": token, "password": CLEO_PASSWORD}},
        server.token,
    )
    assert accepted["data"]["acceptInvitation"]["errors"] == []


def sent_change(page: Any) -> list[dict[str, Any]]:
    inputs: list[dict[str, Any]] = []

    def record(request: Any) -> None:
        if request.url.endswith("/graphql") and request.method == "POST":
            body = json.loads(request.post_data or "{}")
            if body.get("operationName") == "ConsoleChangeSeatCount":
                inputs.append(body["variables"]["input"])

    page.on("request", record)
    return inputs


def test_edit_number_of_licenses_adds_with_the_previewed_amount_and_schedules_a_reduction(
    server, pages
):
    page = pages.new()
    sign_in(page)
    users_page(page)
    sent = sent_change(page)

    page.get_by_role("button", name="Edit number of licenses").click()
    dialog = page.get_by_role("dialog", name="Edit number of licenses")
    dialog.get_by_text("No change.").wait_for()
    # Focus moves into the dialog, Escape closes it and focus comes back.
    assert page.evaluate("document.activeElement.closest('dialog') !== null")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.closest('dialog') !== null")
    page.keyboard.press("Escape")
    assert not dialog.is_visible()
    assert page.evaluate("document.activeElement.textContent") == "Edit number of licenses"

    page.get_by_role("button", name="Edit number of licenses").click()
    dialog.get_by_label("Number of licenses").fill("60")
    dialog.get_by_text("licenses are added now").wait_for()
    amount = dialog.locator("output.amount").inner_text()
    assert amount not in ("$0.00", "")
    preview = console_call(server, "ConsoleSeatChangePreview", {"total": 60}, server.token)
    cents = preview["data"]["account"]["seatChangePreview"]["amountDueNowCents"]
    assert cents > 0
    dialog.get_by_text("License Agreement", exact=True).wait_for()
    assert "Licence agreement" in dialog.locator(".agreement-text").inner_text()
    screenshot(page, "license-dialog")
    dialog.get_by_role("button", name="Complete Change").click()
    dialog.locator('.field[data-field="acceptAgreement"] .field-error').wait_for()
    dialog.get_by_label("I accept the License Agreement").check()
    dialog.get_by_role("button", name="Complete Change").click()
    page.get_by_text("Licenses changed to 60").wait_for()
    page.locator(".banner", has_text="of 60 licenses in use").wait_for()

    assert len(sent) == 2
    assert sent[-1]["total"] == 60 and sent[-1]["acceptAgreement"] is True
    assert isinstance(sent[-1]["expectedAmountDueCents"], int)
    assert sent[-1]["prorationDate"].endswith(("Z", "+00:00"))

    # A reduction shows its effective date, is scheduled, and can be cancelled.
    page.get_by_role("button", name="Edit number of licenses").click()
    dialog.get_by_label("Number of licenses").fill("55")
    effect = dialog.get_by_text("The reduction to 55 licenses takes effect on")
    effect.wait_for()
    assert dialog.locator("output.amount").inner_text() == "$0.00"
    dialog.get_by_label("I accept the License Agreement").check()
    dialog.get_by_role("button", name="Complete Change").click()
    scheduled = page.locator(".scheduled", has_text="Reduction to 55 licenses")
    scheduled.wait_for()
    assert "scheduled for" in scheduled.inner_text()
    page.get_by_role("button", name="Cancel scheduled reduction").click()
    page.get_by_text("The scheduled reduction is cancelled.").wait_for()
    page.locator(".scheduled").wait_for(state="detached")

    # Cancel closes without a change.
    page.get_by_role("button", name="Edit number of licenses").click()
    dialog.get_by_label("Number of licenses").fill("70")
    dialog.get_by_text("licenses are added now").wait_for()
    dialog.get_by_role("button", name="Cancel").click()
    assert not dialog.is_visible()
    assert len(sent) == 3
    assert "of 60 licenses" in page.locator(".banner").inner_text()


def test_row_actions_resend_revoke_assign_remove_edit_and_licence_history(server, pages):
    page = pages.new()
    sign_in(page)
    users_page(page)
    invite(page, "bob@web.example", "Bob", "Babbage")
    bob = row(page, "bob@web.example")
    bob.get_by_text("Invited").wait_for()

    bob.get_by_role("button", name="Resend invitation to Bob Babbage").click()
    page.get_by_text("The invitation to bob@web.example was sent again.").wait_for()
    wait_for_link(server, "bob@web.example", count=2)
    bob.get_by_role("button", name="Revoke invitation of Bob Babbage").click()
    page.get_by_text("The invitation to bob@web.example is revoked.").wait_for()
    bob.get_by_text("Disabled").wait_for()

    bob.get_by_role("button", name="Assign license to Bob Babbage").click()
    page.get_by_text("Bob Babbage has a license again.").wait_for()
    bob.get_by_text("Invited").wait_for()

    # The X icon: "Remove Team Member"; Cancel changes nothing.
    bob.get_by_role("button", name="Remove Bob Babbage").click()
    remove = page.get_by_role("dialog", name="Remove Team Member")
    remove.get_by_role("button", name="Cancel").click()
    assert not remove.is_visible()
    bob.get_by_text("Invited").wait_for()
    bob.get_by_role("button", name="Remove Bob Babbage").click()
    remove.get_by_role("button", name="Remove team member").click()
    page.get_by_text("Bob Babbage no longer holds a license.").wait_for()
    bob.get_by_text("Disabled").wait_for()

    # Edit details: names, role and qualification.
    ada = row(page, ADA["email"])
    ada.get_by_role("button", name="Edit Augusta Ada Lovelace").click()
    edit = page.get_by_role("dialog", name="Edit user")
    edit.get_by_label("First Name").fill("   ")
    edit.get_by_label("Role").select_option(label="Admin")
    edit.get_by_label("Qualification").fill("Chief analyst")
    edit.get_by_role("button", name="Save changes").click()
    edit.locator('.field[data-field="firstName"] .field-error').wait_for()
    edit.get_by_label("First Name").fill("Ada")
    edit.get_by_role("button", name="Save changes").click()
    page.get_by_text("Ada Lovelace is updated.").wait_for()
    ada.get_by_text("Chief analyst").wait_for()
    assert "Admin" in ada.inner_text()

    # The user's assignments.
    bob.get_by_role("button", name="License history of Bob Babbage").click()
    history = page.get_by_role("dialog", name="License history of Bob Babbage")
    history.locator(".history-list li").first.wait_for()
    text = history.inner_text()
    assert text.count("Assigned") == 2
    assert "(removed)" in text and "(invitation revoked)" in text
    page.keyboard.press("Escape")
    assert not history.is_visible()


def schedule_reduction(server: LiveServer, total: int) -> None:
    version = console_call(server, "ConsoleLicenseAgreement", {}, server.token)["data"][
        "licenseAgreement"
    ]["version"]
    changed = console_call(
        server,
        "ConsoleChangeSeatCount",
        {"input": {"total": total, "acceptAgreement": True, "agreementVersion": version}},
        server.token,
    )
    assert changed["data"]["changeSeatCount"]["errors"] == [], changed


def test_search_filters_sort_and_load_more_page_through_the_users(server, pages):
    # A reduction scheduled before more licences were taken: the banner names
    # who it would release (the newest invitations first).
    schedule_reduction(server, 56)
    for number in range(55):
        answer = console_call(
            server,
            "ConsoleInviteUser",
            {
                "input": {
                    "email": f"bulk-{number:02d}@web.example",
                    "firstName": "Bulk",
                    "lastName": f"User {number:02d}",
                }
            },
            server.token,
        )
        assert answer["data"]["inviteUser"]["errors"] == [], answer
    page = pages.new()
    sign_in(page)
    users_page(page)
    status = page.locator(".list-status")
    assert status.inner_text() == "Showing 50 of 59 users"
    scheduled = page.locator(".scheduled")
    scheduled.get_by_text("2 licenses would be released: Bulk User 54, Bulk User 53.").wait_for()
    assert "Reduction to 56 licenses" in scheduled.inner_text()
    page.get_by_role("button", name="Cancel scheduled reduction").click()
    scheduled.wait_for(state="detached")
    assert page.locator("tbody tr").count() == 50

    page.get_by_role("button", name="Load more").click()
    page.locator(".list-status", has_text="Showing 59 of 59 users").wait_for()
    assert page.locator("tbody tr").count() == 59
    assert page.get_by_role("button", name="Load more").is_hidden()

    page.get_by_label("Search").fill("bulk-07")
    page.locator(".list-status", has_text="Showing 1 of 1 user").wait_for()
    assert row(page, "bulk-07@web.example").count() == 1
    page.get_by_label("Search").fill("")
    page.get_by_label("Status").select_option(label="Disabled")
    page.locator(".list-status", has_text="Showing 1 of 1 user").wait_for()
    assert row(page, "bob@web.example").count() == 1
    page.get_by_label("Status").select_option(label="All statuses")
    page.get_by_label("Role").select_option(label="Admin")
    page.locator(".list-status", has_text="Showing 1 of 1 user").wait_for()
    assert row(page, ADA["email"]).count() == 1
    page.get_by_label("Role").select_option(label="All roles")
    page.get_by_label("License", exact=True).select_option(label="With a license")
    page.locator(".list-status", has_text="Showing 50 of 58 users").wait_for()
    page.get_by_label("License", exact=True).select_option(label="All")
    page.get_by_label("Sort by").select_option(label="Name (Z–A)")
    page.locator(".list-status", has_text="Showing 50 of 59 users").wait_for()
    page.locator("tbody tr").first.filter(has_text="Wendy Web").wait_for()
    assert "Ada Lovelace" not in page.locator("tbody").inner_text()


def test_admin_pages_charges_audit_log_and_api_tokens_with_the_secret_shown_once(server, pages):
    page = pages.new()
    sign_in(page)
    page.get_by_role("link", name="Charges").click()
    page.get_by_role("heading", name="Charges").wait_for()
    page.locator("tbody tr", has_text="License increase").wait_for()
    assert "50" in page.locator("tbody tr", has_text="License increase").inner_text()

    page.get_by_role("link", name="Audit log").click()
    page.get_by_role("heading", name="Audit log").wait_for()
    page.locator("tbody tr", has_text="User invited").first.wait_for()
    assert page.locator(".list-status").inner_text().startswith("Showing 50 of ")
    page.get_by_role("button", name="Load more").click()
    page.locator(".list-status", has_text=re.compile(r"Showing (\d{3}|[6-9]\d) of")).wait_for()

    page.get_by_role("link", name="API tokens").click()
    page.get_by_role("heading", name="API tokens").wait_for()
    page.get_by_role("button", name="Create token").click()
    page.locator('.field[data-field="name"] .field-error').wait_for()
    page.get_by_label("Token name").fill("Nightly export")
    page.get_by_role("button", name="Create token").click()
    secret = page.get_by_label("Secret")
    secret.wait_for()
    value = secret.input_value()
    assert value.startswith("lic_")
    page.locator("tbody tr", has_text="Nightly export").wait_for()
    page.reload()
    page.locator("tbody tr", has_text="Nightly export").wait_for()
    assert value not in page.content()
    page.get_by_role("button", name="Revoke Nightly export").click()
    page.get_by_role("dialog", name="Revoke API token").get_by_role(
        "button", name="Revoke token"
    ).click()
    page.locator("tbody tr", has_text="Nightly export").get_by_text("Revoked").wait_for()


def test_service_unavailable_says_try_again_and_the_retry_works(server, pages):
    pages.allow(r"status of 503")
    page = pages.new()
    sign_in(page)
    users_page(page)

    def unavailable(route: Any) -> None:
        if json.loads(route.request.post_data or "{}").get("operationName") == "ConsoleUsers":
            route.fulfill(
                status=503,
                headers={"Retry-After": "5", "Content-Type": "application/json"},
                body=json.dumps(
                    {
                        "data": None,
                        "errors": [
                            {
                                "message": "Service unavailable",
                                "extensions": {"code": "SERVICE_UNAVAILABLE", "requestId": "r1"},
                            }
                        ],
                    }
                ),
            )
        else:
            route.continue_()

    page.route("**/graphql", unavailable)
    page.get_by_label("Search").fill("bulk")
    alert = page.locator(".users .form-alert", has_text="Try again in a moment")
    alert.wait_for()
    page.unroute("**/graphql")
    alert.get_by_role("button", name="Try again").click()
    page.locator(".list-status", has_text="of 55 users").wait_for()

    # A mutation met by a 503 is retried by the user with the same Idempotency-Key.
    keys: list[str] = []

    def first_invite_unavailable(route: Any) -> None:
        request = route.request
        if json.loads(request.post_data or "{}").get("operationName") != "ConsoleInviteUser":
            route.continue_()
            return
        keys.append(request.headers["idempotency-key"])
        if len(keys) == 1:
            route.fulfill(
                status=503,
                headers={"Retry-After": "5", "Content-Type": "application/json"},
                body=json.dumps(
                    {
                        "data": None,
                        "errors": [
                            {
                                "message": "Service unavailable",
                                "extensions": {"code": "SERVICE_UNAVAILABLE"},
                            }
                        ],
                    }
                ),
            )
        else:
            route.continue_()

    page.route("**/graphql", first_invite_unavailable)
    invite(page, "dora@web.example", "Dora", "Retry")
    dialog = page.get_by_role("dialog", name="Invite new user")
    dialog.locator(".form-alert", has_text="Try again in a moment").wait_for()
    dialog.get_by_role("button", name="Send invitation").click()
    page.get_by_text("Invitation sent to dora@web.example.").wait_for()
    page.unroute("**/graphql")
    assert len(keys) == 2 and keys[0] == keys[1]


def test_an_ended_session_returns_to_sign_in(server, pages):
    page = pages.new()
    sign_in(page)
    users_page(page)
    token = page.evaluate("sessionStorage.getItem('licenses.session')")
    assert console_call(server, "ConsoleLogout", {}, token)["data"]["logout"]["errors"] == []

    page.get_by_label("Status").select_option(label="Invited")
    page.get_by_text("Your session has ended. Sign in again.").wait_for()
    page.get_by_role("button", name="Sign in").wait_for()


def test_at_375_px_no_page_or_dialog_scrolls_sideways(server, pages):
    page = pages.new(NARROW)
    page.goto("/")
    page.get_by_role("button", name="Sign in").wait_for()
    no_horizontal_scroll(page)
    page.goto("/accept-invitation?token=abc")
    page.get_by_role("heading", name="Accept your invitation").wait_for()
    no_horizontal_scroll(page)
    sign_in(page)
    users_page(page)
    no_horizontal_scroll(page)
    page.get_by_label("Search").fill("lovelace")
    page.locator(".list-status", has_text="Showing 1 of 1 user").wait_for()
    page.evaluate("document.querySelector('.users').scrollIntoView()")
    screenshot(page, "users-375px")
    page.get_by_label("Search").fill("")
    page.locator(".list-status", has_text="Showing 50 of").wait_for()
    for button, dialog in [
        ("Invite new user", "Invite new user"),
        ("Edit number of licenses", "Edit number of licenses"),
        ("Remove Ada Lovelace", "Remove Team Member"),
        ("Make Ada Lovelace the primary contact", "Change Primary Contact"),
        ("Edit Ada Lovelace", "Edit user"),
    ]:
        page.get_by_role("button", name=button).click()
        page.get_by_role("dialog", name=dialog).wait_for()
        no_horizontal_scroll(page)
        page.keyboard.press("Escape")
    for link, heading in [
        ("Charges", "Charges"),
        ("Audit log", "Audit log"),
        ("API tokens", "API tokens"),
    ]:
        page.get_by_role("link", name=link).click()
        page.get_by_role("heading", name=heading).wait_for()
        page.wait_for_load_state("networkidle")
        no_horizontal_scroll(page)


def test_an_email_in_two_accounts_chooses_the_account_at_sign_in(server, pages):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "api.cli",
            "account",
            "create",
            "--name",
            "Second Account",
            "--owner-email",
            OWNER_EMAIL,
            "--owner-first-name",
            "Wendy",
            "--owner-last-name",
            "Two",
            "--seats",
            "3",
            "--seat-price-cents",
            "500",
            "--json",
        ],
        cwd=server.work_dir,
        env=server.env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        stdin=subprocess.DEVNULL,
    )
    second = json.loads(result.stdout)
    link = wait_for_link(server, OWNER_EMAIL, count=2)
    page = pages.new()
    page.goto(link)
    page.get_by_label("Password", exact=True).fill(OWNER_PASSWORD)
    page.get_by_label("Repeat the password").fill(OWNER_PASSWORD)
    page.get_by_role("button", name="Set password and sign in").click()
    page.locator(".account-name", has_text="Second Account").wait_for()
    page.get_by_role("button", name="Sign out").click()

    page.get_by_label("Email").fill(OWNER_EMAIL)
    page.get_by_label("Password", exact=True).fill(OWNER_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    choice = page.get_by_label("Account ID")
    choice.wait_for()
    assert choice.get_attribute("aria-invalid") == "true"
    assert page.locator('.field[data-field="accountId"] .field-error').inner_text() != ""
    choice.fill(second["accountId"])
    page.get_by_role("button", name="Sign in").click()
    page.locator(".account-name", has_text="Second Account").wait_for()


def test_axe_finds_no_serious_or_critical_violation_on_any_page_or_dialog(server, pages):
    page = pages.new(bypass_csp=True)  # axe is injected as a script: for these runs only
    found: list[str] = []
    page.goto("/")
    page.get_by_role("button", name="Sign in").wait_for()
    found += axe(page, "sign-in")
    page.goto("/accept-invitation?token=abc")
    page.get_by_role("heading", name="Accept your invitation").wait_for()
    found += axe(page, "accept-invitation")
    # The account choice (the owner's email now signs in to two accounts).
    page.goto("/")
    page.get_by_label("Email").fill(OWNER_EMAIL)
    page.get_by_label("Password", exact=True).fill(OWNER_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_label("Account ID").wait_for()
    found += axe(page, "sign-in, account choice")
    page.get_by_label("Account ID").fill(server.account.account_id)
    page.get_by_role("button", name="Sign in").click()
    users_page(page)
    screenshot(page, "users")
    found += axe(page, "users")
    for button, dialog in [
        ("Invite new user", "Invite new user"),
        ("Edit number of licenses", "Edit number of licenses"),
        ("Remove Ada Lovelace", "Remove Team Member"),
        ("Make Ada Lovelace the primary contact", "Change Primary Contact"),
        ("Edit Ada Lovelace", "Edit user"),
        ("License history of Ada Lovelace", "License history of Ada Lovelace"),
    ]:
        page.get_by_role("button", name=button).click()
        opened = page.get_by_role("dialog", name=dialog)
        opened.wait_for()
        page.wait_for_load_state("networkidle")
        found += axe(page, f"dialog {dialog}")
        if dialog == "Invite new user":  # and with an error at each field
            opened.get_by_role("button", name="Send invitation").click()
            opened.locator(".field-error:not([hidden])").first.wait_for()
            found += axe(page, "dialog Invite new user, with errors")
        if dialog == "Edit number of licenses":  # and with a previewed increase
            opened.get_by_label("Number of licenses").fill("61")
            opened.get_by_text("license is added now").wait_for()
            found += axe(page, "dialog Edit number of licenses, increase")
        page.keyboard.press("Escape")
        opened.wait_for(state="detached")
    for link in ("Charges", "Audit log", "API tokens"):
        page.get_by_role("link", name=link).click()
        page.get_by_role("heading", name=link).wait_for()
        page.wait_for_load_state("networkidle")
        found += axe(page, link)
    page.get_by_label("Token name").fill("Axe check")
    page.get_by_role("button", name="Create token").click()
    page.get_by_label("Secret").wait_for()
    found += axe(page, "API tokens, secret shown once")
    # A MEMBER's page and dialog.
    member = pages.new(bypass_csp=True)
    sign_in(member, "cleo@web.example", CLEO_PASSWORD)
    member.get_by_role("heading", name="Your profile").wait_for()
    found += axe(member, "member profile")
    member.get_by_role("button", name="Edit your name").click()
    member.get_by_role("dialog", name="Edit your name").wait_for()
    found += axe(member, "dialog Edit your name")
    assert found == []


def test_the_owner_hands_the_primary_contact_role_on_and_is_signed_out_with_the_reason(
    server, pages
):
    page = pages.new()
    sign_in(page, account_id=server.account.account_id)
    users_page(page)
    ada = row(page, ADA["email"])
    ada.get_by_role("button", name="Make Ada Lovelace the primary contact").click()
    dialog = page.get_by_role("dialog", name="Change Primary Contact")
    dialog.get_by_role("button", name="Make primary contact").click()

    page.get_by_text("You made Ada Lovelace the primary contact.").wait_for()
    page.get_by_role("button", name="Sign in").wait_for()
    assert page.evaluate("sessionStorage.length") == 0

    # Signed in again, the former owner is an admin and no longer sees the up arrow.
    page.get_by_label("Email").fill(OWNER_EMAIL)
    page.get_by_label("Password", exact=True).fill(OWNER_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_label("Account ID").fill(server.account.account_id)
    page.get_by_role("button", name="Sign in").click()
    users_page(page)
    assert page.locator(".who-role").inner_text() == "Admin"
    assert row(page, ADA["email"]).get_by_text("Primary contact").is_visible()
    assert page.get_by_role("button", name=re.compile("primary contact$")).count() == 0
