"""The demo account an embedded first start creates, and prints on every start."""

from __future__ import annotations

import json
import logging
import secrets
import sys
from pathlib import Path

from domain.clock import Clock
from domain.enums import InvitationKind
from domain.models import Account, Invitation
from domain.security import invitation_token
from domain.services.accounts import create_account
from domain.services.invitations import accept_invitation
from domain.settings import Settings

log = logging.getLogger(__name__)

DEMO_FILE = Path("var/demo-account.json")


async def ensure_demo_account(settings: Settings, *, clock: Clock) -> dict[str, object]:
    demo = _read_demo()
    if demo is None or not await Account.exists(id=demo.get("accountId")):
        demo = await _create_demo(clock)
        _write_demo(demo)
    _announce(settings, demo)
    return demo


def _write_demo(demo: dict[str, object]) -> None:
    DEMO_FILE.parent.mkdir(parents=True, exist_ok=True)
    DEMO_FILE.write_text(json.dumps(demo, indent=2), encoding="utf-8")
    # It holds the demo owner's password and API token.
    DEMO_FILE.chmod(0o600)


def _read_demo() -> dict[str, object] | None:
    try:
        loaded = json.loads(DEMO_FILE.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return loaded if isinstance(loaded, dict) else None


async def _create_demo(clock: Clock) -> dict[str, object]:
    created = await create_account(
        name="Demo Company",
        owner_email="owner@demo.example",
        owner_first_name="Dana",
        owner_last_name="Demo",
        seats=10,
        seat_price_cents=1500,
        clock=clock,
    )
    # Sign-in details for the newcomer: the owner's password-set link is used
    # here, through the same service a browser would call.
    invitation = await Invitation.get(
        user_id=created.owner_user_id, kind=InvitationKind.PASSWORD_SET
    )
    password = secrets.token_urlsafe(12)
    await accept_invitation(
        token=invitation_token(invitation.id, invitation.token_version),
        password=password,
        clock=clock,
    )
    return {
        "accountId": str(created.account_id),
        "ownerUserId": str(created.owner_user_id),
        "ownerEmail": "owner@demo.example",
        "ownerPassword": password,
        "apiToken": created.api_token,
    }


def _announce(settings: Settings, demo: dict[str, object]) -> None:
    graphql_url = f"{settings.public_url}/graphql"
    lines = [
        "",
        "Licenses & Users is running (embedded mode).",
        f"  Web console:       {settings.public_url}/  (sign in as the demo owner)",
        f"  GraphQL (GraphiQL in a browser): {graphql_url}",
        f"  Demo account id:   {demo['accountId']}",
        f"  Owner sign-in:     {demo['ownerEmail']} / {demo['ownerPassword']}",
        f"  API token:         {demo['apiToken']}",
        "  Try: curl -s -H 'Authorization: Bearer <API token>' -H 'Content-Type: application/json' "
        f'-d \'{{"query":"{{ account {{ name }} }}"}}\' {graphql_url}',
        f"  Emails land in the Maildir {settings.mail_url.removeprefix('maildir://')}/new",
        "",
    ]
    print("\n".join(lines), file=sys.stderr, flush=True)
