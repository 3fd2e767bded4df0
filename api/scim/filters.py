"""A SCIM filter (parsed by scim2-models) as the domain's user criteria,
which the read turns into SQL."""

from __future__ import annotations

from scim2_models import ScimFilter
from scim2_models.path.expressions import (
    AttrPath,
    CompareOperator,
    Comparison,
    FilterNode,
    LogicalExpr,
    LogicalOperator,
    Not,
    Present,
    ValuePath,
)

from api.scim.errors import ScimRefusal
from domain.reads.provisioned import AllOf, AnyOf, Attribute, Criterion, Match, Negation, Operator

CORE_USER = "urn:ietf:params:scim:schemas:core:2.0:User"

_ATTRIBUTES = {
    "id": Attribute.ID,
    "username": Attribute.USER_NAME,
    "externalid": Attribute.EXTERNAL_ID,
    "emails": Attribute.EMAIL,
    "emails.value": Attribute.EMAIL,
    "name.givenname": Attribute.GIVEN_NAME,
    "name.familyname": Attribute.FAMILY_NAME,
    "title": Attribute.TITLE,
    "active": Attribute.ACTIVE,
}
_OPERATORS = {
    CompareOperator.eq: Operator.EQ,
    CompareOperator.ne: Operator.NE,
    CompareOperator.co: Operator.CO,
    CompareOperator.sw: Operator.SW,
    CompareOperator.ew: Operator.EW,
}
# Always true / never true, for the parts of `emails[...]` that describe
# our one email (the primary, of type work).
_ANY = Match(Attribute.ID, Operator.PR)
_NONE = Negation(_ANY)


def unsupported(what: str) -> ScimRefusal:
    return ScimRefusal(400, f"INVALID_INPUT: {what} is not supported in a filter.", "invalidFilter")


def criterion_of(text: str) -> Criterion:
    try:
        node = ScimFilter(text).ast
    except Exception:
        raise ScimRefusal(
            400, "INVALID_INPUT: the filter does not parse.", "invalidFilter"
        ) from None
    return _node(node, within_emails=False)


def _name(path: AttrPath) -> str:
    if path.uri is not None and path.uri.lower() != CORE_USER.lower():
        raise unsupported(f"{path.uri}:{path.attr}")
    return f"{path.attr}.{path.sub_attr}".lower() if path.sub_attr else path.attr.lower()


def _node(node: FilterNode, *, within_emails: bool) -> Criterion:
    if isinstance(node, LogicalExpr):
        terms = [_node(term, within_emails=within_emails) for term in node.terms]
        return AllOf(terms) if node.op == LogicalOperator.and_ else AnyOf(terms)
    if isinstance(node, Not):
        return Negation(_node(node.expr, within_emails=within_emails))
    if isinstance(node, ValuePath):
        if _name(node.attr_path) != "emails":
            raise unsupported(f"{node.attr_path.attr}[...]")
        return _node(node.val_filter, within_emails=True)
    if isinstance(node, Present):
        return _comparison(node.attr_path, None, None, within_emails=within_emails)
    if isinstance(node, Comparison):
        return _comparison(node.attr_path, node.op, node.value, within_emails=within_emails)
    raise unsupported(str(node))


def _comparison(
    path: AttrPath,
    op: CompareOperator | None,
    value: object,
    *,
    within_emails: bool,
) -> Criterion:
    name = _name(path)
    if within_emails:
        if name == "value":
            name = "emails.value"
        elif name in ("type", "primary"):
            return _email_detail(name, op, value)
        else:
            raise unsupported(f"emails.{name}")
    elif name in ("emails.type", "emails.primary"):
        return _email_detail(name.split(".")[1], op, value)
    attribute = _ATTRIBUTES.get(name)
    if attribute is None:
        raise unsupported(name)
    if op is None:
        return Match(attribute, Operator.PR)
    operator = _OPERATORS.get(op)
    if operator is None:
        raise unsupported(f"the operator {op.value}")
    return Match(attribute, operator, value)


def _email_detail(name: str, op: CompareOperator | None, value: object) -> Criterion:
    if op is None:
        return _ANY
    ours: object = "work" if name == "type" else True
    if isinstance(value, str):
        value, ours = value.lower(), str(ours)
    if op == CompareOperator.eq:
        return _ANY if value == ours else _NONE
    if op == CompareOperator.ne:
        return _NONE if value == ours else _ANY
    raise unsupported(f"the operator {op.value} on emails.{name}")
