"""Webhook signing secrets: generated here, stored only encrypted.

The key is derived from SECRET_KEY (HKDF-SHA256, its own label), which is
not in the database: a dump alone holds ciphertext and cannot sign. AES-GCM
binds each ciphertext to its endpoint id, so one endpoint's secret pasted on
another does not decrypt. Changing SECRET_KEY makes every stored secret
unreadable: rotate each endpoint's secret afterwards.
"""

from __future__ import annotations

import base64
import secrets
from functools import lru_cache

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from domain import config

SECRET_PREFIX = "whsec_"
_NONCE_BYTES = 12


def new_webhook_secret() -> str:
    """A Standard Webhooks secret: whsec_ and base64 of 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode("ascii")


@lru_cache(maxsize=4)
def _cipher(secret_key: bytes) -> AESGCM:
    key = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"licenses-users webhook secrets"
    ).derive(secret_key)
    return AESGCM(key)


def encrypt_secret(secret: str, *, endpoint_id: int) -> str:
    nonce = secrets.token_bytes(_NONCE_BYTES)
    sealed = _cipher(config.current().secret_key).encrypt(
        nonce, secret.encode("utf-8"), f"endpoint:{endpoint_id}".encode()
    )
    return base64.b64encode(nonce + sealed).decode("ascii")


def decrypt_secret(stored: str, *, endpoint_id: int) -> str:
    raw = base64.b64decode(stored)
    opened = _cipher(config.current().secret_key).decrypt(
        raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], f"endpoint:{endpoint_id}".encode()
    )
    return opened.decode("utf-8")
