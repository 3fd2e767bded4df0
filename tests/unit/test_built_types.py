"""The GraphQL objects built without their dataclass __init__ (schema.fields.built)
hold exactly their type's fields: one left out would fail only when read."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

from domain.enums import ActorKind, InvitationStatus, Role, UserStatus
from domain.principal import Principal
from domain.reads.pages import Edge as PageEdge
from domain.reads.rows import InvitationRow, UserRow
from schema.hidden import HIDDEN
from schema.types.users import Invitation, User, UserEdge

NOW = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)
ROW = UserRow(
    7, 1, "ada@example.com", "Ada", "Lee", "ada lee", Role.MEMBER, None,
    UserStatus.ENABLED, NOW, None,
)  # fmt: skip
INVITATION = InvitationRow(
    3, 7, InvitationStatus.ACCEPTED, "ada@example.com", NOW, NOW, NOW, NOW, None, 1, None
)
ADMIN = Principal(account_id=1, kind=ActorKind.API_TOKEN, role=Role.ADMIN, token_id=1)
OTHER_MEMBER = Principal(account_id=1, kind=ActorKind.USER, role=Role.MEMBER, user_id=8)


def _field_names(cls: type) -> set[str]:
    """What the dataclass __init__ sets (resolver fields are not init fields)."""
    return {field.name for field in dataclasses.fields(cls) if field.init}


def test_a_user_holds_every_field_of_its_type_and_no_other() -> None:
    # given a user row, when it becomes a GraphQL User
    user = User.from_model(ROW, ADMIN, invitation=INVITATION)

    # then its attributes are the type's fields, with the row's values
    assert set(vars(user)) == _field_names(User)
    assert (user.id, user.name, user.is_owner, user.has_license) == ("7", "Ada Lee", False, True)


def test_a_user_read_by_another_member_holds_hidden_private_fields() -> None:
    # given a MEMBER reading someone else
    user = User.from_model(ROW, OTHER_MEMBER)

    # then the private fields hold HIDDEN, the public ones their values
    assert set(vars(user)) == _field_names(User)
    assert [user.status, user.qualification, user.has_license] == [HIDDEN, HIDDEN, HIDDEN]
    assert user.email == "ada@example.com"


def test_an_invitation_holds_every_field_of_its_type() -> None:
    invitation = Invitation.from_model(INVITATION)

    assert set(vars(invitation)) == _field_names(Invitation)
    assert (invitation.id, invitation.delivery_attempts) == ("3", 1)


def test_an_edge_holds_its_node_and_its_position() -> None:
    # given a page edge, when the page's edges are built
    page_edge = PageEdge(ROW, ("NAME_ASC", "ada lee", 7))

    class Page:
        edges = [page_edge]
        has_next_page = False

    [edge] = UserEdge.along(Page(), lambda row: User.from_model(row, ADMIN))  # type: ignore[arg-type]

    assert set(vars(edge)) == _field_names(UserEdge)
    assert edge.node.id == "7"
    assert edge._edge is page_edge
