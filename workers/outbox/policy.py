"""The delivery policy (lease, redelivery, retry backoff), tuned from the settings."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from domain import config
from domain.settings import Settings

_LEASE_MARGIN_CAP = timedelta(seconds=10)


@dataclass(frozen=True)
class DeliveryPolicy:
    """How long a claim lasts, when the relay hands a row over again, and how
    retries are spaced.

    `lease` covers a send that STARTED: the row is claimable again once it
    has passed, which is how a message whose sender was killed gets sent.
    The send itself is cut at `send_budget`, shortly before the lease ends.

    `redeliver_after` covers a message that never started: handed to the
    broker, then lost (fetched by a worker that was killed before running
    it, dropped by a Redis restart). Nothing in the database tells such a
    message from one still waiting in the queue, so the relay hands the row
    over again once it has stayed unclaimed that long. A copy that arrives
    later finds the row claimed or sent and does nothing; during a backlog
    each waiting row gets at most one extra message per relay run.
    """

    lease: timedelta = timedelta(minutes=2)
    # Half the default scheduler interval (see from_settings).
    redeliver_after: timedelta = timedelta(seconds=30)
    retry_base: timedelta = timedelta(seconds=15)
    retry_cap: timedelta = timedelta(hours=1)
    # 15 s, 30 s, ... 1 h, then hourly: 20 attempts span about 13 hours.
    max_attempts: int = 20
    # Webhooks: the delays between attempts (attempts = delays + 1), and how
    # long an endpoint may fail before it is disabled.
    webhook_schedule: tuple[timedelta, ...] = field(
        default=tuple(timedelta(seconds=n) for n in config.DEFAULT_WEBHOOK_RETRY_SCHEDULE)
    )
    webhook_disable_after: timedelta = timedelta(days=3)

    def __post_init__(self) -> None:
        if (
            self.lease <= timedelta(0)
            or self.retry_base <= timedelta(0)
            or self.redeliver_after <= timedelta(0)
        ):
            raise ValueError("lease, redeliver_after and retry_base must be positive")
        if self.retry_cap < self.retry_base:
            raise ValueError("retry_cap must be at least retry_base")
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")

    @property
    def send_budget(self) -> timedelta:
        """How long a claimed delivery may take before its send is cut.

        The margin under the lease absorbs clock differences between the
        hosts that compare `available_at` with their own time.
        """
        return self.lease - min(self.lease / 4, _LEASE_MARGIN_CAP)

    def backoff(self, attempts: int) -> timedelta:
        """Delay before attempt `attempts + 1`: base x 2^(attempts - 1), capped."""
        exponent = min(max(attempts - 1, 0), 32)
        return min(self.retry_base * (1 << exponent), self.retry_cap)

    def webhook_retry_at(self, attempts: int) -> timedelta | None:
        """Delay before webhook attempt `attempts + 1`; None: no attempt left."""
        if attempts < 1 or attempts > len(self.webhook_schedule):
            return None
        return self.webhook_schedule[attempts - 1]

    @classmethod
    def from_settings(cls, settings: Settings) -> DeliveryPolicy:
        return cls(
            lease=timedelta(seconds=settings.outbox_lease_seconds),
            # The relay runs every scheduler interval: with half of one, the
            # next run after a loss hands the row over again, even when the
            # runs come a little early.
            redeliver_after=timedelta(seconds=settings.scheduler_interval_seconds) / 2,
            retry_base=timedelta(seconds=settings.outbox_retry_base_seconds),
            retry_cap=timedelta(
                seconds=max(settings.outbox_retry_max_seconds, settings.outbox_retry_base_seconds)
            ),
            max_attempts=settings.outbox_max_attempts,
            webhook_schedule=tuple(timedelta(seconds=n) for n in settings.webhook_retry_schedule),
        )


DEFAULT_POLICY = DeliveryPolicy()
