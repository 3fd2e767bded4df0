"""Tortoise internals the read and outbox paths use for speed, pinned so that an
upgrade that changes them fails here rather than in production.

`Model._meta.db_fields` (the table's column names) and `Model._init_from_db(**row)`
(a model from a raw row, without a query) have no public equivalent; the read
path of the users page and the one-statement outbox claim build models from
rows they selected themselves.
"""

from __future__ import annotations

from datetime import datetime

import pytest
from tortoise import connections
from tortoise.models import Model

from domain.clock import FixedClock
from domain.enums import EmailKind
from domain.models import OutboxMessage, User
from domain.services.accounts import CreatedAccount

pytestmark = pytest.mark.anyio


async def _raw_row(model: type[Model], pk: int) -> dict[str, object]:
    columns = ", ".join(f'"{column}"' for column in model._meta.db_fields)
    table = model._meta.db_table
    [row] = await connections.get("default").execute_query_dict(
        f'SELECT {columns} FROM "{table}" WHERE "id" = {int(pk)}'
    )
    return row


def _values(instance: Model) -> dict[str, object]:
    return {name: getattr(instance, name) for name in instance._meta.db_fields}


async def test_given_a_user_row_selected_by_its_db_fields_when_built_from_it_then_it_equals_the_orm_read(  # noqa: E501
    account: CreatedAccount,
):
    read = await User.get(id=account.owner_user_id)

    built = User._init_from_db(**await _raw_row(User, read.id))

    assert _values(built) == _values(read)
    assert isinstance(built.created_at, datetime)
    assert built.created_at.tzinfo is not None


async def test_given_an_outbox_row_when_built_from_its_raw_columns_then_it_equals_the_orm_read(
    account: CreatedAccount, clock: FixedClock
):
    message = await OutboxMessage.filter(account_id=account.account_id).first()
    assert message is not None and message.kind == EmailKind(message.kind)
    read = await OutboxMessage.get(id=message.id)

    built = OutboxMessage._init_from_db(**await _raw_row(OutboxMessage, read.id))

    assert _values(built) == _values(read)
    assert built.payload == read.payload
