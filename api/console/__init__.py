"""The web console: the product's users page (Profiles, Users), at / and /accept-invitation.

The page is plain ES modules and CSS under `static/`, with no build step. It
talks to the service only through the public `/graphql` endpoint, sending the
operations of `operations.graphql` by their hash (see `api.console.manifest`,
which writes them into `static/operations.js` and the shipped persisted-query
manifest).

At start-up every asset is read once and named after a hash of its content
(`app.3f2a….js`), so it can be cached for a year: a changed file gets a new
name. Modules import each other by relative names (`./api.js`); those imports
are rewritten to the hashed names before the importing module's own hash is
computed, so a change anywhere renames every module that depends on it. The
HTML pages are never cached (`no-cache`) and carry a strict
Content-Security-Policy: scripts, styles and requests from this origin only,
no inline script or style, no framing.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

STATIC_DIR = Path(__file__).with_name("static")
PAGE_TEMPLATE = "index.html"
ENTRY_MODULE = "app.js"
HASH_LENGTH = 12

CONTENT_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "connect-src 'self'",
        "font-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "require-trusted-types-for 'script'",
        "trusted-types 'none'",
    ]
)
PAGE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "Cache-Control": "no-cache",
    # The invitation link carries its token in the query string: never send it on.
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=()",
}
ASSET_HEADERS = {"Cache-Control": "public, max-age=31536000, immutable"}

# `import … from "./name.js"`, `import "./name.js"`, `export … from "./name.js"`.
_IMPORT = re.compile(r"""(\bfrom\s*|\bimport\s*)(["'])\./([A-Za-z0-9_-]+\.js)\2""")
_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z0-9_.-]+)\s*\}\}")


@dataclass(frozen=True)
class Asset:
    name: str  # the hashed name, e.g. app.3f2a9c1b7d0e.js
    content: bytes
    content_type: str


def _hashed_name(source: str, content: bytes) -> str:
    digest = hashlib.sha256(content).hexdigest()[:HASH_LENGTH]
    stem, dot, suffix = source.rpartition(".")
    return f"{stem}.{digest}{dot}{suffix}"


class ConsoleAssets:
    """Every file of `static/` under its content-hashed name, and the page."""

    def __init__(self, directory: Path = STATIC_DIR) -> None:
        self.directory = directory
        self.by_source: dict[str, Asset] = {}
        sources = sorted(
            path.name
            for path in directory.iterdir()
            if path.is_file() and path.suffix in CONTENT_TYPES
        )
        for source in sources:
            self._build(source, ())
        self.by_name = {asset.name: asset for asset in self.by_source.values()}
        self.page = self._render_page()

    def _build(self, source: str, importing: tuple[str, ...]) -> Asset:
        built = self.by_source.get(source)
        if built is not None:
            return built
        if source in importing:
            raise ValueError(f"console modules import each other in a cycle: {importing}")
        path = self.directory / source
        if not path.is_file():
            raise ValueError(f"console module {importing[-1]} imports a missing ./{source}")
        content = path.read_bytes()
        if path.suffix == ".js":

            def hashed_import(match: re.Match[str]) -> str:
                imported = self._build(match.group(3), (*importing, source))
                return f"{match.group(1)}{match.group(2)}./{imported.name}{match.group(2)}"

            content = _IMPORT.sub(hashed_import, content.decode("utf-8")).encode("utf-8")
        asset = Asset(_hashed_name(source, content), content, CONTENT_TYPES[path.suffix])
        self.by_source[source] = asset
        return asset

    def url(self, source: str) -> str:
        return f"/assets/{self.by_source[source].name}"

    def _render_page(self) -> bytes:
        template = (self.directory / PAGE_TEMPLATE).read_text(encoding="utf-8")
        preloads = "\n  ".join(
            f'<link rel="modulepreload" href="{self.url(source)}">'
            for source in sorted(self.by_source)
            if source.endswith(".js") and source != ENTRY_MODULE
        )

        def fill(match: re.Match[str]) -> str:
            key = match.group(1)
            if key == "modulepreloads":
                return preloads
            return self.url(key)

        return _PLACEHOLDER.sub(fill, template).encode("utf-8")


def console_routes(assets: ConsoleAssets | None = None) -> list[Route]:
    """GET / and /accept-invitation (the same page; the script shows the right
    view) and GET /assets/<hashed name>."""
    built = assets or ConsoleAssets()

    async def page(_: Request) -> Response:
        return Response(built.page, media_type="text/html; charset=utf-8", headers=PAGE_HEADERS)

    async def asset(request: Request) -> Response:
        found = built.by_name.get(request.path_params["name"])
        if found is None:
            return PlainTextResponse("Not found", status_code=404)
        return Response(found.content, media_type=found.content_type, headers=ASSET_HEADERS)

    return [
        Route("/", page, methods=["GET"]),
        Route("/accept-invitation", page, methods=["GET"]),
        Route("/assets/{name:str}", asset, methods=["GET"]),
    ]
