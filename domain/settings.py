"""The process's settings (database, broker, mail, secrets, jobs, logs), read once
from the environment. The HTTP server's own settings are in api/settings.py.

A bad value stops start-up with a SettingsError naming the variable, so an
operator sees one clear line instead of a traceback.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

from domain import config

ENVIRONMENTS = ("development", "production")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
LOG_FORMATS = ("text", "json")


class SettingsError(ValueError):
    def __init__(self, variable: str, problem: str) -> None:
        super().__init__(f"{variable}: {problem}")
        self.variable = variable


@dataclass(frozen=True)
class Setting:
    name: str
    default: str | None
    meaning: str


def _hours(ttl: timedelta) -> str:
    return str(int(ttl.total_seconds()) // 3600)


# The README's configuration table is generated from this list and a test
# keeps the two in step.
SETTINGS: tuple[Setting, ...] = (
    Setting("ENVIRONMENT", "development", "`development` or `production`."),
    Setting(
        "DATABASE_URL",
        "sqlite://var/licenses.db",
        "Tortoise URL: `sqlite:///abs/path.db`, `sqlite://rel/path.db` or "
        "`postgres://user:pass@host:port/db` (`?minsize=&maxsize=` size the pool).",
    ),
    Setting(
        "REDIS_URL",
        None,
        "Dramatiq broker, e.g. `redis://127.0.0.1:6379/0`. Unset: embedded mode, "
        "jobs run on the server's own event loop.",
    ),
    Setting(
        "MAIL_URL",
        "maildir://var/mail",
        "`smtp://user:pass@host:port` (STARTTLS when offered, `?starttls=required` "
        "to insist), `smtps://…` (implicit TLS) or `maildir://path`.",
    ),
    Setting("MAIL_FROM", "Licenses & Users <no-reply@localhost>", "Sender of every email."),
    Setting(
        "PUBLIC_URL",
        "http://127.0.0.1:8000",
        "Base of the links in emails (`{PUBLIC_URL}/accept-invitation?token=…`).",
    ),
    Setting(
        "SECRET_KEY",
        None,
        "At least 32 characters; invitation tokens are derived from it, so every process "
        "must share it. Required in production; in development one is generated once "
        "into `var/secret_key`.",
    ),
    Setting(
        "INVITATION_TTL_HOURS",
        _hours(config.DEFAULT_INVITATION_TTL),
        "Lifetime of an invitation link (default 7 days).",
    ),
    Setting(
        "SESSION_TTL_HOURS",
        _hours(config.DEFAULT_SESSION_TTL),
        "Lifetime of a session token (default 14 days).",
    ),
    Setting("LOG_LEVEL", "INFO", "DEBUG, INFO, WARNING or ERROR."),
    Setting(
        "LOG_FORMAT",
        None,
        "`text` (readable lines) or `json` (one object per line). Default: text in "
        "development, json in production.",
    ),
    Setting(
        "SCHEDULER_INTERVAL_SECONDS",
        "60",
        "How often periodic jobs (outbox relay, invitation expiry, period end, renewal "
        "notices, reclaim policy) are enqueued.",
    ),
    Setting(
        "EMBEDDED_RELAY_SECONDS",
        "2",
        "Embedded mode: how often the server looks for undelivered outbox rows.",
    ),
    Setting(
        "OUTBOX_LEASE_SECONDS",
        "120",
        "How long a worker owns an email it is sending before another may retry it.",
    ),
    Setting(
        "OUTBOX_RETRY_BASE_SECONDS",
        "15",
        "First retry delay of a failed email; doubles on each attempt.",
    ),
    Setting("OUTBOX_RETRY_MAX_SECONDS", "3600", "Longest delay between two delivery attempts."),
    Setting(
        "OUTBOX_MAX_ATTEMPTS",
        "20",
        "Delivery attempts before an email is marked failed (about 13 hours with the defaults).",
    ),
    Setting(
        "WEBHOOK_RETRY_SCHEDULE",
        ",".join(str(n) for n in config.DEFAULT_WEBHOOK_RETRY_SCHEDULE),
        "Seconds between a webhook's attempts (about three days in all); shorten it for "
        "tests and demos, e.g. `1,1,1`.",
    ),
    Setting(
        "RENEWAL_NOTICE_DAYS",
        str(config.DEFAULT_RENEWAL_NOTICE_DAYS),
        "Days before a period ends at which the owner is emailed the coming renewal "
        "(seats, amount, a scheduled reduction and whom it releases); `0` sends none.",
    ),
    Setting(
        "DEMO_ACCOUNT",
        None,
        "Create a demo account on first start. Default: on in embedded development mode.",
    ),
)


def env_value(env: Mapping[str, str], name: str) -> str | None:
    """The variable's value; unset and empty are the same."""
    value = env.get(name)
    return value if value not in (None, "") else None


