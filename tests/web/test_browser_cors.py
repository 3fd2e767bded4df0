"""Headless Chromium (Debian's, driven by Playwright) on pages served from other
loopback origins than the API: CORS as SPEC section 7 says."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.live_server import LiveServer
from tests.support.tools import CHROMIUM_ARGS, chromium_path

pytestmark = pytest.mark.slow

# Runs in the page: a query, then a mutation twice with one Idempotency-Key,
# reading the headers the API exposes.
QUERY_AND_MUTATION = """
async ({ url, token, key }) => {
  const headers = { 'Content-Type': 'application/json', Authorization: `Bearer ${token}` };
  const query = await fetch(url, {
    method: 'POST', headers, body: JSON.stringify({ query: '{ account { id name } }' }),
  });
  const mutation = JSON.stringify({
    query: 'mutation { createApiToken(name: "From a page") { apiToken { id } errors { code } } }',
  });
  const withKey = { ...headers, 'Idempotency-Key': key };
  const first = await fetch(url, { method: 'POST', headers: withKey, body: mutation });
  const again = await fetch(url, { method: 'POST', headers: withKey, body: mutation });
  return {
    query: { status: query.status, requestId: query.headers.get('X-Request-ID'),
             body: await query.json() },
    first: { status: first.status, requestId: first.headers.get('X-Request-ID'),
             replayed: first.headers.get('Idempotent-Replayed'), body: await first.json() },
    again: { status: again.status, replayed: again.headers.get('Idempotent-Replayed'),
             body: await again.json() },
  };
}
"""

BLOCKED = """
async ({ url, token }) => {
  try {
    await fetch(url, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${token}` },
      body: JSON.stringify({
        query: 'mutation { createApiToken(name: "Blocked") { errors { code } } }',
      }),
    });
    return 'read the answer';
  } catch (error) {
    return `blocked: ${error.name}`;
  }
}
"""


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    executable = chromium_path()
    from playwright.sync_api import sync_playwright  # noqa: PLC0415 - needs the check first

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(executable), args=CHROMIUM_ARGS, headless=True
        )
        yield launched
        launched.close()


def api_token_names(server: LiveServer) -> list[str]:
    request = urllib.request.Request(
        server.graphql_url,
        data=json.dumps({"query": "{ account { apiTokens { name } } }"}).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {server.token}"},
    )
    with urllib.request.urlopen(request, timeout=10) as reply:
        body = json.loads(reply.read())
    return [token["name"] for token in body["data"]["account"]["apiTokens"]]


def run_in_page(browser: Any, origin: str, script: str, **arguments: str) -> Any:
    page = browser.new_page()
    try:
        page.goto(f"{origin}/")
        return page.evaluate(script, arguments)
    finally:
        page.close()


def test_given_an_allowed_origin_when_its_page_calls_the_api_then_query_and_mutation_work(
    browser, servers, sites
):
    server = servers["cors"]

    result = run_in_page(
        browser,
        sites["allowed"].origin,
        QUERY_AND_MUTATION,
        url=server.graphql_url,
        token=server.token,
        key="browser-key-1",
    )

    assert result["query"]["status"] == 200
    assert result["query"]["body"] == {
        "data": {"account": {"id": server.account.account_id, "name": "Web Clients"}}
    }
    assert len(result["query"]["requestId"]) >= 8
    assert result["first"]["status"] == 200
    assert result["first"]["body"]["data"]["createApiToken"]["errors"] == []
    assert result["first"]["replayed"] is None
    assert result["first"]["requestId"] not in (None, result["query"]["requestId"])
    assert result["again"]["replayed"] == "true"
    assert result["again"]["body"] == result["first"]["body"]
    assert api_token_names(server).count("From a page") == 1


def test_given_an_origin_not_allowed_when_its_page_calls_the_api_then_the_browser_blocks_it(
    browser, servers, sites
):
    server = servers["cors"]

    outcome = run_in_page(
        browser, sites["foreign"].origin, BLOCKED, url=server.graphql_url, token=server.token
    )

    assert outcome == "blocked: TypeError"
    assert "Blocked" not in api_token_names(server)


def test_given_no_cors_setting_when_a_page_on_another_origin_calls_the_api_then_it_is_blocked(
    browser, servers, sites
):
    server = servers["default"]

    outcome = run_in_page(
        browser, sites["allowed"].origin, BLOCKED, url=server.graphql_url, token=server.token
    )

    assert outcome == "blocked: TypeError"
    assert "Blocked" not in api_token_names(server)
