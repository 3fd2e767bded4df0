"""Tortoise models of the licence policies: the reclaim policy, its notices,
and the renewal notice sent for a period.

Kept apart from domain.models (one app, "models", spans both modules) so
that each file has one topic. The guarantees the database gives:
- one reclaim policy per account (unique account);
- one reclaim notice per user and inactivity window (unique user +
  inactive_since), the judge when two job runs notice the same user;
- one renewal notice per account and period (unique account + period_index).
"""

from __future__ import annotations

from typing import Any

from tortoise import fields
from tortoise.models import Model

from domain.models import Account, User


class ReclaimPolicy(Model):
    id = fields.IntField(primary_key=True)
    account: fields.ForeignKeyRelation[Account] = fields.ForeignKeyField(
        "models.Account", related_name=False, on_delete=fields.RESTRICT
    )
    account_id: int
    enabled = fields.BooleanField(default=False)
    inactive_days = fields.IntField()
    notice_days = fields.IntField()
    exempt_admins = fields.BooleanField(default=True)
    # User ids of the account, checked when the policy is set.
    exempt_user_ids: Any = fields.JSONField(default=list)
    # Bumped by every change: a job run that planned under another version
    # releases nobody (it plans again on its next run).
    version = fields.IntField(default=1)
    updated_at = fields.DatetimeField()

    class Meta:
        table = "reclaim_policies"
        unique_together = (("account",),)


class ReclaimNotice(Model):
    id = fields.BigIntField(primary_key=True)
    account: fields.ForeignKeyRelation[Account] = fields.ForeignKeyField(
        "models.Account", related_name=False, on_delete=fields.RESTRICT
    )
    account_id: int
    user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "models.User", related_name=False, on_delete=fields.RESTRICT
    )
    user_id: int
    # The window: the later of last activity and the assignment's start, as
    # the job saw it. Activity moves it, so a new window gets a new notice.
    inactive_since = fields.DatetimeField()
    release_at = fields.DatetimeField()
    created_at = fields.DatetimeField()

    class Meta:
        table = "reclaim_notices"
        unique_together = (("user", "inactive_since"),)


class RenewalNotice(Model):
    id = fields.BigIntField(primary_key=True)
    account: fields.ForeignKeyRelation[Account] = fields.ForeignKeyField(
        "models.Account", related_name=False, on_delete=fields.RESTRICT
    )
    account_id: int
    # The period whose end the notice announces.
    period_index = fields.IntField()
    created_at = fields.DatetimeField()

    class Meta:
        table = "renewal_notices"
        unique_together = (("account", "period_index"),)
