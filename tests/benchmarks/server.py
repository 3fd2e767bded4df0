"""The benchmark's server: the production app plus the routes it is compared with.

    python -m tests.benchmarks.server --port PORT     (settings from the environment)

`build_app()` builds the app exactly as `licenses serve` does
(`api.app.create_app`) and appends, to this app only, the baselines the
GraphQL figures are compared with:

- GET  /bench/users?account=ID   the 100 rows of the first users page (with
  each user's latest invitation and the account's licence counts) as JSON,
  from ONE hand-written SQL statement through the same driver and pool;
- POST /bench/peer               benchmark B7's peer (tests/benchmarks/peer.py):
  the users page from Strawberry + Tortoise written as their documentation
  shows, in the same process;
- POST /bench/invite             the inserts of an invitation (licence taken,
  user, licence assignment, invitation, audit event, outbox row) in ONE
  transaction of hand-written SQL.

The two baselines neither authenticate, parse GraphQL nor go through the
ORM: they are the floor that the real endpoints are measured against. uvicorn
runs with the same options as `licenses serve`.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from tortoise import connections
from tortoise.transactions import in_transaction

from api.app import create_app
from api.logs import configure_logging
from domain.settings import Settings
from tests.benchmarks.peer import PEER_PATH, peer_app

PAGE = 100


def _placeholders(postgres: bool, count: int) -> list[str]:
    return [f"${i}" if postgres else "?" for i in range(1, count + 1)]


def _users_sql(postgres: bool) -> str:
    (account,) = _placeholders(postgres, 1)
    # The latest invitation of each user: a correlated MAX(id) on the
    # (user_id, id) index, which both backends plan as an index lookup.
    return f"""
        SELECT u.id, u.email, u.first_name, u.last_name, u.role, u.qualification,
               u.status, u.last_active_at, i.status AS invitation_status,
               i.expires_at AS invitation_expires_at,
               a.seats_total, a.seats_in_use
        FROM users u
        JOIN accounts a ON a.id = u.account_id
        LEFT JOIN invitations i
               ON i.id = (SELECT MAX(id) FROM invitations WHERE user_id = u.id)
        WHERE u.account_id = {account}
        ORDER BY u.sort_name, u.id
        LIMIT {PAGE}
    """


def _iso(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):  # SQLite returns the stored text
        value = datetime.fromisoformat(value)
    return str(value.astimezone(UTC).isoformat())


async def baseline_users(request: Request) -> Response:
    account_id = int(request.query_params["account"])
    client = connections.get("default")
    postgres = client.capabilities.dialect == "postgres"
    _, rows = await client.execute_query(_users_sql(postgres), [account_id])
    total = in_use = 0
    users = []
    for row in rows:
        total, in_use = row["seats_total"], row["seats_in_use"]
        users.append(
            {
                "id": str(row["id"]),
                "email": row["email"],
                "firstName": row["first_name"],
                "lastName": row["last_name"],
                "name": f"{row['first_name']} {row['last_name']}",
                "role": row["role"],
                "qualification": row["qualification"],
                "status": row["status"],
                "isOwner": row["role"] == "OWNER",
                "hasLicense": row["status"] != "DISABLED",
                "lastActiveAt": _iso(row["last_active_at"]),
                "invitation": (
                    {
                        "status": row["invitation_status"],
                        "expiresAt": _iso(row["invitation_expires_at"]),
                    }
                    if row["invitation_status"] is not None
                    else None
                ),
            }
        )
    body = {
        "licenses": {"total": total, "inUse": in_use, "available": max(0, total - in_use)},
        "users": users,
    }
    return Response(json.dumps(body, separators=(",", ":")), media_type="application/json")


async def baseline_invite(request: Request) -> Response:
    """The same rows inviteUser writes, in one transaction of hand-written SQL."""
    payload = json.loads(await request.body())
    account_id = int(payload["account"])
    email = str(payload["email"])
    first, last = str(payload["firstName"]), str(payload["lastName"])
    now = datetime.now(UTC)
    expires = now + timedelta(days=7)
    async with in_transaction() as connection:
        postgres = connection.capabilities.dialect == "postgres"
        p = _placeholders(postgres, 16)
        ts: Any = now if postgres else str(now)
        taken, _ = await connection.execute_query(
            f"UPDATE accounts SET seats_in_use = seats_in_use + 1 "
            f"WHERE id = {p[0]} AND seats_in_use < seats_total",
            [account_id],
        )
        if taken != 1:
            return Response('{"error":"NO_AVAILABLE_LICENSES"}', status_code=409)
        rows = await connection.execute_query_dict(
            "INSERT INTO users (account_id, email, email_key, first_name, last_name, sort_name, "
            "role, status, created_at) "
            f"VALUES ({', '.join(p[:9])}) RETURNING id",
            [
                account_id,
                email,
                email.lower(),
                first,
                last,
                f"{first} {last}".casefold(),
                "MEMBER",
                "INVITED",
                ts,
            ],
        )
        user_id = rows[0]["id"]
        await connection.execute_query(
            "INSERT INTO license_assignments (account_id, user_id, assigned_at, assigned_by_kind) "
            f"VALUES ({', '.join(p[:4])})",
            [account_id, user_id, ts, "API_TOKEN"],
        )
        rows = await connection.execute_query_dict(
            "INSERT INTO invitations (account_id, user_id, kind, email, token_version, "
            "token_hash, status, created_at, expires_at, delivery_attempts) "
            f"VALUES ({', '.join(p[:10])}) RETURNING id",
            [
                account_id,
                user_id,
                "LICENSE",
                email,
                1,
                hashlib.sha256(secrets.token_bytes(32)).hexdigest(),
                "PENDING",
                ts,
                expires if postgres else str(expires),
                0,
            ],
        )
        invitation_id = rows[0]["id"]
        data = json.dumps({"email": email, "role": "MEMBER", "invitationId": invitation_id})
        await connection.execute_query(
            "INSERT INTO audit_events (account_id, action, actor_kind, target_user_id, data, "
            f"created_at) VALUES ({', '.join(p[:6])})",
            [account_id, "USER_INVITED", "API_TOKEN", user_id, data, ts],
        )
        # Not due for a day: the embedded relay must not deliver the
        # baseline's rows (their delivery is benchmark B4's subject).
        later: Any = now + timedelta(days=1)
        await connection.execute_query(
            "INSERT INTO outbox_messages (account_id, kind, payload, created_at, available_at, "
            f"attempts) VALUES ({', '.join(p[:6])})",
            [
                account_id,
                "INVITATION",
                json.dumps({"invitationId": invitation_id}),
                ts,
                later if postgres else str(later),
                0,
            ],
        )
    return Response(
        json.dumps({"userId": str(user_id), "invitationId": str(invitation_id)}),
        media_type="application/json",
    )


def build_app() -> Starlette:
    settings = Settings.from_env()
    configure_logging(level=settings.log_level, fmt=settings.log_format)
    app = create_app(settings)
    app.router.routes.append(Route("/bench/users", baseline_users, methods=["GET"]))
    app.router.routes.append(Route("/bench/invite", baseline_invite, methods=["POST"]))
    app.router.routes.append(Route(PEER_PATH, peer_app(), methods=["POST"]))
    return app


def main() -> None:
    import uvicorn  # noqa: PLC0415

    parser = argparse.ArgumentParser(prog="python -m tests.benchmarks.server")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    # The options of `licenses serve` (api/cli.py), plus a quiet log.
    uvicorn.run(
        build_app(),
        host=args.host,
        port=args.port,
        log_config=None,
        log_level="warning",
        proxy_headers=True,
        server_header=False,
        timeout_graceful_shutdown=30,
    )


if __name__ == "__main__":
    main()
