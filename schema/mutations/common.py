"""What every mutation shares: the refusal type, `run_mutation`, the licence
summary field of the payloads, and input helpers.

`run_mutation` is the one place that turns a DomainError into the payload's
`errors` (the other fields then null) and that drops the request's loaders
after a change, so the payload shows the state after it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

import strawberry

from domain.errors import DomainError, ErrorCode
from domain.principal import Principal
from domain.reads import access
from schema.context import Info, loaders_of
from schema.types import LicenseSummary

P = TypeVar("P")
R = TypeVar("R")

UserIdArgument = Annotated[strawberry.ID, strawberry.argument(description="The user's id.")]


@strawberry.type(description="Why a mutation was refused.")
class UserError:
    code: ErrorCode = strawberry.field(description="Machine-readable reason.")
    message: str = strawberry.field(description="Human-readable explanation.")
    field: str | None = strawberry.field(
        description="The input field at fault, as named in the input type (camelCase, no "
        "prefix), when one is."
    )

    @classmethod
    def from_domain(cls, error: DomainError) -> UserError:
        return cls(code=error.code, message=error.message, field=error.field)


async def run_mutation(
    info: Info,
    payload: Callable[..., P],
    call: Awaitable[R],
    wrap: Callable[[R], P],
) -> P:
    """Await the service call; a refusal becomes `payload(errors=[UserError])`."""
    try:
        outcome = await call
    except DomainError as error:
        return payload(errors=[UserError.from_domain(error)])
    info.context.reset_loaders()
    return wrap(outcome)


async def fresh_licenses(root: Any, info: Info) -> LicenseSummary | None:
    """The licence summary after the change; null on a refusal, and for a MEMBER
    (who may not read it). Read through the request's loaders, which
    `run_mutation` dropped after the change: every payload of the request
    shows the same state, read once."""
    viewer: Principal | None = root._licenses_of
    if viewer is None or not access.can_read_account_details(viewer):
        return None
    found = await loaders_of(info, viewer.account_id).license_summary.load(viewer.account_id)
    return LicenseSummary.from_domain(viewer.account_id, found) if found else None


LICENSES_DESCRIPTION = (
    "The licence summary after the change; null on a refusal or for a MEMBER (who may not read it)."
)
ERRORS_DESCRIPTION = "Empty on success; exactly one error on a refusal (nothing changed)."


def errors_field() -> Any:
    return strawberry.field(default_factory=list, description=ERRORS_DESCRIPTION)


def licenses_field() -> Any:
    return strawberry.field(resolver=fresh_licenses, description=LICENSES_DESCRIPTION)


def given(value: Any) -> Any:
    """An input field left out arrives as UNSET: the service's None."""
    return None if value is strawberry.UNSET else value
