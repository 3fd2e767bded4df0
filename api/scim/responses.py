"""application/scim+json responses."""

from __future__ import annotations

import json
from typing import Any

from starlette.responses import Response

MEDIA_TYPE = "application/scim+json"


def scim_response(
    body: Any, *, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    return Response(
        json.dumps(body, ensure_ascii=False, separators=(",", ":")),
        status_code=status,
        media_type=MEDIA_TYPE,
        headers=headers,
    )
