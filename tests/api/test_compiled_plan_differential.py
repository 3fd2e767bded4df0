"""The compiled execution plan answers exactly what graphql-core answers.

Two apps on one seeded database, one with GRAPHQL_COMPILED_PLAN on and one
with it off, get the same requests: every GraphQL document written in the
test suite, the console's operations, and documents of the schema-driven
fuzzer, each as none, MEMBER, ADMIN, OWNER and the API token. Each pair of
responses must be byte-identical (status, content type, body). Queries go to
both apps back to back. A mutation may change what the next one sees, so it
runs standard, compiled, standard: when the two standard answers agree, the
compiled one must be the same; when they differ the mutation changed its own
answer and the pair proves nothing (those are counted, and must stay few).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import httpx
import pytest
from graphql import GraphQLSchema
from starlette.applications import Starlette

from api import graphql_cache
from domain import config
from domain.clock import FixedClock
from schema import schema
from tests.hostile.test_fuzz import FuzzSession
from tests.support.graphql_corpus import (
    Document,
    SampleValues,
    console_texts,
    documents_of,
    fuzzed,
    suite_texts,
)
from tests.support.http_client import GRAPHQL, build_app, client_for
from tests.support.principals import Principals

pytestmark = pytest.mark.anyio

ROLES = ("none", "member", "admin", "owner", "api")
FUZZED = int(os.environ.get("PLAN_FUZZ_DOCUMENTS") or 400)
FUZZ_SEED = 20261202


class Pair:
    def __init__(
        self, session: FuzzSession, compiled: httpx.AsyncClient, standard: httpx.AsyncClient
    ) -> None:
        self.session = session
        self.compiled = compiled
        self.standard = standard
        self.compared = 0
        self.unstable: list[str] = []
        self.differences: list[str] = []
        self.sent = 0

    async def _send(
        self, http: httpx.AsyncClient, document: Document, token: str | None
    ) -> tuple[int, str, bytes]:
        # The same request id on both sides: a masked error carries it.
        headers = {"X-Request-ID": f"plan-diff-{self.sent:08d}"}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        response = await http.post(GRAPHQL, json=document.body(), headers=headers)
        return response.status_code, response.headers.get("content-type", ""), response.content

    async def compare(self, document: Document, role: str) -> None:
        token = await self.session._ensure_token(role)
        self.sent += 1
        if document.operation_type == "mutation":
            first = await self._send(self.standard, document, token)
            compiled = await self._send(self.compiled, document, token)
            second = await self._send(self.standard, document, token)
            if first != second:
                self.unstable.append(document.query[:80])
                return
        else:
            compiled = await self._send(self.compiled, document, token)
            first = await self._send(self.standard, document, token)
        self.compared += 1
        if compiled != first and len(self.differences) < 10:
            self.differences.append(
                f"{role} {document.body()}\n  compiled: {compiled!r}\n  standard: {first!r}"
            )


@pytest.fixture
def forget_documents_afterwards() -> Iterator[None]:
    """The documents sent here stay out of the process's document cache, whose
    first parse and validation other tests count."""
    yield
    graphql_cache._parse.cache_clear()
    graphql_cache._validated.clear()


def _apps(
    db: str, clock: FixedClock, domain_config: config.DomainConfig
) -> tuple[Starlette, Starlette]:
    compiled = build_app(db, clock, domain_config, graphql_compiled_plan=True)
    standard = build_app(db, clock, domain_config, graphql_compiled_plan=False)
    return compiled, standard


async def test_every_document_answers_the_same_bytes_with_and_without_the_compiled_plan(
    db: str,
    clock: FixedClock,
    domain_config: config.DomainConfig,
    principals: Principals,
    forget_documents_afterwards: None,
) -> None:
    compiled_app, standard_app = _apps(db, clock, domain_config)
    session = FuzzSession(app=compiled_app, clock=clock, principals=principals)
    await session.setup()
    served: GraphQLSchema = schema._schema
    values = SampleValues(user_id=str(principals.member_id), now=clock.now())
    written = documents_of(served, suite_texts(), values)
    console = documents_of(served, console_texts(), values)
    fuzz = fuzzed(await session._pools("admin"), FUZZED, FUZZ_SEED)

    async with client_for(compiled_app) as compiled, client_for(standard_app) as standard:
        pair = Pair(session, compiled, standard)
        for role in ROLES:  # the first request of a token stamps lastActiveAt
            await pair.compare(Document("{ __typename }", None, "query"), role)
        for document in [*console, *written]:
            for role in ROLES:
                await pair.compare(document, role)
        for index, document in enumerate(fuzz):
            await pair.compare(document, ROLES[index % len(ROLES)])

    assert not pair.differences, "\n".join(pair.differences)
    assert len(written) > 100 and len(console) >= 20 and len(fuzz) > FUZZED // 2
    assert pair.compared > 10 * len(pair.unstable), (pair.compared, len(pair.unstable))
