"""Operations run through the schema in-process, without HTTP: a one-call `execute` with a
RequestContext, the codes and paths of its errors, and counting the SQL statements it sends."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from domain.clock import FixedClock
from domain.principal import Principal
from schema import schema
from schema.context import RequestContext


async def execute(
    query: str,
    principal: Principal | None,
    clock: FixedClock,
    **variables: Any,
) -> Any:
    return await schema.execute(
        query,
        variable_values=variables,
        context_value=RequestContext(principal=principal, clock=clock, request_id="test"),
    )


def codes(result: Any) -> list[str]:
    return [error.extensions.get("code") for error in result.errors or ()]


def error_paths(result: Any) -> list[str]:
    return [".".join(str(p) for p in error.path or ()) for error in result.errors or ()]


class StatementCounter(logging.Handler):
    """Counts the SQL statements Tortoise's clients log at DEBUG."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.statements: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if "connection pool" not in message:
            self.statements.append(message)


@contextmanager
def counting_statements() -> Iterator[StatementCounter]:
    logger = logging.getLogger("tortoise.db_client")
    counter = StatementCounter()
    previous = logger.level
    logger.setLevel(logging.DEBUG)
    logger.addHandler(counter)
    try:
        yield counter
    finally:
        logger.removeHandler(counter)
        logger.setLevel(previous)
