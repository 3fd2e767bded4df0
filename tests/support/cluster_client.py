"""Driving a `tests.support.cluster.Cluster` from a test: the tools it needs, and a GraphQL
client that spreads its requests over the cluster's API processes."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.support.local_services import find_postgres_bindir, find_redis_server


def require_cluster_tools() -> None:
    """Skip the test when this machine cannot start a cluster."""
    if find_postgres_bindir() is None:
        pytest.skip("PostgreSQL server binaries (initdb, postgres) not installed")
    if find_redis_server() is None:
        pytest.skip("redis-server not installed")
    pytest.importorskip("aiosmtpd", reason="aiosmtpd (dev dependency) not installed")


class GraphQLClient:
    """Sends each request to the next API process in turn."""

    def __init__(self, client: httpx.Client, urls: list[str]) -> None:
        self.client = client
        self.urls = urls
        self.sent: dict[str, int] = dict.fromkeys(urls, 0)
        self._next = 0

    def raw(
        self, query: str, variables: dict[str, Any] | None = None, *, token: str | None = None
    ) -> dict[str, Any]:
        url = self.urls[self._next % len(self.urls)]
        self._next += 1
        self.sent[url] += 1
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        response = self.client.post(
            url, json={"query": query, "variables": variables or {}}, headers=headers
        )
        assert response.status_code == 200, (url, response.status_code, response.text)
        body: dict[str, Any] = response.json()
        return body

    def query(
        self, query: str, variables: dict[str, Any] | None = None, *, token: str | None = None
    ) -> dict[str, Any]:
        body = self.raw(query, variables, token=token)
        assert not body.get("errors"), body
        data: dict[str, Any] = body["data"]
        return data

    def mutate(
        self,
        field: str,
        query: str,
        variables: dict[str, Any] | None = None,
        *,
        token: str | None = None,
    ) -> dict[str, Any]:
        """The payload of ``field``, whose ``errors`` must be empty."""
        payload: dict[str, Any] = self.query(query, variables, token=token)[field]
        assert payload["errors"] == [], payload
        return payload
