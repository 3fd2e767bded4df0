"""Strawberry behaviour api/graphql_cache.py relies on, pinned so that an upgrade
that changes it fails here.

DocumentCache sets `execution_context.graphql_document` before Strawberry
parses (Strawberry then skips parsing) and sets `pre_execution_errors = []`
for a text that already passed validation (Strawberry then skips validating).
Neither is documented as an extension contract.
"""

from __future__ import annotations

from typing import Any

import pytest
from strawberry.schema import schema as strawberry_schema

from tests.support.http_client import gql
from tests.support.principals import Principals

pytestmark = pytest.mark.anyio


async def test_given_one_query_text_sent_three_times_when_answered_then_strawberry_parses_and_validates_it_once(  # noqa: E501
    client: Any, principals: Principals, monkeypatch: pytest.MonkeyPatch
):
    calls = {"parse": 0, "validate": 0}
    parse, validate = strawberry_schema.parse, strawberry_schema.validate_document

    def counting_parse(*args: Any, **kwargs: Any) -> Any:
        calls["parse"] += 1
        return parse(*args, **kwargs)

    def counting_validate(*args: Any, **kwargs: Any) -> Any:
        calls["validate"] += 1
        return validate(*args, **kwargs)

    monkeypatch.setattr(strawberry_schema, "parse", counting_parse)
    monkeypatch.setattr(strawberry_schema, "validate_document", counting_validate)
    query = "query PinnedOnce { viewer { id email } }"

    answers = [await gql(client, query, token=principals.admin_token) for _ in range(3)]

    assert all(answer["data"]["viewer"]["id"] == str(principals.admin_id) for answer in answers)
    assert calls == {"parse": 0, "validate": 1}
