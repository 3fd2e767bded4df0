"""`licenses account create` applies the domain's seat-price cap (SPEC section 7)."""

import json

import pytest

from domain.rules.money import SEAT_PRICE_MAX_CENTS
from tests.support.cli import run_cli


def create(tmp_path, price: int):
    env = {
        "DATABASE_URL": f"sqlite://{tmp_path / 'cli.db'}",
        "MAIL_URL": f"maildir://{tmp_path / 'mail'}",
        "SECRET_KEY": "k" * 40,
    }
    return run_cli(
        "account",
        "create",
        "--name",
        "Acme",
        "--owner-email",
        f"o{price}@acme.example",
        "--owner-first-name",
        "Olive",
        "--owner-last-name",
        "Owner",
        "--seats",
        "100000",
        "--seat-price-cents",
        str(price),
        "--json",
        env=env,
        cwd=tmp_path,
    )


@pytest.mark.slow
def test_given_the_cap_and_the_cap_plus_one_when_accounts_are_created_then_only_the_cap_is_accepted(
    tmp_path,
):
    accepted = create(tmp_path, SEAT_PRICE_MAX_CENTS)
    refused = create(tmp_path, SEAT_PRICE_MAX_CENTS + 1)

    assert accepted.returncode == 0, accepted.stderr
    assert set(json.loads(accepted.stdout)) == {"accountId", "ownerUserId", "apiToken"}
    assert refused.returncode == 1
    assert "INVALID_INPUT (seatPriceCents)" in refused.stderr
    assert str(SEAT_PRICE_MAX_CENTS) in refused.stderr
    assert refused.stdout == ""