def parse_bool(name: str, raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise SettingsError(name, f"expected true or false, got {raw!r}")


def parse_schedule(name: str, raw: str | None) -> tuple[int, ...]:
    if not raw:
        return config.DEFAULT_WEBHOOK_RETRY_SCHEDULE
    schedule = tuple(
        parse_positive_int(name, part.strip(), maximum=604800) for part in raw.split(",")
    )
    if len(schedule) > 50:
        raise SettingsError(name, "at most 50 delays")
    return schedule


def parse_positive_int(name: str, raw: str, *, maximum: int = 10**9) -> int:
    return parse_count(name, raw, minimum=1, maximum=maximum)


def parse_count(name: str, raw: str, *, minimum: int = 0, maximum: int = 10**9) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(name, f"expected a whole number, got {raw!r}") from None
    if not minimum <= value <= maximum:
        raise SettingsError(name, f"expected {minimum}..{maximum}, got {value}")
    return value


def _redacted(url: str) -> str:
    """The URL as it may appear in a message: any password replaced by ***."""
    parts = urlsplit(url)
    if parts.password is None:
        return repr(url)
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return repr(parts._replace(netloc=netloc).geturl())


def _check_database_url(raw: str) -> str:
    scheme = raw.split("://", 1)[0] if "://" in raw else ""
    if scheme not in ("sqlite", "postgres"):
        raise SettingsError(
            "DATABASE_URL",
            f"expected sqlite://path or postgres://user:pass@host:port/db, got {_redacted(raw)}",
        )
    if scheme == "sqlite" and not raw.split("://", 1)[1].split("?", 1)[0]:
        raise SettingsError("DATABASE_URL", "the SQLite URL names no file")
    if scheme == "postgres":
        parts = urlsplit(raw)
        if not parts.hostname or not parts.path.strip("/"):
            raise SettingsError("DATABASE_URL", "the PostgreSQL URL needs a host and a database")
    return raw


def _check_mail_url(raw: str) -> str:
    parts = urlsplit(raw)
    if parts.scheme in ("smtp", "smtps"):
        if not parts.hostname:
            raise SettingsError("MAIL_URL", "the SMTP URL needs a host")
        try:
            _ = parts.port
        except ValueError:
            raise SettingsError("MAIL_URL", "the SMTP URL has a bad port") from None
        return raw
    if parts.scheme == "maildir" and (parts.netloc or parts.path):
        return raw
    raise SettingsError(
        "MAIL_URL", f"expected smtp://, smtps:// or maildir://path, got {_redacted(raw)}"
    )


def _check_redis_url(raw: str) -> str:
    parts = urlsplit(raw)
    if parts.scheme not in ("redis", "rediss", "unix") or not (parts.hostname or parts.path):
        raise SettingsError("REDIS_URL", f"expected redis://host:port/db, got {_redacted(raw)}")
    return raw


def _check_public_url(raw: str) -> str:
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SettingsError("PUBLIC_URL", f"expected an http(s) URL, got {raw!r}")
    return raw.rstrip("/")


@dataclass(frozen=True)
class Settings:
    environment: str = "development"
    database_url: str = "sqlite://var/licenses.db"
    redis_url: str | None = None
    mail_url: str = "maildir://var/mail"
    mail_from: str = "Licenses & Users <no-reply@localhost>"
    public_url: str = "http://127.0.0.1:8000"
    # False when PUBLIC_URL was not given: `licenses serve` then derives it from
    # the address it listens on, so links and the start banner name that port.
    public_url_configured: bool = False
    invitation_ttl: timedelta = config.DEFAULT_INVITATION_TTL
    session_ttl: timedelta = config.DEFAULT_SESSION_TTL
    log_level: str = "INFO"
    log_format: str = "text"
    scheduler_interval_seconds: int = 60
    embedded_relay_seconds: int = 2
    demo_account: bool = True
    secret_key: str | None = None
    outbox_lease_seconds: int = 120
    outbox_retry_base_seconds: int = 15
    outbox_retry_max_seconds: int = 3600
    outbox_max_attempts: int = 20
    webhook_retry_schedule: tuple[int, ...] = config.DEFAULT_WEBHOOK_RETRY_SCHEDULE
    renewal_notice_days: int = config.DEFAULT_RENEWAL_NOTICE_DAYS
    extra: Mapping[str, str] = field(default_factory=dict)

    @property
    def production(self) -> bool:
        return self.environment == "production"

    @property
    def embedded(self) -> bool:
        """No broker configured: the server runs the jobs on its own event loop."""
        return self.redis_url is None

    @property
    def sqlite_path(self) -> Path | None:
        if not self.database_url.startswith("sqlite://"):
            return None
        return Path(self.database_url.removeprefix("sqlite://").split("?", 1)[0])

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ

        def get(name: str) -> str | None:
            return env_value(env, name)

        environment = (get("ENVIRONMENT") or "development").lower()
        if environment not in ENVIRONMENTS:
            raise SettingsError(
                "ENVIRONMENT", f"expected development or production, got {environment!r}"
            )
        production = environment == "production"

        log_level = (get("LOG_LEVEL") or "INFO").upper()
        if log_level not in LOG_LEVELS:
            raise SettingsError("LOG_LEVEL", f"expected one of {', '.join(LOG_LEVELS)}")
        log_format = (get("LOG_FORMAT") or ("json" if production else "text")).lower()
        if log_format not in LOG_FORMATS:
            raise SettingsError("LOG_FORMAT", "expected text or json")

        redis_raw = get("REDIS_URL")
        demo_raw = get("DEMO_ACCOUNT")
        secret_key = get("SECRET_KEY")
        if secret_key is not None and len(secret_key) < 32:
            raise SettingsError("SECRET_KEY", "must be at least 32 characters")
        if secret_key is None and production:
            raise SettingsError("SECRET_KEY", "is required in production")
        return cls(
            environment=environment,
            database_url=_check_database_url(get("DATABASE_URL") or "sqlite://var/licenses.db"),
            redis_url=_check_redis_url(redis_raw) if redis_raw else None,
            mail_url=_check_mail_url(get("MAIL_URL") or "maildir://var/mail"),
            mail_from=get("MAIL_FROM") or "Licenses & Users <no-reply@localhost>",
            public_url=_check_public_url(get("PUBLIC_URL") or "http://127.0.0.1:8000"),
            public_url_configured=get("PUBLIC_URL") is not None,
            invitation_ttl=timedelta(
                hours=parse_positive_int(
                    "INVITATION_TTL_HOURS",
                    get("INVITATION_TTL_HOURS") or _hours(config.DEFAULT_INVITATION_TTL),
                    maximum=24 * 365,
                )
            ),
            session_ttl=timedelta(
                hours=parse_positive_int(
                    "SESSION_TTL_HOURS",
                    get("SESSION_TTL_HOURS") or _hours(config.DEFAULT_SESSION_TTL),
                    maximum=24 * 365,
                )
            ),
            log_level=log_level,
            log_format=log_format,
            scheduler_interval_seconds=parse_positive_int(
                "SCHEDULER_INTERVAL_SECONDS",
                get("SCHEDULER_INTERVAL_SECONDS") or "60",
                maximum=3600,
            ),
            embedded_relay_seconds=parse_positive_int(
                "EMBEDDED_RELAY_SECONDS", get("EMBEDDED_RELAY_SECONDS") or "2", maximum=60
            ),
            demo_account=(
                parse_bool("DEMO_ACCOUNT", demo_raw)
                if demo_raw
                else (redis_raw is None and not production)
            ),
            secret_key=secret_key,
            outbox_lease_seconds=parse_positive_int(
                "OUTBOX_LEASE_SECONDS", get("OUTBOX_LEASE_SECONDS") or "120", maximum=86400
            ),
            outbox_retry_base_seconds=parse_positive_int(
                "OUTBOX_RETRY_BASE_SECONDS", get("OUTBOX_RETRY_BASE_SECONDS") or "15", maximum=86400
            ),
            outbox_retry_max_seconds=parse_positive_int(
                "OUTBOX_RETRY_MAX_SECONDS",
                get("OUTBOX_RETRY_MAX_SECONDS") or "3600",
                maximum=604800,
            ),
            outbox_max_attempts=parse_positive_int(
                "OUTBOX_MAX_ATTEMPTS", get("OUTBOX_MAX_ATTEMPTS") or "20", maximum=1000
            ),
            webhook_retry_schedule=parse_schedule(
                "WEBHOOK_RETRY_SCHEDULE", get("WEBHOOK_RETRY_SCHEDULE")
            ),
            renewal_notice_days=parse_count(
                "RENEWAL_NOTICE_DAYS",
                get("RENEWAL_NOTICE_DAYS") or str(config.DEFAULT_RENEWAL_NOTICE_DAYS),
                maximum=90,
            ),
        )

    def resolved_secret_key(self) -> bytes:
        """The configured key, or (development only) one kept under var/."""
        if self.secret_key is not None:
            return self.secret_key.encode("utf-8")
        path = Path("var/secret_key")
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            # Exclusive create: two processes starting at once keep one key.
            try:
                with path.open("x", encoding="ascii") as handle:
                    handle.write(secrets.token_hex(32))
                path.chmod(0o600)
            except FileExistsError:
                pass
        return path.read_text(encoding="ascii").strip().encode("ascii")


def configure_domain(settings: Settings) -> None:
    """Hand the rules the settings they depend on (once per process)."""
    config.configure(
        config.DomainConfig(
            secret_key=settings.resolved_secret_key(),
            invitation_ttl=settings.invitation_ttl,
            session_ttl=settings.session_ttl,
            webhook_development=not settings.production,
            renewal_notice_days=settings.renewal_notice_days,
        )
    )
