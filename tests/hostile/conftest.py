"""Fixtures of the hostile tests: the API layer's app, client and principals, reused.

tests/api/conftest.py builds the real ASGI app on the test database (the `db`
fixture has initialised Tortoise; httpx's ASGITransport sends no lifespan) and
two accounts with a bearer token per role. Importing its fixtures here makes
them available to tests/hostile as well.
"""

from __future__ import annotations

from tests.api.conftest import (  # noqa: F401 - fixtures, used by name
    app,
    cheap_password_hashing,
    client,
    principals,
)
