"""Web clients over HTTP (SPEC section 7), through the ASGI app: CORS, GraphQL over
HTTP content negotiation, persisted queries, and the headers browsers expect.

The same behaviour is driven from real clients (Chromium, graphql-http's audit,
Apollo Client) against a live server in tests/web/.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import strawberry.schema.schema as strawberry_schema

from api import bearer, graphql_cache
from api.persisted_queries import (
    LOCAL_DOCUMENTS,
    MANIFEST_FORMAT,
    SHIPPED_MANIFEST,
    MemoryStore,
    load_manifest,
    sha256_hex,
)
from domain.errors import DependencyUnavailable
from domain.settings import SettingsError
from tests.support.http_client import GRAPHQL, auth_headers, build_app, client_for
from tests.support.local_services import RedisServer, find_free_port, find_redis_server

pytestmark = pytest.mark.anyio

ALLOWED = "http://console.test:5173"
GRAPHQL_RESPONSE = "application/graphql-response+json"
VIEWER = "query Viewer { viewer { id } }"


def persisted(sha: str) -> dict[str, Any]:
    return {"persistedQuery": {"version": 1, "sha256Hash": sha}}


def unique_query() -> str:
    """A document no store has seen yet (named after a random token)."""
    return f"query Viewer_{secrets.token_hex(6)} {{ viewer {{ id }} }}"


def write_manifest(path: Path, *bodies: tuple[str, str, str]) -> Path:
    operations = [
        {"id": sha256_hex(body), "name": name, "type": kind, "body": body}
        for name, kind, body in bodies
    ]
    path.write_text(json.dumps({"format": MANIFEST_FORMAT, "version": 1, "operations": operations}))
    return path


@pytest.fixture
def cors_client(db, clock, domain_config) -> httpx.AsyncClient:
    return client_for(build_app(db, clock, domain_config, cors_allowed_origins=(ALLOWED,)))


@pytest.fixture
def counting(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """How often documents are parsed (pinned path) and validated."""
    counts = {"parse": 0, "validate": 0}
    parse, validate = graphql_cache.parse, strawberry_schema.validate_document

    def counting_parse(*args: Any, **kwargs: Any) -> Any:
        counts["parse"] += 1
        return parse(*args, **kwargs)

    def counting_validate(*args: Any, **kwargs: Any) -> Any:
        counts["validate"] += 1
        return validate(*args, **kwargs)

    monkeypatch.setattr(graphql_cache, "parse", counting_parse)
    monkeypatch.setattr(strawberry_schema, "validate_document", counting_validate)
    return counts


@pytest.fixture
def redis_url() -> Iterator[str]:
    configured = os.environ.get("TEST_REDIS_URL")
    if configured:
        yield configured
        return
    if find_redis_server() is None:
        pytest.skip("no TEST_REDIS_URL and no redis-server to start")
    server = RedisServer().start()
    try:
        yield server.url
    finally:
        server.stop()


# ---------------------------------------------------------------------------
# CORS


async def test_given_an_allowed_origin_when_it_preflights_a_post_then_the_headers_it_needs_are_allowed(  # noqa: E501
    cors_client,
):
    async with cors_client as http:
        response = await http.options(
            GRAPHQL,
            headers={
                "Origin": ALLOWED,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization, content-type, idempotency-key",
            },
        )

    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == ALLOWED
    assert "POST" in response.headers["access-control-allow-methods"]
    allowed = response.headers["access-control-allow-headers"].lower()
    assert {"authorization", "content-type", "idempotency-key"} <= {
        h.strip() for h in allowed.split(",")
    }
    assert "access-control-allow-credentials" not in response.headers


async def test_given_an_allowed_origin_when_it_posts_then_the_request_id_and_replay_headers_are_exposed(  # noqa: E501
    cors_client, principals
):
    async with cors_client as http:
        response = await http.post(
            GRAPHQL,
            json={"query": VIEWER},
            headers=auth_headers(principals.owner_token, {"Origin": ALLOWED}),
        )

    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == ALLOWED
    exposed = {
        h.strip().lower() for h in response.headers["access-control-expose-headers"].split(",")
    }
    assert exposed == {"x-request-id", "idempotent-replayed"}
    assert [v.strip() for v in response.headers["vary"].split(",")] == [
        "Origin",
        "Authorization",
        "Accept",
    ]


async def test_given_an_origin_not_listed_when_it_preflights_then_no_allow_origin_is_sent(
    cors_client,
):
    async with cors_client as http:
        response = await http.options(
            GRAPHQL,
            headers={"Origin": "http://evil.test", "Access-Control-Request-Method": "POST"},
        )

    assert response.status_code == 400
    assert "access-control-allow-origin" not in response.headers


async def test_given_no_cors_setting_when_a_page_preflights_then_it_is_not_allowed(client):
    response = await client.options(
        GRAPHQL, headers={"Origin": ALLOWED, "Access-Control-Request-Method": "POST"}
    )
    simple = await client.post(
        GRAPHQL, json={"query": "{ __typename }"}, headers={"Origin": ALLOWED}
    )

    assert response.status_code == 405
    assert "access-control-allow-origin" not in response.headers
    assert "access-control-allow-origin" not in simple.headers


async def test_given_cors_configured_when_another_path_is_read_then_it_stays_same_origin(
    cors_client,
):
    async with cors_client as http:
        response = await http.get("/healthz", headers={"Origin": ALLOWED})

    assert response.status_code == 200
    assert "access-control-allow-origin" not in response.headers


# ---------------------------------------------------------------------------
# Headers


async def test_given_an_authenticated_request_when_answered_then_it_is_not_stored_nor_sniffed(
    client, principals
):
    response = await client.post(
        GRAPHQL, json={"query": VIEWER}, headers=auth_headers(principals.owner_token)
    )
    health = await client.get("/healthz")

    assert response.headers["cache-control"] == "no-store"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["vary"] == "Authorization, Accept"
    assert health.headers["x-content-type-options"] == "nosniff"
    assert "cache-control" not in health.headers


async def test_given_a_body_too_large_when_refused_then_the_browser_headers_are_still_there(
    cors_client,
):
    async with cors_client as http:
        response = await http.post(
            GRAPHQL,
            content=b"x" * (1024 * 1024 + 1),
            headers={"Content-Type": "application/json", "Origin": ALLOWED},
        )

    assert response.status_code == 413
    assert response.headers["access-control-allow-origin"] == ALLOWED
    assert response.headers["x-content-type-options"] == "nosniff"


async def test_given_introspection_off_when_a_field_is_misspelt_then_no_name_is_suggested(
    db, clock, domain_config, principals
):
    closed = client_for(build_app(db, clock, domain_config, introspection=False))
    async with client_for(build_app(db, clock, domain_config)) as open_http, closed as http:
        hidden = await http.post(
            GRAPHQL,
            json={"query": "{ viewr { id } }"},
            headers=auth_headers(principals.owner_token),
        )
        shown = await open_http.post(
            GRAPHQL,
            json={"query": "{ viewr { id } }"},
            headers=auth_headers(principals.owner_token),
        )
        enum_hidden = await http.post(
            GRAPHQL,
            json={
                "query": "query($r: Role) { viewer { id } } ",
                "variables": {"r": "OWNERR"},
            },
            headers=auth_headers(principals.owner_token),
        )

    assert "Did you mean" in shown.json()["errors"][0]["message"]
    assert hidden.json()["errors"][0]["message"] == "Cannot query field 'viewr' on type 'Query'."
    assert "Did you mean" not in enum_hidden.text
    assert enum_hidden.json()["errors"]


# ---------------------------------------------------------------------------
# GraphQL over HTTP: application/graphql-response+json


async def test_given_graphql_response_json_accepted_when_a_query_runs_then_it_is_200_in_that_type(
    client, principals
):
    response = await client.post(
        GRAPHQL,
        json={"query": VIEWER},
        headers=auth_headers(principals.owner_token, {"Accept": GRAPHQL_RESPONSE}),
    )

    assert response.status_code == 200
    assert response.headers["content-type"] == f"{GRAPHQL_RESPONSE}; charset=utf-8"
    assert response.json() == {"data": {"viewer": {"id": str(principals.owner_id)}}}


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"query": "{"}, 400),
        ({"query": "{ nope }"}, 400),
        ({"query": "query($id: ID!) { __typename }", "variables": {"id": None}}, 400),
        ({"query": VIEWER, "variables": "x"}, 400),
        ({"query": "{ viewer { id } }", "token": None}, 401),
    ],
)
async def test_given_graphql_response_json_when_the_request_fails_before_execution_then_4xx_without_data(  # noqa: E501
    client, principals, body, status
):
    token = None if "token" in body else principals.owner_token
    body = {key: value for key, value in body.items() if key != "token"}

    response = await client.post(
        GRAPHQL, json=body, headers=auth_headers(token, {"Accept": GRAPHQL_RESPONSE})
    )

    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(GRAPHQL_RESPONSE)
    assert "data" not in response.json()
    assert response.json()["errors"]


async def test_given_graphql_response_json_when_a_field_fails_during_execution_then_200_with_data(
    client, principals
):
    response = await client.post(
        GRAPHQL,
        json={"query": "{ account { id users(first: 0) { totalCount } } }"},
        headers=auth_headers(principals.owner_token, {"Accept": GRAPHQL_RESPONSE}),
    )

    assert response.status_code == 200
    body = response.json()
    assert body["data"] == {"account": {"id": str(principals.account_id), "users": None}}
    assert body["errors"][0]["path"] == ["account", "users"]


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        (None, "application/json"),
        ("*/*", "application/json"),
        ("application/json", "application/json"),
        ("text/html", "application/json"),
        (f"{GRAPHQL_RESPONSE}, application/json;q=0.9", GRAPHQL_RESPONSE),
        (f"application/json, {GRAPHQL_RESPONSE}", "application/json"),
        (f"application/json;q=0.5, {GRAPHQL_RESPONSE};q=0.8", GRAPHQL_RESPONSE),
    ],
)
async def test_given_an_accept_header_when_negotiated_then_the_preferred_served_type_wins(
    client, accept, expected
):
    headers = {"Accept": accept} if accept else {}

    response = await client.post(GRAPHQL, json={"query": "{ __typename }"}, headers=headers)

    assert response.status_code == 200
    assert response.headers["content-type"].split(";")[0] == expected


async def test_given_application_json_when_validation_fails_then_the_answer_is_unchanged(client):
    response = await client.post(
        GRAPHQL, json={"query": "{ nope }"}, headers={"Accept": "application/json"}
    )

    assert response.status_code == 200
    assert response.json()["data"] is None
    assert response.headers["content-type"] == "application/json"


@pytest.mark.parametrize("accept", ["application/json", GRAPHQL_RESPONSE])
async def test_given_a_mutation_over_get_when_sent_then_405_allows_post(client, principals, accept):
    response = await client.get(
        GRAPHQL,
        params={"query": 'mutation { createApiToken(name: "x") { secret } }'},
        headers=auth_headers(principals.owner_token, {"Accept": accept}),
    )

    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    assert response.json()["errors"][0]["extensions"]["code"] == "INVALID_INPUT"
    assert ("data" in response.json()) is (accept == "application/json")


async def test_given_head_when_asked_then_it_answers_as_get_without_a_body(client, principals):
    params = {"query": VIEWER}
    headers = auth_headers(principals.owner_token)

    get = await client.get(GRAPHQL, params=params, headers=headers)
    head = await client.head(GRAPHQL, params=params, headers=headers)
    head_mutation = await client.head(
        GRAPHQL, params={"query": "mutation { logout { errors { code } } }"}, headers=headers
    )

    assert head.status_code == get.status_code == 200
    assert head.content == b""
    assert head.headers["content-length"] == get.headers["content-length"]
    assert head.headers["content-type"] == get.headers["content-type"]
    assert head_mutation.status_code == 405
    assert head_mutation.headers["allow"] == "POST"


# ---------------------------------------------------------------------------
# Persisted queries (APQ)


async def test_given_an_unknown_hash_when_sent_alone_then_apollo_is_told_persisted_query_not_found(
    client, principals
):
    response = await client.post(
        GRAPHQL,
        json={"extensions": persisted(sha256_hex(unique_query()))},
        headers=auth_headers(principals.owner_token),
    )

    assert response.status_code == 200
    error = response.json()["errors"][0]
    assert error["message"] == "PersistedQueryNotFound"
    assert error["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"


async def test_given_hash_and_document_when_sent_then_the_hash_alone_works_afterwards(
    client, principals
):
    query = unique_query()
    sha = sha256_hex(query)
    headers = auth_headers(principals.owner_token)

    first = await client.post(
        GRAPHQL, json={"query": query, "extensions": persisted(sha)}, headers=headers
    )
    by_hash = await client.post(GRAPHQL, json={"extensions": persisted(sha)}, headers=headers)
    by_get = await client.get(
        GRAPHQL, params={"extensions": json.dumps(persisted(sha))}, headers=headers
    )

    expected = {"data": {"viewer": {"id": str(principals.owner_id)}}}
    assert first.json() == expected
    assert by_hash.json() == expected
    assert by_get.status_code == 200
    assert by_get.json() == expected


async def test_given_a_hash_that_is_not_the_documents_when_sent_then_it_is_refused(
    client, principals
):
    query = unique_query()
    wrong = sha256_hex(query + " ")

    response = await client.post(
        GRAPHQL,
        json={"query": query, "extensions": persisted(wrong)},
        headers=auth_headers(principals.owner_token),
    )
    later = await client.post(
        GRAPHQL, json={"extensions": persisted(wrong)}, headers=auth_headers(principals.owner_token)
    )

    assert response.status_code == 400
    assert response.json()["errors"][0]["extensions"]["code"] == "INVALID_INPUT"
    assert later.json()["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"


@pytest.mark.parametrize(
    "extensions",
    [
        {"persistedQuery": "x"},
        {"persistedQuery": {"version": 2, "sha256Hash": "0" * 64}},
        {"persistedQuery": {"version": 1, "sha256Hash": "not hex"}},
    ],
)
async def test_given_a_malformed_persisted_query_when_sent_then_400(client, extensions):
    response = await client.post(GRAPHQL, json={"extensions": extensions})

    assert response.status_code == 400
    assert response.json()["errors"][0]["extensions"]["code"] == "INVALID_INPUT"


async def test_given_a_persisted_mutation_when_requested_by_get_then_405(client, principals):
    query = "mutation Out { logout { errors { code } } }"
    sha = sha256_hex(query)
    headers = auth_headers(principals.member_token)
    await client.post(
        GRAPHQL,
        json={"query": "mutation Out { logout { errors { code } } }", "extensions": persisted(sha)},
        headers=auth_headers(principals.owner_token),
    )

    response = await client.get(
        GRAPHQL, params={"extensions": json.dumps(persisted(sha))}, headers=headers
    )

    assert response.status_code == 405
    assert response.headers["allow"] == "POST"


async def test_given_an_anonymous_request_when_it_sends_a_document_then_it_is_not_stored(client):
    query = f"query Anon_{secrets.token_hex(4)} {{ __typename }}"
    sha = sha256_hex(query)

    ran = await client.post(GRAPHQL, json={"query": query, "extensions": persisted(sha)})
    again = await client.post(GRAPHQL, json={"extensions": persisted(sha)})

    assert ran.json() == {"data": {"__typename": "Query"}}
    assert again.json()["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"


async def test_given_an_invalid_document_when_sent_with_its_hash_then_it_is_not_stored(
    client, principals
):
    query = f"query Bad_{secrets.token_hex(4)} {{ nope }}"
    sha = sha256_hex(query)
    headers = auth_headers(principals.owner_token)

    await client.post(GRAPHQL, json={"query": query, "extensions": persisted(sha)}, headers=headers)
    again = await client.post(GRAPHQL, json={"extensions": persisted(sha)}, headers=headers)

    assert again.json()["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"


async def test_given_a_persisted_document_when_run_many_times_then_it_is_parsed_and_validated_once(
    client, principals, counting
):
    query = unique_query()
    sha = sha256_hex(query)
    headers = auth_headers(principals.owner_token)
    await client.post(GRAPHQL, json={"query": query, "extensions": persisted(sha)}, headers=headers)
    before = dict(counting)

    for _ in range(5):
        # What a burst of other documents does to the per-text LRU caches.
        graphql_cache._parse.cache_clear()
        graphql_cache._validated.clear()
        response = await client.post(GRAPHQL, json={"extensions": persisted(sha)}, headers=headers)
        assert response.json() == {"data": {"viewer": {"id": str(principals.owner_id)}}}

    assert counting["parse"] - before["parse"] <= 1
    assert counting["validate"] - before["validate"] <= 1


async def test_given_the_in_process_store_when_full_then_the_oldest_document_is_forgotten():
    store = MemoryStore(max_documents=2)

    for index in range(3):
        await store.put(f"{index:064x}", f"query Q{index} {{ __typename }}")

    assert len(store) == 2
    assert await store.get(f"{0:064x}") is None
    assert await store.get(f"{2:064x}") == "query Q2 { __typename }"
    assert LOCAL_DOCUMENTS >= 100


async def test_given_redis_when_one_process_learns_a_document_then_another_runs_it_by_hash(
    db, clock, domain_config, principals, redis_url
):
    query = unique_query()
    sha = sha256_hex(query)
    headers = auth_headers(principals.owner_token)
    first = client_for(build_app(db, clock, domain_config, redis_url=redis_url))
    second = client_for(build_app(db, clock, domain_config, redis_url=redis_url))

    async with first as a, second as b:
        miss = await b.post(GRAPHQL, json={"extensions": persisted(sha)}, headers=headers)
        await a.post(GRAPHQL, json={"query": query, "extensions": persisted(sha)}, headers=headers)
        hit = await b.post(GRAPHQL, json={"extensions": persisted(sha)}, headers=headers)

    assert miss.json()["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"
    assert hit.json() == {"data": {"viewer": {"id": str(principals.owner_id)}}}


async def test_given_redis_down_when_a_hash_needs_the_store_then_503_with_retry_after(
    db, clock, domain_config, principals
):
    down = f"redis://127.0.0.1:{find_free_port()}/0"
    app = build_app(db, clock, domain_config, redis_url=down)

    async with client_for(app) as http:
        response = await http.post(
            GRAPHQL,
            json={"extensions": persisted(sha256_hex(unique_query()))},
            headers=auth_headers(principals.owner_token, {"X-Request-ID": "redis-down-0001"}),
        )
        plain = await http.post(
            GRAPHQL, json={"query": VIEWER}, headers=auth_headers(principals.owner_token)
        )

    assert response.status_code == 503
    assert int(response.headers["retry-after"]) > 0
    assert response.headers["x-request-id"] == "redis-down-0001"
    error = response.json()["errors"][0]
    assert error["extensions"]["code"] == "SERVICE_UNAVAILABLE"
    assert error["extensions"]["requestId"] == "redis-down-0001"
    assert plain.status_code == 200


# ---------------------------------------------------------------------------
# Allowlist


async def test_given_allowlist_mode_when_documents_arrive_then_only_the_manifests_run(
    db, clock, domain_config, principals, tmp_path
):
    manifest = write_manifest(tmp_path / "ops.json", ("Viewer", "query", VIEWER))
    app = build_app(
        db,
        clock,
        domain_config,
        persisted_queries="allowlist",
        persisted_queries_manifest=manifest,
    )
    headers = auth_headers(principals.owner_token)
    other = unique_query()

    async with client_for(app) as http:
        by_hash = await http.post(
            GRAPHQL, json={"extensions": persisted(sha256_hex(VIEWER))}, headers=headers
        )
        in_full = await http.post(GRAPHQL, json={"query": VIEWER}, headers=headers)
        refused = await http.post(GRAPHQL, json={"query": other}, headers=headers)
        refused_hash = await http.post(
            GRAPHQL,
            json={"query": other, "extensions": persisted(sha256_hex(other))},
            headers=headers,
        )
        refused_get = await http.get(GRAPHQL, params={"query": other}, headers=headers)

    expected = {"data": {"viewer": {"id": str(principals.owner_id)}}}
    assert by_hash.json() == expected
    assert in_full.json() == expected
    for answer in (refused, refused_hash, refused_get):
        assert answer.json()["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_REQUIRED"


@pytest.mark.parametrize(
    "content",
    [
        "not json",
        json.dumps({"format": "other", "version": 1, "operations": []}),
        json.dumps(
            {
                "format": MANIFEST_FORMAT,
                "version": 1,
                "operations": [{"id": "0" * 64, "name": "Q", "type": "query", "body": "{ a }"}],
            }
        ),
        json.dumps(
            {
                "format": MANIFEST_FORMAT,
                "version": 1,
                "operations": [
                    {"id": sha256_hex("{ a"), "name": "Q", "type": "query", "body": "{ a"}
                ],
            }
        ),
    ],
)
def test_given_a_broken_manifest_when_loaded_then_start_up_names_the_variable(tmp_path, content):
    path = tmp_path / "manifest.json"
    path.write_text(content)

    with pytest.raises(SettingsError) as refused:
        load_manifest(path, variable="PERSISTED_QUERIES_MANIFEST")

    assert refused.value.variable == "PERSISTED_QUERIES_MANIFEST"
    assert str(path) in str(refused.value)


def test_given_the_shipped_manifest_when_loaded_then_it_is_valid():
    assert isinstance(load_manifest(SHIPPED_MANIFEST, variable="PERSISTED_QUERIES"), dict)


async def test_given_graphql_response_json_when_an_idempotency_key_is_reused_then_422_without_data(
    client, principals
):
    headers = auth_headers(
        principals.owner_token, {"Accept": GRAPHQL_RESPONSE, "Idempotency-Key": "reused-key-1"}
    )
    first = await client.post(
        GRAPHQL,
        json={"query": 'mutation { createApiToken(name: "a") { errors { code } } }'},
        headers=headers,
    )

    reused = await client.post(
        GRAPHQL,
        json={"query": 'mutation { createApiToken(name: "b") { errors { code } } }'},
        headers=headers,
    )

    assert first.status_code == 200
    assert reused.status_code == 422
    assert reused.json() == {
        "errors": [
            {
                "message": reused.json()["errors"][0]["message"],
                "extensions": {"code": "IDEMPOTENCY_KEY_REUSED"},
            }
        ]
    }


async def test_given_graphql_response_json_when_the_token_check_meets_a_dependency_down_then_503_without_data(  # noqa: E501
    client, principals, monkeypatch
):
    async def down(**_: Any) -> Any:
        raise DependencyUnavailable("database", "connection refused")

    monkeypatch.setattr(bearer.auth, "authenticate", down)

    response = await client.post(
        GRAPHQL,
        json={"query": VIEWER},
        headers=auth_headers(principals.owner_token, {"Accept": GRAPHQL_RESPONSE}),
    )

    assert response.status_code == 503
    assert int(response.headers["retry-after"]) > 0
    assert response.headers["content-type"].startswith(GRAPHQL_RESPONSE)
    assert "data" not in response.json()
    assert response.json()["errors"][0]["extensions"]["code"] == "SERVICE_UNAVAILABLE"


async def test_given_a_hash_only_request_with_an_unpaired_surrogate_when_sent_then_it_is_a_400(
    client, principals
):
    query = "query($id: ID!) { account { user(id: $id) { id } } }"
    sha = sha256_hex(query)
    headers = auth_headers(principals.owner_token, {"Content-Type": "application/json"})
    learnt = await client.post(
        GRAPHQL,
        json={"query": query, "variables": {"id": "1"}, "extensions": persisted(sha)},
        headers=headers,
    )
    assert "errors" not in learnt.json()
    content = (
        '{"variables": {"id": "\\ud800"}, "extensions": ' + json.dumps(persisted(sha)) + "}"
    ).encode()

    response = await client.post(GRAPHQL, content=content, headers=headers)

    assert response.status_code == 400, response.text
    assert response.json()["errors"][0]["extensions"]["code"] == "INVALID_INPUT"


async def test_given_redis_down_then_back_when_a_hash_is_sent_then_503_then_the_document_runs(
    db, clock, domain_config, principals
):
    if find_redis_server() is None:
        pytest.skip("no redis-server to stop and start")
    redis = RedisServer(appendonly=True).start()
    query = unique_query()
    sha = sha256_hex(query)
    headers = auth_headers(principals.owner_token)
    try:
        async with client_for(build_app(db, clock, domain_config, redis_url=redis.url)) as http:
            await http.post(
                GRAPHQL, json={"query": query, "extensions": persisted(sha)}, headers=headers
            )
        # Another process, which has not seen the document: it needs Redis.
        async with client_for(build_app(db, clock, domain_config, redis_url=redis.url)) as http:
            redis.stop_process()
            down = await http.post(GRAPHQL, json={"extensions": persisted(sha)}, headers=headers)
            redis.start()
            back = await http.post(GRAPHQL, json={"extensions": persisted(sha)}, headers=headers)
    finally:
        redis.stop()

    assert down.status_code == 503
    assert down.json()["errors"][0]["extensions"]["code"] == "SERVICE_UNAVAILABLE"
    assert back.status_code == 200
    assert back.json() == {"data": {"viewer": {"id": str(principals.owner_id)}}}
