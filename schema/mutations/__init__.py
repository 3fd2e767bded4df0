"""Mutations: unpack the input, call ONE domain service, wrap the result.

One module per topic (invitations, sessions, users, account); `Mutation`
joins them in the order the contract lists the fields.
"""

from __future__ import annotations

import strawberry

from schema.mutations.account import AccountMutations
from schema.mutations.invitations import InvitationMutations
from schema.mutations.reclaim import ReclaimMutations
from schema.mutations.sessions import SessionMutations
from schema.mutations.users import UserMutations
from schema.mutations.webhooks import WebhookMutations


@strawberry.type(description="Every change to the account.")
class Mutation(
    InvitationMutations,
    SessionMutations,
    UserMutations,
    AccountMutations,
    WebhookMutations,
    ReclaimMutations,
):
    pass


__all__ = ["Mutation"]
