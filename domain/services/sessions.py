"""Sessions: opaque bearer tokens, stored as hashes, valid for a fixed time."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from domain import config
from domain.models import Session, User
from domain.security import random_token, token_hash
from domain.uow import UnitOfWork


@dataclass(frozen=True)
class SessionGrant:
    token: str
    user: User
    expires_at: datetime


async def start_session(work: UnitOfWork, *, user: User) -> SessionGrant:
    token = random_token(32)
    expires_at = work.now + config.current().session_ttl
    await Session.create(
        account_id=user.account_id,
        user_id=user.id,
        token_hash=token_hash(token),
        created_at=work.now,
        expires_at=expires_at,
        using_db=work.connection,
    )
    return SessionGrant(token=token, user=user, expires_at=expires_at)
