"""The few settings the rules depend on, configured once per process."""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from datetime import timedelta

AGREEMENT_VERSION = "2026-11-01"
AGREEMENT_TEXT = (
    "Licence agreement, version 2026-11-01.\n\n"
    "1. Each licence lets one named person use the product during the billing period.\n"
    "2. Added licences are charged now, prorated to the second for what remains of the "
    "current period, and renew with the account at the next period start.\n"
    "3. A reduction takes effect at the end of the current period; licences stay "
    "available until then and nothing is refunded.\n"
    "4. Prices are per licence and per billing period, in the account's currency.\n"
)


@dataclass(frozen=True)
class DomainConfig:
    # Invitation tokens are derived from this key (HMAC), so it must be the
    # same on every process and must not change while invitations are pending.
    secret_key: bytes
    public_url: str = "http://127.0.0.1:8000"
    invitation_ttl: timedelta = timedelta(days=7)
    session_ttl: timedelta = timedelta(days=14)
    proration_max_age: timedelta = timedelta(minutes=10)
    lookback_rate_limit: timedelta = timedelta(minutes=15)
    failed_logins_allowed: int = 10
    last_active_resolution: timedelta = timedelta(minutes=1)
    idempotency_ttl: timedelta = timedelta(hours=24)


_config = DomainConfig(secret_key=os.urandom(32))


def configure(config: DomainConfig) -> None:
    global _config  # noqa: PLW0603 - set once at process start
    _config = config


def configure_with(**changes: object) -> DomainConfig:
    configure(replace(_config, **changes))  # type: ignore[arg-type]
    return _config


def current() -> DomainConfig:
    return _config
