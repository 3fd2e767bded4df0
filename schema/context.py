"""Per-request context: who asks, when, and the request's DataLoaders.

The HTTP layer authenticates (bearer → domain.services.auth.authenticate) and
builds one RequestContext per request; resolvers never look at HTTP:

    RequestContext(
        request=request,            # starlette Request (or None in tests)
        response=response,          # to set headers, may be None
        principal=principal,        # None: no or invalid token
        clock=SYSTEM_CLOCK,
        request_id="…",
        client_address="203.0.113.7",
    )

DataLoaders are created lazily, per request and per account (an object read
by a signed-in user always belongs to that user's account; login payloads
read the account of the user who just signed in). Mutations drop the loaders
after they change something, so a payload never shows what was cached before.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import TypeAlias

import strawberry
from starlette.requests import HTTPConnection
from starlette.responses import Response
from strawberry.dataloader import DataLoader

from domain.clock import SYSTEM_CLOCK, Clock
from domain.enums import ApiTokenScope
from domain.models import Account, ApiToken, LicenseAssignment, User
from domain.principal import Principal
from domain.reads import batches, summary
from domain.reads.rows import InvitationRow
from schema.errors import ForbiddenError, UnauthenticatedError


class AccountLoaders:
    """The DataLoaders of one account: each batch is ONE statement, scoped to it."""

    def __init__(self, account_id: int) -> None:
        self.account_id = account_id

    @cached_property
    def account(self) -> DataLoader[int, Account | None]:
        return DataLoader(load_fn=self._accounts)

    @cached_property
    def pending_invitations(self) -> DataLoader[int, int]:
        return DataLoader(load_fn=self._pending_invitations)

    @cached_property
    def users(self) -> DataLoader[int, User | None]:
        return DataLoader(load_fn=self._users)

    @cached_property
    def owner(self) -> DataLoader[int, User | None]:
        return DataLoader(load_fn=self._owners)

    @cached_property
    def latest_invitation(self) -> DataLoader[int, InvitationRow | None]:
        return DataLoader(load_fn=self._latest_invitations)

    @cached_property
    def assignments(self) -> DataLoader[int, list[LicenseAssignment]]:
        return DataLoader(load_fn=self._assignments)

    @cached_property
    def api_tokens(self) -> DataLoader[int, ApiToken | None]:
        return DataLoader(load_fn=self._api_tokens)

    @cached_property
    def license_summary(self) -> DataLoader[int, summary.LicenseSummary | None]:
        """Read once per request however many payloads show it (bulk results)."""
        return DataLoader(load_fn=self._license_summaries)

    async def _accounts(self, keys: list[int]) -> list[Account | None]:
        scoped = [key if key == self.account_id else -1 for key in keys]
        return await batches.accounts_by_ids(account_ids=scoped)

    async def _pending_invitations(self, keys: list[int]) -> list[int]:
        scoped = [key if key == self.account_id else -1 for key in keys]
        return await batches.pending_invitation_counts(account_ids=scoped)

    async def _users(self, keys: list[int]) -> list[User | None]:
        return await batches.users_by_ids(account_id=self.account_id, ids=keys)

    async def _owners(self, keys: list[int]) -> list[User | None]:
        return await batches.owner_by_account_ids(account_id=self.account_id, keys=keys)

    async def _latest_invitations(self, keys: list[int]) -> list[InvitationRow | None]:
        return await batches.latest_invitation_by_user_ids(
            account_id=self.account_id, user_ids=keys
        )

    async def _assignments(self, keys: list[int]) -> list[list[LicenseAssignment]]:
        return await batches.assignments_by_user_ids(account_id=self.account_id, user_ids=keys)

    async def _api_tokens(self, keys: list[int]) -> list[ApiToken | None]:
        return await batches.api_tokens_by_ids(account_id=self.account_id, ids=keys)

    async def _license_summaries(self, keys: list[int]) -> list[summary.LicenseSummary | None]:
        account = await Account.get_or_none(id=self.account_id)
        found = await summary.license_summary(account=account) if account else None
        return [found if key == self.account_id else None for key in keys]


class Loaders:
    """All DataLoaders of one request, by account."""

    def __init__(self) -> None:
        self._by_account: dict[int, AccountLoaders] = {}

    def of(self, account_id: int) -> AccountLoaders:
        loaders = self._by_account.get(account_id)
        if loaders is None:
            loaders = self._by_account[account_id] = AccountLoaders(account_id)
        return loaders


@dataclass
class RequestContext:
    """What every resolver may use. Build one per request (see the module docstring)."""

    request: HTTPConnection | None = None
    response: Response | None = None
    principal: Principal | None = None
    clock: Clock = SYSTEM_CLOCK
    request_id: str = ""
    client_address: str | None = None
    _loaders: Loaders | None = field(default=None, init=False, repr=False)

    @property
    def loaders(self) -> Loaders:
        if self._loaders is None:
            self._loaders = Loaders()
        return self._loaders

    def reset_loaders(self) -> None:
        """Forget every loaded object (after a mutation changed the data)."""
        self._loaders = None


def build_context(
    *,
    principal: Principal | None,
    request: HTTPConnection | None = None,
    response: Response | None = None,
    clock: Clock = SYSTEM_CLOCK,
    request_id: str = "",
    client_address: str | None = None,
) -> RequestContext:
    """The context of one request; `principal` None means unauthenticated."""
    return RequestContext(
        request=request,
        response=response,
        principal=principal,
        clock=clock,
        request_id=request_id,
        client_address=client_address,
    )


Info: TypeAlias = strawberry.Info[RequestContext, None]


def require_principal(info: Info) -> Principal:
    principal = info.context.principal
    if principal is None:
        raise UnauthenticatedError()
    if ApiTokenScope.GRAPHQL not in principal.scopes:
        raise ForbiddenError("This API token has no GRAPHQL scope.")
    return principal


def loaders_of(info: Info, account_id: int) -> AccountLoaders:
    return info.context.loaders.of(account_id)
