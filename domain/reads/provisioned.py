"""The users a SCIM provider sees: the account's users that are not
deprovisioned, filtered in SQL, one page at a time (startIndex/count)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from tortoise.expressions import F, Q
from tortoise.functions import Coalesce

from domain.enums import ApiTokenScope
from domain.errors import DomainError, ErrorCode
from domain.models import User
from domain.principal import MAX_ID, Principal, require_admin, require_scope
from domain.rules.seats import LICENSED_STATUSES


class Attribute(StrEnum):
    """The attributes a filter may name, by their SCIM names."""

    ID = "id"
    USER_NAME = "userName"
    EXTERNAL_ID = "externalId"
    EMAIL = "emails.value"
    GIVEN_NAME = "name.givenName"
    FAMILY_NAME = "name.familyName"
    TITLE = "title"
    ACTIVE = "active"


class Operator(StrEnum):
    EQ = "eq"
    NE = "ne"
    CO = "co"
    SW = "sw"
    EW = "ew"
    PR = "pr"


@dataclass(frozen=True, slots=True)
class Match:
    attribute: Attribute
    operator: Operator
    value: Any = None


@dataclass(frozen=True, slots=True)
class AllOf:
    terms: Sequence[Criterion]


@dataclass(frozen=True, slots=True)
class AnyOf:
    terms: Sequence[Criterion]


@dataclass(frozen=True, slots=True)
class Negation:
    term: Criterion


Criterion = Match | AllOf | AnyOf | Negation

# Case-insensitive attributes compare their lower-cased key columns.
_COLUMNS = {
    Attribute.USER_NAME: "user_name_key",
    Attribute.EMAIL: "email_key",
    Attribute.EXTERNAL_ID: "external_id",
    Attribute.GIVEN_NAME: "first_name",
    Attribute.FAMILY_NAME: "last_name",
    Attribute.TITLE: "qualification",
}
_LOWERED = {Attribute.USER_NAME, Attribute.EMAIL}
_SUFFIX = {
    Operator.EQ: "",
    Operator.CO: "__icontains",
    Operator.SW: "__istartswith",
    Operator.EW: "__iendswith",
}


@dataclass(frozen=True, slots=True)
class UsersPage:
    total: int
    users: list[User]


async def list_provisioned(
    *, actor: Principal, criterion: Criterion | None, start_index: int, count: int
) -> UsersPage:
    """Users matching the filter, by id; start_index is 1-based (RFC 7644 3.4.2.4)."""
    require_scope(actor, ApiTokenScope.SCIM)
    require_admin(actor)
    query = User.filter(account_id=actor.account_id, deprovisioned_at__isnull=True).annotate(
        # The expression of the users_scim_user_name index, so `userName eq`
        # is one index look-up.
        user_name_key=Coalesce(F("scim_user_name_key"), F("email_key"))
    )
    if criterion is not None:
        query = query.filter(_q(criterion))
    total = await query.count()
    if count <= 0:
        return UsersPage(total=total, users=[])
    # The page's ids first (an index walk, however deep startIndex goes),
    # then only those rows.
    ids = (
        await query.order_by("id")
        .offset(max(start_index, 1) - 1)
        .limit(count)
        .values_list("id", flat=True)
    )
    users = await User.filter(id__in=list(ids)).order_by("id") if ids else []
    return UsersPage(total=total, users=list(users))


def _q(criterion: Criterion) -> Q:
    if isinstance(criterion, AllOf):
        return Q(*[_q(term) for term in criterion.terms], join_type=Q.AND)
    if isinstance(criterion, AnyOf):
        return Q(*[_q(term) for term in criterion.terms], join_type=Q.OR)
    if isinstance(criterion, Negation):
        return ~_q(criterion.term)
    return _match(criterion)


def _refused(message: str) -> DomainError:
    return DomainError(ErrorCode.INVALID_INPUT, message, field="filter")


def _null(column: str, *, null: bool) -> Q:
    lookup: dict[str, Any] = {f"{column}__isnull": null}
    return Q(**lookup)


def _match(match: Match) -> Q:
    if match.attribute == Attribute.ACTIVE:
        return _active(match)
    if match.attribute == Attribute.ID:
        return _id(match)
    column = _COLUMNS[match.attribute]
    if match.operator == Operator.PR:
        return _null(column, null=False) & ~Q(**{column: ""})
    if not isinstance(match.value, str):
        raise _refused(f"{match.attribute.value} compares with a string.")
    value = match.value.lower() if match.attribute in _LOWERED else match.value
    if match.operator == Operator.NE:
        return ~Q(**{column: value}) | _null(column, null=True)
    if match.operator == Operator.EQ and match.attribute not in _LOWERED:
        # SCIM compares strings case-insensitively unless caseExact.
        return Q(**{f"{column}__iexact": value})
    return Q(**{f"{column}{_SUFFIX[match.operator]}": value})


def _active(match: Match) -> Q:
    licensed = Q(status__in=list(LICENSED_STATUSES))
    if match.operator == Operator.PR:
        return Q(id__isnull=False)
    if not isinstance(match.value, bool) or match.operator not in (Operator.EQ, Operator.NE):
        raise _refused("active compares with eq or ne and true or false.")
    wanted = match.value if match.operator == Operator.EQ else not match.value
    return licensed if wanted else ~licensed


def _id(match: Match) -> Q:
    if match.operator == Operator.PR:
        return Q(id__isnull=False)
    text = str(match.value).strip()
    known = text.isascii() and text.isdigit() and len(text) <= 10 and int(text) <= MAX_ID
    if match.operator == Operator.EQ:
        return Q(id=int(text)) if known else Q(id__isnull=True)
    if match.operator == Operator.NE:
        return ~Q(id=int(text)) if known else Q(id__isnull=False)
    raise _refused("id compares with eq or ne.")
