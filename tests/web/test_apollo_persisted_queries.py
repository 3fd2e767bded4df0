"""Apollo Client's automatic persisted queries link against live servers: the
APQ protocol (miss, hash + document, hit; GET for hashed queries), a hash
that is not the document's, and the allowlist mode."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from api.persisted_queries import MANIFEST_FORMAT, sha256_hex
from tests.support.live_server import Account, LiveServer
from tests.support.tools import run_node

pytestmark = pytest.mark.slow

LISTED = "query Listed { account { id name } }"


@pytest.fixture(scope="module")
def allowlist_server(web_dir: Path, account: Account, node_modules: Path) -> Iterator[LiveServer]:
    """A server in allowlist mode whose manifest holds LISTED as Apollo sends it."""
    body = run_node("apollo.mjs", "-", "print", LISTED, token="")["body"]
    manifest = web_dir / "operations.json"
    manifest.write_text(
        json.dumps(
            {
                "format": MANIFEST_FORMAT,
                "version": 1,
                "operations": [
                    {"id": sha256_hex(body), "name": "Listed", "type": "query", "body": body}
                ],
            }
        )
    )
    server = LiveServer(
        web_dir / "allowlist",
        account,
        PERSISTED_QUERIES="allowlist",
        PERSISTED_QUERIES_MANIFEST=str(manifest),
    )
    with server:
        yield server


def test_given_apq_when_apollo_queries_then_a_miss_is_followed_by_the_document_and_later_hits(
    servers, node_modules
):
    server = servers["cors"]

    report = run_node("apollo.mjs", server.graphql_url, "apq", token=server.token)["steps"]

    expected = {"account": {"id": server.account.account_id, "name": "Web Clients"}}
    for step in ("first", "second", "get"):
        assert report[step]["error"] is None, report
        data = report[step]["data"]
        assert {"account": {k: v for k, v in data["account"].items() if k != "__typename"}} == (
            expected
        )
    miss, sent = report["firstRequests"]
    assert (miss["withDocument"], miss["codes"]) == (False, ["PERSISTED_QUERY_NOT_FOUND"])
    assert (sent["withDocument"], sent["codes"], sent["hash"]) == (True, [], miss["hash"])
    [hit] = report["secondRequests"]
    assert (hit["withDocument"], hit["status"], hit["codes"]) == (False, 200, [])
    [get] = report["getRequests"]
    assert (get["method"], get["withDocument"], get["status"]) == ("GET", False, 200)


def test_given_a_hash_that_is_not_the_documents_when_apollo_sends_both_then_it_is_refused(
    servers, node_modules
):
    server = servers["cors"]

    report = run_node("apollo.mjs", server.graphql_url, "mismatch", token=server.token)["steps"]

    assert report["first"]["data"] is None
    assert report["first"]["error"]["codes"] == ["INVALID_INPUT"]
    miss, refused = report["firstRequests"]
    assert miss["codes"] == ["PERSISTED_QUERY_NOT_FOUND"]
    assert (refused["withDocument"], refused["status"]) == (True, 400)


def test_given_allowlist_mode_when_apollo_sends_documents_then_only_the_manifests_run(
    allowlist_server,
):
    server = allowlist_server

    report = run_node("apollo.mjs", server.graphql_url, "allowlist", LISTED, token=server.token)[
        "steps"
    ]

    assert report["listed"]["error"] is None, report
    assert report["listed"]["data"]["account"]["id"] == server.account.account_id
    [listed] = report["listedRequests"]
    assert (listed["withDocument"], listed["status"]) == (False, 200)
    assert report["other"]["data"] is None
    assert report["other"]["error"]["codes"] == ["PERSISTED_QUERY_REQUIRED"]
    assert [r["codes"] for r in report["otherRequests"]] == [["PERSISTED_QUERY_REQUIRED"]]
