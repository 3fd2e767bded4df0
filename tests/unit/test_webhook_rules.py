"""Where webhooks may go, the wire names of the event types, and the stored
form of the secrets."""

from __future__ import annotations

import ipaddress

import pytest
from cryptography.exceptions import InvalidTag

from domain import config
from domain.enums import WebhookEventType
from domain.rules.webhooks import address_refused, url_problem
from domain.webhook_secrets import decrypt_secret, encrypt_secret, new_webhook_secret


@pytest.mark.parametrize(
    ("address", "refused"),
    [
        ("127.0.0.1", True),
        ("::1", True),
        ("10.1.2.3", True),
        ("172.16.0.1", True),
        ("192.168.1.1", True),
        ("169.254.169.254", True),
        ("fd00:ec2::254", True),
        ("fe80::1", True),
        ("100.64.0.1", True),
        ("0.0.0.0", True),
        ("224.0.0.1", True),
        ("::ffff:127.0.0.1", True),
        ("93.184.215.14", False),
        ("2606:4700::6810:85e5", False),
    ],
)
def test_addresses_refused_in_production(address: str, refused: bool):
    assert address_refused(ipaddress.ip_address(address)) is refused


@pytest.mark.parametrize(
    ("url", "development", "problem"),
    [
        ("https://hooks.example.com/x", False, None),
        ("http://hooks.example.com/x", False, "The URL must use https."),
        ("http://127.0.0.1:8080/x", True, None),
        (
            "https://127.0.0.1/x",
            False,
            "The URL points to a loopback, private or link-local address.",
        ),
        ("https://[::1]/x", False, "The URL points to a loopback, private or link-local address."),
        ("ftp://hooks.example.com/x", True, "The URL must use http(s)."),
        ("https://user:pw@hooks.example.com/x", False, "The URL must not carry credentials."),
        ("https:///x", False, "The URL has no host."),
        ("https://hooks.example.com:99999/x", False, "The URL is not valid."),
        (
            "https://hooks.example.com/" + "x" * 2000,
            False,
            "The URL is longer than 2000 characters.",
        ),
    ],
)
def test_endpoint_urls(url: str, development: bool, problem: str | None):
    assert url_problem(url, development=development) == problem


def test_wire_types_are_lower_case_with_the_first_underscore_a_dot():
    assert WebhookEventType.USER_INVITED.wire_type == "user.invited"
    assert WebhookEventType.SEATS_REDUCTION_SCHEDULED.wire_type == "seats.reduction_scheduled"
    assert len({t.wire_type for t in WebhookEventType}) == len(WebhookEventType)


def test_a_stored_secret_opens_only_with_the_same_key_and_endpoint(
    domain_config: config.DomainConfig,
):
    secret = new_webhook_secret()
    stored = encrypt_secret(secret, endpoint_id=7)

    assert secret.startswith("whsec_") and secret.removeprefix("whsec_") not in stored
    assert decrypt_secret(stored, endpoint_id=7) == secret
    with pytest.raises(InvalidTag):
        decrypt_secret(stored, endpoint_id=8)
    config.configure_with(secret_key=b"another key of at least thirty-two bytes")
    with pytest.raises(InvalidTag):
        decrypt_secret(stored, endpoint_id=7)
