"""The console's files without a browser: the generated operations never drift
from operations.graphql, every operation the page calls exists, assets are
named by their content and cached for a year, pages carry the CSP."""

from __future__ import annotations

import hashlib
import json
import re

import httpx
import pytest
from starlette.applications import Starlette

from api.console import CONTENT_SECURITY_POLICY, STATIC_DIR, ConsoleAssets, console_routes
from api.console.manifest import manifest_text, module_text, read_operations
from api.persisted_queries import SHIPPED_MANIFEST, load_manifest


def test_the_committed_manifest_and_module_are_what_the_generator_writes():
    operations = read_operations()  # also validates them against the served schema

    assert SHIPPED_MANIFEST.read_text(encoding="utf-8") == manifest_text(operations), (
        "api/persisted_operations.json is stale: run python -m api.console.manifest"
    )
    assert (STATIC_DIR / "operations.js").read_text(encoding="utf-8") == module_text(operations), (
        "api/console/static/operations.js is stale: run python -m api.console.manifest"
    )
    shipped = load_manifest(SHIPPED_MANIFEST, variable="PERSISTED_QUERIES")
    assert {op.name for op in shipped.values()} == {op.name for op in operations}


def test_every_operation_the_page_names_is_generated_and_every_generated_one_is_used():
    names = {op.name for op in read_operations()}
    source = "\n".join(
        path.read_text(encoding="utf-8")
        for path in STATIC_DIR.glob("*.js")
        if path.name != "operations.js"
    )
    used = set(re.findall(r'"(Console[A-Za-z]+)"', source))

    assert used - names == set()
    assert names - used == set()


def test_assets_are_named_by_their_content_and_imports_point_at_hashed_names():
    assets = ConsoleAssets()

    for source, asset in assets.by_source.items():
        stem, _, suffix = source.rpartition(".")
        digest = hashlib.sha256(asset.content).hexdigest()[:12]
        assert asset.name == f"{stem}.{digest}.{suffix}"
        if suffix == "js":
            text = asset.content.decode()
            imported = re.findall(r'from "\./([^"]+)"', text)
            assert all(name in assets.by_name for name in imported), (source, imported)
    page = assets.page.decode()
    assert f'src="{assets.url("app.js")}"' in page
    assert f'href="{assets.url("console.css")}"' in page
    assert "{{" not in page
    assert "<script>" not in page and "style=" not in page


@pytest.fixture
def client():
    app = Starlette(routes=console_routes())
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://console")


@pytest.mark.anyio
@pytest.mark.parametrize("path", ["/", "/accept-invitation?token=abc"])
async def test_pages_are_never_cached_and_carry_a_strict_policy(client, path):
    async with client:
        answer = await client.get(path)

    assert answer.status_code == 200
    assert answer.headers["content-type"] == "text/html; charset=utf-8"
    assert answer.headers["cache-control"] == "no-cache"
    assert answer.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    for directive in (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "frame-ancestors 'none'",
        "object-src 'none'",
        "base-uri 'none'",
    ):
        assert directive in CONTENT_SECURITY_POLICY
    assert "unsafe" not in CONTENT_SECURITY_POLICY
    assert answer.headers["referrer-policy"] == "no-referrer"
    assert answer.headers["x-frame-options"] == "DENY"


@pytest.mark.anyio
async def test_assets_are_immutable_for_a_year_and_unknown_names_are_404(client):
    assets = ConsoleAssets()
    async with client:
        script = await client.get(assets.url("app.js"))
        style = await client.get(assets.url("console.css"))
        stale = await client.get("/assets/app.000000000000.js")

    assert script.status_code == 200
    assert script.headers["content-type"] == "text/javascript; charset=utf-8"
    assert script.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert script.content == assets.by_source["app.js"].content
    assert style.headers["content-type"] == "text/css; charset=utf-8"
    assert stale.status_code == 404


def test_the_manifest_is_apollos_format_with_one_entry_per_operation():
    manifest = json.loads(SHIPPED_MANIFEST.read_text(encoding="utf-8"))

    assert manifest["format"] == "apollo-persisted-query-manifest"
    assert manifest["version"] == 1
    for entry in manifest["operations"]:
        assert entry["id"] == hashlib.sha256(entry["body"].encode()).hexdigest()
        assert entry["name"].startswith("Console")
