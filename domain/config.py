"""The few settings the rules depend on, configured once per process.

There is no default configuration: a process that never called `configure`
fails on first use instead of deriving invitation tokens from a key of its
own that no other process shares. The process's Settings (environment) are
the one source of these values; `domain.settings.configure_domain` hands
them over.
"""

from __future__ import annotations

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


DEFAULT_INVITATION_TTL = timedelta(days=7)
DEFAULT_SESSION_TTL = timedelta(days=14)
DEFAULT_RENEWAL_NOTICE_DAYS = 3


class NotConfigured(RuntimeError):
    pass


# Seconds between a webhook's attempts: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h,
# 14 h, 20 h, 20 h; ten attempts over about three days (SPEC section 10).
DEFAULT_WEBHOOK_RETRY_SCHEDULE = (5, 300, 1800, 7200, 18000, 36000, 50400, 72000, 72000)


@dataclass(frozen=True)
class DomainConfig:
    # Invitation tokens are derived from this key (HMAC), so it must be the
    # same on every process and must not change while invitations are pending.
    secret_key: bytes
    invitation_ttl: timedelta = DEFAULT_INVITATION_TTL
    session_ttl: timedelta = DEFAULT_SESSION_TTL
    proration_max_age: timedelta = timedelta(minutes=10)
    lookback_rate_limit: timedelta = timedelta(minutes=15)
    failed_logins_allowed: int = 10
    last_active_resolution: timedelta = timedelta(minutes=1)
    # Development: webhook URLs may use http and reach loopback receivers.
    webhook_development: bool = False
    # Days before a period end at which the owner hears of the renewal; 0: never.
    renewal_notice_days: int = DEFAULT_RENEWAL_NOTICE_DAYS


_config: DomainConfig | None = None


def configure(config: DomainConfig | None) -> None:
    """Set at process start (None: back to unconfigured, for tests)."""
    global _config  # noqa: PLW0603 - set once at process start
    _config = config


def configure_with(**changes: object) -> DomainConfig:
    configure(replace(current(), **changes))  # type: ignore[arg-type]
    return current()


def configured() -> DomainConfig | None:
    return _config


def current() -> DomainConfig:
    if _config is None:
        raise NotConfigured(
            "the domain is not configured: the process must call "
            "domain.settings.configure_domain(settings) at start"
        )
    return _config
