"""The account lock: how the licence changes of one account take turns.

The seat counter moves only through conditional UPDATEs (see `licensing`),
so `in use <= total` holds in any order. The lock is for the rows around it:
every use case that may move a licence locks the account row before it
changes any existing row of the account (`SELECT ... FOR NO KEY UPDATE` on
PostgreSQL; SQLite's `BEGIN IMMEDIATE` already admits one writer at a time).
The licence changes of one account then run one after the other, and every
transaction takes its row locks in the same order, account, then invitation,
then user, so no two of them can wait on each other in a cycle. Use cases
that never move a licence (accept, edit) take no account lock but keep
invitation before user.

NO KEY UPDATE rather than UPDATE: other transactions may go on inserting
rows that reference the account (audit events, sessions) while it is held.
`invite_user` takes it last, after inserting its new rows, to hold it for
less time: new rows are nobody else's until the commit, inserting them only
takes FOR KEY SHARE on the rows they reference (no conflict with NO KEY
UPDATE), and the unique account + email_key index is the final judge of the
email.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from domain.clock import Clock
from domain.errors import DomainError, ErrorCode
from domain.models import Account, User
from domain.principal import Principal, parse_id, require_admin
from domain.uow import UnitOfWork, unit_of_work


async def lock_account(
    work: UnitOfWork, account_id: int, *, missing_ok: bool = False
) -> Account | None:
    account = (
        await Account.filter(id=account_id)
        .select_for_update(no_key=True)
        .using_db(work.connection)
        .first()
    )
    if account is None and not missing_ok:
        raise DomainError(ErrorCode.NOT_FOUND, "No such account.")
    return account


async def find_user(
    work: UnitOfWork, *, actor: Principal, user_id: int, lock: bool = False
) -> User:
    """A user of the actor's account; any other id is simply not found."""
    query = User.filter(id=user_id, account_id=actor.account_id)
    if lock:
        query = query.select_for_update(no_key=True)
    user = await query.using_db(work.connection).first()
    if user is None:
        raise DomainError(ErrorCode.NOT_FOUND, "No user with this ID.")
    return user


async def reload_user(work: UnitOfWork, user_id: int) -> User:
    return await User.filter(id=user_id).using_db(work.connection).get()


@asynccontextmanager
async def licence_change(
    *, actor: Principal, user_id: str, clock: Clock
) -> AsyncIterator[tuple[UnitOfWork, User]]:
    """An administrator's licence change of one user: the role and the id are
    checked before the transaction begins; inside it, the account is locked
    first, then the user is found."""
    require_admin(actor)
    key = parse_id(user_id)
    async with unit_of_work(clock.now()) as work:
        await lock_account(work, actor.account_id)
        yield work, await find_user(work, actor=actor, user_id=key)
