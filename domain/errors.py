"""Refusals of the domain, each carrying the contract's stable ErrorCode."""

from enum import StrEnum


class ErrorCode(StrEnum):
    FORBIDDEN = "FORBIDDEN"
    NOT_FOUND = "NOT_FOUND"
    INVALID_INPUT = "INVALID_INPUT"
    NO_AVAILABLE_LICENSES = "NO_AVAILABLE_LICENSES"
    EMAIL_TAKEN = "EMAIL_TAKEN"
    ALREADY_LICENSED = "ALREADY_LICENSED"
    NOT_LICENSED = "NOT_LICENSED"
    OWNER_LICENSE_REQUIRED = "OWNER_LICENSE_REQUIRED"
    OWNER_ROLE_IMMUTABLE = "OWNER_ROLE_IMMUTABLE"
    AGREEMENT_NOT_ACCEPTED = "AGREEMENT_NOT_ACCEPTED"
    AGREEMENT_OUTDATED = "AGREEMENT_OUTDATED"
    AMOUNT_MISMATCH = "AMOUNT_MISMATCH"
    SEATS_BELOW_USAGE = "SEATS_BELOW_USAGE"
    SEAT_LIMIT = "SEAT_LIMIT"
    TARGET_NOT_ELIGIBLE = "TARGET_NOT_ELIGIBLE"
    ALREADY_OWNER = "ALREADY_OWNER"
    INVITATION_INVALID = "INVITATION_INVALID"
    INVITATION_EXPIRED = "INVITATION_EXPIRED"
    INVALID_CREDENTIALS = "INVALID_CREDENTIALS"
    WEAK_PASSWORD = "WEAK_PASSWORD"
    ACCOUNT_REQUIRED = "ACCOUNT_REQUIRED"
    RATE_LIMITED = "RATE_LIMITED"
    IDEMPOTENCY_KEY_REUSED = "IDEMPOTENCY_KEY_REUSED"
    IDEMPOTENCY_KEY_IN_USE = "IDEMPOTENCY_KEY_IN_USE"
    SERVICE_UNAVAILABLE = "SERVICE_UNAVAILABLE"
    PERSISTED_QUERY_NOT_FOUND = "PERSISTED_QUERY_NOT_FOUND"
    PERSISTED_QUERY_REQUIRED = "PERSISTED_QUERY_REQUIRED"
    # Not in ErrorCode of the contract: authentication is refused before any
    # payload exists, so it only ever appears as a top-level extensions.code.
    UNAUTHENTICATED = "UNAUTHENTICATED"


class DomainError(Exception):
    """A refused use case. Raised inside the transaction, so nothing it did is kept."""

    def __init__(self, code: ErrorCode, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field

    def __repr__(self) -> str:
        return f"DomainError({self.code.value}, {self.message!r}, field={self.field!r})"


class DependencyUnavailable(Exception):
    """A dependency is down or busy (the database unreachable, SQLite's write lock
    not obtained in time). Not a DomainError: nothing was refused, the request
    could not be served now and may be retried as it is."""

    code = ErrorCode.SERVICE_UNAVAILABLE

    def __init__(self, dependency: str, detail: str) -> None:
        super().__init__(f"{dependency} unavailable: {detail}")
        self.dependency = dependency
        self.detail = detail
