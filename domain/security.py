"""Secrets: random tokens, their stored hashes, passwords and invitation tokens.

Session and API-token secrets carry 256 random bits, so a plain SHA-256 is a
sufficient stored form (nothing to brute-force) and allows an indexed look-up.
Passwords are low-entropy and get Argon2id.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from contextlib import suppress
from functools import lru_cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from domain import config

API_TOKEN_PREFIX = "lic_"
MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 256


def random_token(n_bytes: int = 32) -> str:
    """URL-safe text (A-Z a-z 0-9 - _) carrying n_bytes of randomness."""
    return secrets.token_urlsafe(n_bytes)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_api_token_secret() -> str:
    return API_TOKEN_PREFIX + random_token(32)


def invitation_token(invitation_id: int, version: int) -> str:
    """The secret of an invitation, derived so that the database never holds it.

    A resend bumps the version: the new token differs and the old one's hash
    no longer matches any row.
    """
    digest = hmac.new(
        config.current().secret_key,
        f"invitation:{invitation_id}:{version}".encode(),
        hashlib.sha256,
    ).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


@lru_cache(maxsize=1)
def _hasher() -> PasswordHasher:
    # argon2-cffi's defaults are RFC 9106's low-memory profile: Argon2id,
    # t=3, m=64 MiB, p=4.
    return PasswordHasher()


def hash_password(password: str) -> str:
    return _hasher().hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """Constant work whether or not there is a hash, so timing reveals nothing."""
    if password_hash is None:
        _burn(password)
        return False
    try:
        return _hasher().verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    return _hasher().hash(random_token(16))


def _burn(password: str) -> None:
    with suppress(VerificationError, InvalidHashError):
        _hasher().verify(_dummy_hash(), password)


def constant_time_equals(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode("utf-8"), b.encode("utf-8"))
