"""graphql-http's audit of the GraphQL-over-HTTP specification, against a live
development server (introspection on: several audits query __type)."""

from __future__ import annotations

import time

import pytest

from tests.support.tools import run_node

pytestmark = pytest.mark.slow


def test_given_a_live_server_when_graphql_http_audits_it_then_every_audit_passes(
    servers, node_modules
):
    server = servers["default"]

    started = time.monotonic()
    report = run_node("audit.mjs", server.graphql_url, token=server.token)
    print(f"graphql-http audit: {report} in {time.monotonic() - started:.1f}s")

    assert report["notOk"] == []
    assert (report["warn"], report["error"]) == (0, 0)
    assert report["ok"] == report["total"] >= 61
