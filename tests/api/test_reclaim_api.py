"""The reclaim policy over GraphQL: reading it, setting it, its preview, who may."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from domain.models import AuditEvent, User
from tests.support.http_client import gql, payload_of, top_codes
from tests.support.principals import Principals

pytestmark = pytest.mark.anyio

SET = """
mutation Set($input: ReclaimPolicyInput!) {
  setReclaimPolicy(input: $input) {
    policy { enabled inactiveDays noticeDays exemptAdmins exemptUsers { id email } }
    errors { code field }
  }
}
"""
READ = """
query Read($first: Int, $after: String) {
  account {
    reclaimPolicy { enabled inactiveDays noticeDays exemptAdmins exemptUsers { id } }
    reclaimPreview(first: $first, after: $after) {
      totalCount
      pageInfo { hasNextPage endCursor }
      edges { cursor node { user { id email } inactiveSince releaseAt noticeSentAt } }
    }
  }
}
"""


def policy(**changes: Any) -> dict[str, Any]:
    return {
        "enabled": True,
        "inactiveDays": 30,
        "noticeDays": 7,
        "exemptAdmins": True,
        "exemptUserIds": [],
    } | changes


async def test_given_no_policy_when_read_then_the_defaults_are_shown_disabled(
    client: Any, principals: Principals
):
    body = await gql(client, READ, token=principals.admin_token, variables={"first": 10})

    assert body["data"]["account"]["reclaimPolicy"] == {
        "enabled": False,
        "inactiveDays": 90,
        "noticeDays": 7,
        "exemptAdmins": True,
        "exemptUsers": [],
    }


async def test_given_an_admin_when_setting_the_policy_then_it_is_stored_audited_and_read_back(
    client: Any, principals: Principals
):
    member = str(principals.member_id)

    made = payload_of(
        await gql(
            client,
            SET,
            token=principals.admin_token,
            variables={"input": policy(exemptUserIds=[member])},
        ),
        "setReclaimPolicy",
    )
    read = await gql(client, READ, token=principals.api_token, variables={"first": 10})

    assert made["errors"] == []
    assert made["policy"]["exemptUsers"] == [{"id": member, "email": "mia@example.com"}]
    assert read["data"]["account"]["reclaimPolicy"]["exemptUsers"] == [{"id": member}]
    assert await AuditEvent.filter(action="RECLAIM_POLICY_CHANGED").count() == 1


async def test_given_bad_terms_when_setting_the_policy_then_a_payload_error_names_the_field(
    client: Any, principals: Principals
):
    body = await gql(
        client, SET, token=principals.admin_token, variables={"input": policy(inactiveDays=7)}
    )

    assert payload_of(body, "setReclaimPolicy") == {
        "policy": None,
        "errors": [{"code": "INVALID_INPUT", "field": "inactiveDays"}],
    }


async def test_given_a_member_when_using_the_policy_then_forbidden(
    client: Any, principals: Principals
):
    made = await gql(client, SET, token=principals.member_token, variables={"input": policy()})
    read = await gql(client, READ, token=principals.member_token, variables={"first": 10})

    assert payload_of(made, "setReclaimPolicy")["errors"] == [{"code": "FORBIDDEN", "field": None}]
    assert read["data"]["account"]["reclaimPolicy"] is None
    assert read["data"]["account"]["reclaimPreview"] is None
    assert set(top_codes(read)) == {"FORBIDDEN"}


async def test_given_covered_users_when_previewing_then_pages_come_soonest_first(
    client: Any, principals: Principals, clock
):
    # Admins are exempt by default: the preview covers the member only, until
    # admins are included; the owner never.
    await gql(
        client,
        SET,
        token=principals.admin_token,
        variables={"input": policy(exemptAdmins=False, noticeDays=0)},
    )
    await User.filter(id=principals.admin_id).update(last_active_at=clock.now() - timedelta(days=3))
    await User.filter(id=principals.member_id).update(last_active_at=clock.now())

    first = await gql(client, READ, token=principals.owner_token, variables={"first": 1})
    page = first["data"]["account"]["reclaimPreview"]
    rest = await gql(
        client,
        READ,
        token=principals.owner_token,
        variables={"first": 1, "after": page["pageInfo"]["endCursor"]},
    )
    later = rest["data"]["account"]["reclaimPreview"]

    assert page["totalCount"] == 2
    assert [e["node"]["user"]["email"] for e in page["edges"] + later["edges"]] == [
        "adam@example.com",
        "mia@example.com",
    ]
    assert page["pageInfo"]["hasNextPage"] is True
    assert later["pageInfo"]["hasNextPage"] is False
    node = page["edges"][0]["node"]
    assert node["noticeSentAt"] is None
    assert node["releaseAt"] > node["inactiveSince"]
