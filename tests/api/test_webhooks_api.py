"""The webhook fields and mutations over HTTP: who may use them, what they
return, and that the log shows every delivery."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from domain import config
from domain.clock import SYSTEM_CLOCK, FixedClock
from domain.enums import WebhookDeliveryStatus
from domain.models import AuditEvent, IdempotencyRecord, WebhookDelivery, WebhookEndpoint
from domain.webhooks import new_event_id
from tests.support.http_client import gql, payload_of
from tests.support.principals import Principals

pytestmark = pytest.mark.anyio

CREATE = """
mutation Create($input: CreateWebhookEndpointInput!) {
  createWebhookEndpoint(input: $input) {
    endpoint { id url eventTypes enabled disabledReason description }
    secret
    errors { code field }
  }
}
"""
ENDPOINTS = """
query Endpoints {
  account { webhookEndpoints {
    id url enabled
    deliveries(first: 5) {
      totalCount
      edges { node { id eventId eventType status attempts lastResponseStatus } }
    }
  } }
}
"""
UPDATE = """
mutation Update($id: ID!, $input: UpdateWebhookEndpointInput!) {
  updateWebhookEndpoint(id: $id, input: $input) {
    endpoint { id enabled disabledReason eventTypes description }
    errors { code }
  }
}
"""
ROTATE = "mutation Rotate($id: ID!) { rotateWebhookSecret(id: $id) { secret errors { code } } }"
DELETE = """
mutation Delete($id: ID!) { deleteWebhookEndpoint(id: $id) { endpoint { id } errors { code } } }
"""
REDELIVER = """
mutation Redeliver($id: ID!) {
  redeliverWebhook(deliveryId: $id) { delivery { id eventId status } errors { code } }
}
"""
INVITE = """
mutation { inviteUser(input: {email: "new@example.com", firstName: "N", lastName: "U"}) {
  errors { code } } }
"""


@pytest.fixture
def domain_config(domain_config: config.DomainConfig) -> config.DomainConfig:
    """Development's URL rules (http, loopback), kept by the app the tests build."""
    return config.configure_with(webhook_development=True)


async def create(client: Any, token: str | None, **input: Any) -> dict[str, Any]:
    body = await gql(client, CREATE, token=token, variables={"input": input})
    return payload_of(body, "createWebhookEndpoint")


async def test_given_an_admin_when_creating_an_endpoint_then_the_secret_is_shown_once_and_stored_encrypted(  # noqa: E501
    client: Any, principals: Principals
):
    made = await create(
        client,
        principals.admin_token,
        url="http://127.0.0.1:9/hooks",
        eventTypes=["USER_INVITED", "SEATS_INCREASED"],
        description=" CRM sync ",
    )

    assert made["errors"] == []
    assert made["secret"].startswith("whsec_")
    assert made["endpoint"] == {
        "id": made["endpoint"]["id"],
        "url": "http://127.0.0.1:9/hooks",
        "eventTypes": ["USER_INVITED", "SEATS_INCREASED"],
        "enabled": True,
        "disabledReason": None,
        "description": "CRM sync",
    }
    row = await WebhookEndpoint.get(id=int(made["endpoint"]["id"]))
    secret_body = made["secret"].removeprefix("whsec_")
    assert secret_body not in row.secret_encrypted
    audit = await AuditEvent.filter(action="WEBHOOK_ENDPOINT_CREATED").get()
    assert made["secret"] not in str(audit.data)
    listed = await gql(client, ENDPOINTS, token=principals.admin_token)
    (endpoint,) = listed["data"]["account"]["webhookEndpoints"]
    assert "secret" not in endpoint


async def test_given_a_member_when_using_webhooks_then_forbidden(
    client: Any, principals: Principals
):
    made = await create(client, principals.member_token, url="http://127.0.0.1:9/hooks")
    listed = await gql(client, ENDPOINTS, token=principals.member_token)

    assert made["errors"] == [{"code": "FORBIDDEN", "field": None}]
    assert listed["data"]["account"]["webhookEndpoints"] is None
    assert [e["extensions"]["code"] for e in listed["errors"]] == ["FORBIDDEN"]
    assert await WebhookEndpoint.all().count() == 0


async def test_given_another_accounts_endpoint_when_changing_it_then_not_found(
    client: Any, principals: Principals
):
    made = await create(client, principals.admin_token, url="http://127.0.0.1:9/hooks")
    endpoint_id = made["endpoint"]["id"]
    other = principals.other_admin_token

    update = await gql(
        client, UPDATE, token=other, variables={"id": endpoint_id, "input": {"enabled": False}}
    )
    rotate = await gql(client, ROTATE, token=other, variables={"id": endpoint_id})
    delete = await gql(client, DELETE, token=other, variables={"id": endpoint_id})

    for body, field in (
        (update, "updateWebhookEndpoint"),
        (rotate, "rotateWebhookSecret"),
        (delete, "deleteWebhookEndpoint"),
    ):
        assert payload_of(body, field)["errors"] == [{"code": "NOT_FOUND"}]
    assert (await WebhookEndpoint.get(id=int(endpoint_id))).enabled is True


async def test_given_production_rules_when_creating_an_http_or_private_endpoint_then_invalid_input(
    client: Any, principals: Principals
):
    config.configure_with(webhook_development=False)

    http = await create(client, principals.admin_token, url="http://hooks.example.com/x")
    private = await create(client, principals.admin_token, url="https://10.0.0.8/x")
    metadata = await create(client, principals.admin_token, url="https://169.254.169.254/x")
    fine = await create(client, principals.admin_token, url="https://hooks.example.com/x")

    for made in (http, private, metadata):
        assert made["errors"] == [{"code": "INVALID_INPUT", "field": "url"}]
    assert fine["errors"] == []


async def test_given_an_endpoint_when_an_event_happens_then_the_log_lists_it_and_an_admin_can_redeliver_disable_and_delete(  # noqa: E501
    client: Any, principals: Principals
):
    made = await create(client, principals.admin_token, url="http://127.0.0.1:9/hooks")
    endpoint_id = made["endpoint"]["id"]
    invited = await gql(client, INVITE, token=principals.admin_token)
    assert payload_of(invited, "inviteUser")["errors"] == []

    listed = await gql(client, ENDPOINTS, token=principals.admin_token)
    (endpoint,) = listed["data"]["account"]["webhookEndpoints"]
    deliveries = endpoint["deliveries"]
    (edge,) = deliveries["edges"]
    delivery = edge["node"]
    redelivered = await gql(
        client, REDELIVER, token=principals.admin_token, variables={"id": delivery["id"]}
    )
    foreign = await gql(
        client, REDELIVER, token=principals.other_admin_token, variables={"id": delivery["id"]}
    )
    disabled = await gql(
        client,
        UPDATE,
        token=principals.admin_token,
        variables={"id": endpoint_id, "input": {"enabled": False}},
    )
    deleted = await gql(client, DELETE, token=principals.admin_token, variables={"id": endpoint_id})
    after = await gql(client, ENDPOINTS, token=principals.admin_token)

    assert deliveries["totalCount"] == 1
    assert delivery["eventType"] == "USER_INVITED"
    assert (delivery["status"], delivery["attempts"], delivery["lastResponseStatus"]) == (
        "PENDING",
        0,
        None,
    )
    assert delivery["eventId"].startswith("msg_") and len(delivery["eventId"]) == len(
        new_event_id()
    )
    again = payload_of(redelivered, "redeliverWebhook")["delivery"]
    assert again["eventId"] == delivery["eventId"] and again["id"] != delivery["id"]
    assert payload_of(foreign, "redeliverWebhook")["errors"] == [{"code": "NOT_FOUND"}]
    assert payload_of(disabled, "updateWebhookEndpoint")["endpoint"]["disabledReason"] == (
        "Disabled by an administrator."
    )
    assert payload_of(deleted, "deleteWebhookEndpoint")["errors"] == []
    assert after["data"]["account"]["webhookEndpoints"] == []
    actions = await AuditEvent.filter(action__startswith="WEBHOOK").order_by("id")
    assert [a.action for a in actions] == [
        "WEBHOOK_ENDPOINT_CREATED",
        "WEBHOOK_ENDPOINT_UPDATED",
        "WEBHOOK_ENDPOINT_DELETED",
    ]


async def test_given_pending_and_succeeded_deliveries_when_scraped_then_metrics_show_them_by_outcome_and_the_oldest_age(  # noqa: E501
    client: Any, principals: Principals, clock: FixedClock
):
    await create(client, principals.admin_token, url="http://127.0.0.1:9/hooks")
    await gql(client, INVITE, token=principals.admin_token)
    first = await WebhookDelivery.get()
    await WebhookDelivery.filter(id=first.id).update(status=WebhookDeliveryStatus.SUCCEEDED)
    clock.advance(timedelta(minutes=5))
    await gql(client, INVITE.replace("new@", "newer@"), token=principals.admin_token)
    pending = await WebhookDelivery.get(status=WebhookDeliveryStatus.PENDING)
    # The scrape measures against the real time.
    before = (SYSTEM_CLOCK.now() - pending.created_at).total_seconds()

    response = await client.get("/metrics")

    after = (SYSTEM_CLOCK.now() - pending.created_at).total_seconds()

    samples: dict[tuple[str, str | None], float] = {
        (sample.name, sample.labels.get("status")): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
        if sample.name.startswith("licenses_webhook")
    }
    age = samples.pop(("licenses_webhook_oldest_pending_age_seconds", None))
    assert samples == {
        ("licenses_webhook_deliveries", "PENDING"): 1,
        ("licenses_webhook_deliveries", "SUCCEEDED"): 1,
        ("licenses_webhook_deliveries", "FAILED"): 0,
    }
    assert before <= age <= after


async def test_given_a_replayed_create_when_answered_again_then_the_secret_is_null_and_stored_nowhere(  # noqa: E501
    client: Any, principals: Principals
):
    variables = {"input": {"url": "http://127.0.0.1:9/hooks"}}
    headers = {"Idempotency-Key": "create-hook-1"}

    first = await gql(
        client, CREATE, token=principals.admin_token, variables=variables, headers=headers
    )
    replay = await gql(
        client, CREATE, token=principals.admin_token, variables=variables, headers=headers
    )

    secret = payload_of(first, "createWebhookEndpoint")["secret"]
    assert secret.startswith("whsec_")
    replayed = payload_of(replay, "createWebhookEndpoint")
    assert replayed["secret"] is None
    assert replayed["endpoint"] == payload_of(first, "createWebhookEndpoint")["endpoint"]
    assert await WebhookEndpoint.all().count() == 1
    stored = await IdempotencyRecord.get()
    assert stored.response_body is not None and secret not in stored.response_body
