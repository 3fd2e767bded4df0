"""Reads through the schema: pagination, filters, refusals, role visibility, batching."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import pytest

from domain import config
from domain.enums import ChargeKind, InvitationStatus, Role, UserOrder, UserStatus
from domain.models import Account, Charge, Invitation, User
from domain.principal import Principal
from tests.support.factories import add_user, make_account
from tests.support.principals import as_user, token_principal
from tests.support.schema_calls import codes, counting_statements, error_paths, execute

pytestmark = pytest.mark.anyio

T0 = datetime(2026, 1, 1, 9, 0, tzinfo=UTC)

USERS_PAGE = """
query Users($first: Int, $after: String, $order: UserOrder, $filter: UserFilter) {
  account {
    users(first: $first, after: $after, orderBy: $order, filter: $filter) {
      totalCount
      pageInfo { hasNextPage endCursor }
      edges { cursor node { id name status } }
    }
  }
}
"""


async def crowd(account_id: int) -> list[User]:
    """19 users with ties on every sort key and some never active (the owner makes 20)."""
    users = []
    for i in range(19):
        users.append(
            await add_user(
                account_id,
                # Names repeat (ties broken by id); lower-case letters only so that
                # every collation orders them the same way.
                first_name=f"user{i % 7:02d}",
                last_name="same",
                email=f"u{i}@example.com",
                # Creation times repeat in threes.
                created_at=T0 + timedelta(minutes=i // 3),
                # Every third never active; the others share times in pairs, and
                # one with microseconds.
                last_active_at=(
                    None
                    if i % 3 == 0
                    else T0 + timedelta(hours=i // 2, microseconds=500 if i == 5 else 0)
                ),
                status=UserStatus.INVITED if i % 4 == 0 else UserStatus.ENABLED,
            )
        )
    return users


def expected_order(users: list[User], order: UserOrder) -> list[int]:
    def name_key(u: User) -> tuple[object, ...]:
        return (u.sort_name, u.id)

    def created_key(u: User) -> tuple[object, ...]:
        return (u.created_at, u.id)

    def active_key(u: User) -> tuple[object, ...]:
        # Never active first in ASC (and therefore last in DESC).
        return (u.last_active_at is not None, u.last_active_at or T0, u.id)

    key = {
        UserOrder.NAME_ASC: name_key,
        UserOrder.NAME_DESC: name_key,
        UserOrder.CREATED_ASC: created_key,
        UserOrder.CREATED_DESC: created_key,
        UserOrder.LAST_ACTIVE_ASC: active_key,
        UserOrder.LAST_ACTIVE_DESC: active_key,
    }[order]
    return [u.id for u in sorted(users, key=key, reverse=order.value.endswith("DESC"))]


async def walk(principal: Principal, clock, *, first: int, order: UserOrder, filter=None):
    """Every page of account.users; returns (ids in order, pages, total counts)."""
    ids: list[int] = []
    pages = 0
    totals = set()
    after = None
    while True:
        result = await execute(
            USERS_PAGE, principal, clock, first=first, after=after, order=order.value, filter=filter
        )
        assert result.errors is None, result.errors
        connection = result.data["account"]["users"]
        pages += 1
        totals.add(connection["totalCount"])
        edges = connection["edges"]
        ids.extend(int(edge["node"]["id"]) for edge in edges)
        info = connection["pageInfo"]
        assert info["endCursor"] == (edges[-1]["cursor"] if edges else None)
        if not info["hasNextPage"]:
            return ids, pages, totals
        after = info["endCursor"]
        assert pages < 100


@pytest.mark.parametrize("order", list(UserOrder))
async def test_given_ties_and_never_active_users_when_paging_in_any_order_then_no_gap_or_duplicate(
    account, owner, clock, order
):
    users = [*await crowd(account.account_id), await User.get(id=account.owner_user_id)]

    ids, pages, totals = await walk(owner, clock, first=3, order=order)

    assert ids == expected_order(users, order)
    assert len(set(ids)) == len(users) == 20
    assert pages == 7
    assert totals == {20}


async def test_given_last_active_orders_when_paging_then_never_active_come_first_asc_last_desc(
    account, owner, clock
):
    users = await crowd(account.account_id)
    never = {u.id for u in users if u.last_active_at is None} | {account.owner_user_id}

    ascending, _, _ = await walk(owner, clock, first=4, order=UserOrder.LAST_ACTIVE_ASC)
    descending, _, _ = await walk(owner, clock, first=4, order=UserOrder.LAST_ACTIVE_DESC)

    assert set(ascending[: len(never)]) == never
    assert set(descending[-len(never) :]) == never
    assert descending == list(reversed(ascending))


async def test_given_a_page_size_equal_to_the_rows_when_paging_then_the_last_page_says_so(
    account, owner, clock
):
    await crowd(account.account_id)

    result = await execute(USERS_PAGE, owner, clock, first=20)
    connection = result.data["account"]["users"]

    assert len(connection["edges"]) == 20
    assert connection["pageInfo"]["hasNextPage"] is False


@pytest.mark.parametrize(
    ("filter", "expected"),
    [
        ({"status": "INVITED"}, lambda u: u.status == UserStatus.INVITED),
        ({"status": "DISABLED"}, lambda u: u.status == UserStatus.DISABLED),
        ({"role": "ADMIN"}, lambda u: u.role == Role.ADMIN),
        ({"role": "OWNER"}, lambda u: u.role == Role.OWNER),
        ({"hasLicense": True}, lambda u: u.status != UserStatus.DISABLED),
        ({"hasLicense": False}, lambda u: u.status == UserStatus.DISABLED),
        ({"search": "ADA"}, lambda u: "ada" in f"{u.first_name}|{u.last_name}|{u.email}".lower()),
        ({"search": "lovelace"}, lambda u: "lovelace" in u.last_name.lower()),
        ({"search": "@ACME.test"}, lambda u: u.email.endswith("@acme.test")),
        ({"search": "100%"}, lambda u: "100%" in u.first_name),
        ({"search": "a_b"}, lambda u: "a_b" in u.first_name),
        ({"search": "ada lovelace"}, lambda u: False),
        ({"status": "ENABLED", "role": "MEMBER", "search": "a"}, None),
    ],
)
async def test_given_filters_when_listing_users_then_only_matches_are_counted_and_paged(
    account, owner, clock, filter, expected
):
    people = [
        ("Ada", "Lovelace", "ada@acme.test", Role.ADMIN, UserStatus.ENABLED),
        ("Adam", "Smith", "adam@example.com", Role.MEMBER, UserStatus.DISABLED),
        ("Grace", "Hopper", "grace@acme.test", Role.MEMBER, UserStatus.INVITED),
        ("Linus", "Canada", "linus@example.com", Role.MEMBER, UserStatus.ENABLED),
        ("100%", "Sure", "sure@example.com", Role.MEMBER, UserStatus.ENABLED),
        ("1000", "Sure", "sure2@example.com", Role.MEMBER, UserStatus.ENABLED),
        ("a_b", "Under", "under@example.com", Role.MEMBER, UserStatus.DISABLED),
        ("axb", "Under", "under2@example.com", Role.ADMIN, UserStatus.ENABLED),
    ]
    for i, (first, last, email, role, status) in enumerate(people):
        await add_user(
            account.account_id,
            first_name=first,
            last_name=last,
            email=email,
            role=role,
            status=status,
            created_at=T0 + timedelta(minutes=i),
        )
    everyone = await User.filter(account_id=account.account_id)
    if expected is None:

        def expected(u: User) -> bool:
            text = f"{u.first_name}|{u.last_name}|{u.email}".lower()
            return u.status == UserStatus.ENABLED and u.role == Role.MEMBER and "a" in text

    want = sorted(u.id for u in everyone if expected(u))

    ids, _, totals = await walk(owner, clock, first=2, order=UserOrder.CREATED_DESC, filter=filter)

    assert sorted(ids) == want
    assert len(ids) == len(set(ids))
    assert totals == {len(want)}


async def test_given_a_search_in_another_account_when_listing_then_only_own_users_match(
    account, owner, clock
):
    other = await make_account(clock, email="owner@other.example.com", name="Other")
    await add_user(other.account_id, first_name="Zed", created_at=T0)

    result = await execute(USERS_PAGE, owner, clock, filter={"search": "zed"})

    assert result.data["account"]["users"]["totalCount"] == 0


@pytest.mark.parametrize("first", [0, -1, 201, 10_000])
async def test_given_first_out_of_range_when_listing_users_then_invalid_input_and_the_rest_survives(
    account, owner, clock, first
):
    result = await execute(
        "query($first: Int) { account { name users(first: $first) { totalCount } } }",
        owner,
        clock,
        first=first,
    )

    assert codes(result) == ["INVALID_INPUT"]
    assert result.errors[0].extensions["field"] == "first"
    assert result.data == {"account": {"name": "Acme", "users": None}}


@pytest.mark.parametrize("connection", ["charges", "auditLog"])
async def test_given_first_out_of_range_when_listing_charges_or_audit_then_invalid_input(
    account, owner, clock, connection
):
    result = await execute(
        f"{{ account {{ {connection}(first: 201) {{ totalCount }} }} }}", owner, clock
    )

    assert codes(result) == ["INVALID_INPUT"]
    assert result.data == {"account": {connection: None}}


async def test_given_bad_cursors_when_listing_users_then_each_is_invalid_input_on_after(
    account, owner, clock
):
    await crowd(account.account_id)
    first_page = await execute(USERS_PAGE, owner, clock, first=2)
    cursor = first_page.data["account"]["users"]["pageInfo"]["endCursor"]
    payload, tag = cursor.split(".")
    forged_payload = base64.urlsafe_b64encode(b'["users:NAME_ASC","zzz",1]').rstrip(b"=").decode()

    bad = [
        "garbage",
        "",
        "a.b.c",
        "!!!.???",
        f"{payload}.{tag[:-2]}AA",
        f"{forged_payload}.{tag}",
        cursor + "x",
        "x" * 5000,
    ]
    for after in bad:
        result = await execute(USERS_PAGE, owner, clock, first=2, after=after)
        assert codes(result) == ["INVALID_INPUT"], after
        assert result.errors[0].extensions["field"] == "after"
        assert result.data == {"account": {"users": None}}


async def test_given_a_cursor_of_another_order_or_list_when_reused_then_invalid_input(
    account, owner, clock
):
    await crowd(account.account_id)
    by_name = await execute(USERS_PAGE, owner, clock, first=2, order="NAME_ASC")
    cursor = by_name.data["account"]["users"]["pageInfo"]["endCursor"]

    other_order = await execute(
        USERS_PAGE, owner, clock, first=2, order="CREATED_ASC", after=cursor
    )
    other_list = await execute(
        "query($after: String) { account { charges(after: $after) { totalCount } } }",
        owner,
        clock,
        after=cursor,
    )

    assert codes(other_order) == ["INVALID_INPUT"]
    assert codes(other_list) == ["INVALID_INPUT"]


MEMBER_VIEW = """
{
  viewer { id email name role isOwner status qualification hasLicense createdAt lastActiveAt
           invitation { id } licenseHistory { assignedAt } }
  account {
    id name
    owner { id email firstName lastName name role isOwner }
  }
  licenseAgreement { version }
}
"""


async def test_given_a_member_when_reading_itself_account_and_owner_basics_then_all_is_visible(
    account, clock
):
    member = await add_user(
        account.account_id,
        first_name="Mia",
        qualification="CPA",
        created_at=T0,
        assigned_by=account.owner_user_id,
    )

    result = await execute(MEMBER_VIEW, as_user(member), clock)

    assert result.errors is None, result.errors
    viewer = result.data["viewer"]
    assert viewer["id"] == str(member.id)
    assert viewer["status"] == "ENABLED"
    assert viewer["qualification"] == "CPA"
    assert viewer["hasLicense"] is True
    assert viewer["createdAt"] == "2026-01-01T09:00:00+00:00"
    assert len(viewer["licenseHistory"]) == 1
    assert result.data["account"]["owner"] == {
        "id": str(account.owner_user_id),
        "email": "owner@example.com",
        "firstName": "Olive",
        "lastName": "Owner",
        "name": "Olive Owner",
        "role": "OWNER",
        "isOwner": True,
    }


@pytest.mark.parametrize(
    "field",
    [
        "status",
        "qualification",
        "hasLicense",
        "createdAt",
        "lastActiveAt",
        "invitation { id }",
        "licenseHistory { assignedAt }",
    ],
)
async def test_given_a_member_when_reading_a_private_field_of_another_user_then_forbidden_and_null(
    account, clock, field
):
    member = await add_user(account.account_id, first_name="Mia", created_at=T0)

    result = await execute(
        f"{{ account {{ name owner {{ id {field} }} }} }}", as_user(member), clock
    )

    name = field.split(" ")[0]
    assert codes(result) == ["FORBIDDEN"]
    assert error_paths(result) == [f"account.owner.{name}"]
    assert result.data["account"]["name"] == "Acme"
    assert result.data["account"]["owner"] == {"id": str(account.owner_user_id), name: None}


@pytest.mark.parametrize(
    "field",
    [
        "licenses { total }",
        "billing { currency }",
        "users { totalCount }",
        'user(id: "1") { id }',
        "seatChangePreview(total: 6) { kind }",
        "charges { totalCount }",
        "auditLog { totalCount }",
        "apiTokens { id }",
    ],
)
async def test_given_a_member_when_reading_admin_account_fields_then_forbidden_and_null(
    account, clock, field
):
    member = await add_user(account.account_id, first_name="Mia", created_at=T0)

    result = await execute(f"{{ account {{ id {field} }} }}", as_user(member), clock)

    name = field.split("(")[0].split(" ")[0]
    assert codes(result) == ["FORBIDDEN"]
    assert result.data == {"account": {"id": str(account.account_id), name: None}}


async def test_given_an_admin_when_reading_another_user_then_private_fields_are_visible(
    account, clock
):
    admin = await add_user(account.account_id, first_name="Ann", role=Role.ADMIN, created_at=T0)

    result = await execute(
        "{ account { owner { status hasLicense createdAt invitation { status } } } }",
        as_user(admin),
        clock,
    )

    assert result.errors is None, result.errors
    assert result.data["account"]["owner"]["status"] == "ENABLED"
    assert result.data["account"]["owner"]["invitation"] == {"status": "PENDING"}


async def test_given_an_api_token_when_reading_then_viewer_is_null_and_admin_fields_are_visible(
    account, clock
):
    principal = await token_principal(account.account_id)

    result = await execute(
        "{ viewer { id } account { licenses { total inUse } users { totalCount } "
        "apiTokens { name prefix createdBy { id } } } }",
        principal,
        clock,
    )

    assert result.errors is None, result.errors
    assert result.data["viewer"] is None
    assert result.data["account"]["licenses"] == {"total": 5, "inUse": 1}
    assert result.data["account"]["users"]["totalCount"] == 1
    [token] = result.data["account"]["apiTokens"]
    assert token["prefix"].startswith("lic_")
    assert token["createdBy"] is None


async def test_given_ids_of_other_accounts_or_malformed_when_reading_user_then_null_without_error(
    account, owner, clock
):
    other = await make_account(clock, email="owner@other.example.com", name="Other")

    result = await execute(
        """query($foreign: ID!, $own: ID!) {
          account {
            foreign: user(id: $foreign) { id }
            malformed: user(id: "abc") { id }
            huge: user(id: "99999999999999999999999") { id }
            unknown: user(id: "424242") { id }
            own: user(id: $own) { id name }
          }
        }""",
        owner,
        clock,
        foreign=str(other.owner_user_id),
        own=str(account.owner_user_id),
    )

    assert result.errors is None, result.errors
    assert result.data["account"] == {
        "foreign": None,
        "malformed": None,
        "huge": None,
        "unknown": None,
        "own": {"id": str(account.owner_user_id), "name": "Olive Owner"},
    }


@pytest.mark.parametrize(
    "query",
    [
        "{ viewer { id } }",
        "{ account { id } }",
        "{ licenseAgreement { version } }",
        "{ ...F } fragment F on Query { account { id } }",
        "mutation { logout { errors { code } } }",
        'mutation { login(input: {email: "a@b.c", password: "x"}) { token } '
        "logout { errors { code } } }",
    ],
)
async def test_given_no_principal_when_reading_then_unauthenticated_and_data_null(db, clock, query):
    result = await execute(query, None, clock)

    assert codes(result) == ["UNAUTHENTICATED"]
    assert result.data is None


async def test_given_no_principal_when_logging_in_then_the_public_mutation_runs(account, clock):
    result = await execute(
        'mutation { login(input: {email: "owner@example.com", password: "wrong password"}) '
        "{ token errors { code field } } }",
        None,
        clock,
    )

    assert result.errors is None, result.errors
    assert result.data["login"] == {
        "token": None,
        "errors": [{"code": "INVALID_CREDENTIALS", "field": None}],
    }


async def test_given_an_agreement_when_read_then_version_and_text_come_from_the_config(
    account, owner, clock
):
    result = await execute("{ licenseAgreement { version text } }", owner, clock)

    assert result.data["licenseAgreement"] == {
        "version": config.AGREEMENT_VERSION,
        "text": config.AGREEMENT_TEXT,
    }


async def test_given_invited_users_and_a_scheduled_reduction_when_reading_licenses_then_summary(
    account, owner, clock
):
    for i in range(2):
        await add_user(
            account.account_id, first_name=f"inv{i}", status=UserStatus.INVITED, created_at=T0
        )
    await add_user(account.account_id, first_name="gone", status=UserStatus.DISABLED, created_at=T0)
    await Account.filter(id=account.account_id).update(seats_in_use=3, scheduled_total=2)

    result = await execute(
        "{ account { licenses { total inUse available pendingInvitations scheduledTotal "
        "scheduledAt releasedAtScheduledChange } billing { interval seatPriceCents currency "
        "currentPeriodStart currentPeriodEnd } } }",
        owner,
        clock,
    )

    assert result.errors is None, result.errors
    assert result.data["account"]["licenses"] == {
        "total": 5,
        "inUse": 3,
        "available": 2,
        "pendingInvitations": 2,
        "scheduledTotal": 2,
        "scheduledAt": "2026-04-10T12:00:00+00:00",
        "releasedAtScheduledChange": 1,
    }
    assert result.data["account"]["billing"] == {
        "interval": "MONTH",
        "seatPriceCents": 1000,
        "currency": "USD",
        "currentPeriodStart": "2026-03-10T12:00:00+00:00",
        "currentPeriodEnd": "2026-04-10T12:00:00+00:00",
    }


async def test_given_no_scheduled_reduction_when_reading_licenses_then_nothing_is_scheduled(
    account, owner, clock
):
    result = await execute(
        "{ account { licenses { pendingInvitations scheduledTotal scheduledAt "
        "releasedAtScheduledChange } } }",
        owner,
        clock,
    )

    assert result.data["account"]["licenses"] == {
        "pendingInvitations": 0,
        "scheduledTotal": None,
        "scheduledAt": None,
        "releasedAtScheduledChange": 0,
    }


async def test_given_charges_when_paging_then_newest_first_with_bigint_amounts(
    account, owner, clock
):
    for i in range(5):
        await Charge.create(
            account_id=account.account_id,
            kind=ChargeKind.SEAT_INCREASE,
            quantity=i + 1,
            unit_amount_cents=10**12,
            amount_cents=(i + 1) * 10**12,
            currency="USD",
            period_start=T0,
            period_end=T0 + timedelta(days=30),
            created_at=T0 + timedelta(minutes=i),
        )
    query = """query($after: String) { account { charges(first: 2, after: $after) {
        totalCount pageInfo { hasNextPage endCursor }
        edges { node { quantity amountCents } } } } }"""

    quantities: list[int] = []
    after = None
    while True:
        result = await execute(query, owner, clock, after=after)
        assert result.errors is None, result.errors
        connection = result.data["account"]["charges"]
        assert connection["totalCount"] == 5
        for edge in connection["edges"]:
            quantities.append(edge["node"]["quantity"])
            assert edge["node"]["amountCents"] == edge["node"]["quantity"] * 10**12
        if not connection["pageInfo"]["hasNextPage"]:
            break
        after = connection["pageInfo"]["endCursor"]

    assert quantities == [5, 4, 3, 2, 1]


async def test_given_account_creation_when_reading_the_audit_log_then_newest_first_with_actors(
    account, owner, clock
):
    result = await execute(
        "{ account { auditLog(first: 1) { totalCount pageInfo { hasNextPage } "
        "edges { node { action actorKind actor { id } actorToken { id } target { id } data "
        "createdAt } } } } }",
        owner,
        clock,
    )

    assert result.errors is None, result.errors
    log = result.data["account"]["auditLog"]
    assert log["totalCount"] == 2
    assert log["pageInfo"]["hasNextPage"] is True
    [event] = [edge["node"] for edge in log["edges"]]
    assert event["action"] == "API_TOKEN_CREATED"
    assert event["actorKind"] == "SYSTEM"
    assert event["actor"] is None and event["actorToken"] is None and event["target"] is None
    assert event["data"]["name"] == "Created with the account"
    assert event["createdAt"] == "2026-03-10T12:00:00+00:00"


async def test_given_a_member_visible_through_an_admin_read_when_nested_then_visibility_holds(
    account, clock
):
    """A MEMBER reaching other users through relations still sees only their public fields."""
    member = await add_user(
        account.account_id, first_name="Mia", created_at=T0, assigned_by=account.owner_user_id
    )

    result = await execute(
        "{ viewer { licenseHistory { assignedBy { id name status } } } }", as_user(member), clock
    )

    assert codes(result) == ["FORBIDDEN"]
    assert result.data["viewer"]["licenseHistory"] == [
        {"assignedBy": {"id": str(account.owner_user_id), "name": "Olive Owner", "status": None}}
    ]


async def page_with_relations(owner: Principal, clock, first: int) -> tuple[int, int]:
    query = """query($first: Int) { account { owner { id } users(first: $first) {
        totalCount edges { node { id status owner: isOwner invitation { id status }
        licenseHistory { assignedAt assignedBy { id name } unassignedBy { id } } } } } } }"""
    with counting_statements() as counter:
        result = await execute(query, owner, clock, first=first)
    assert result.errors is None, result.errors
    return len(result.data["account"]["users"]["edges"]), len(counter.statements)


async def test_given_100_users_with_relations_when_paging_then_statement_count_is_constant(
    account, owner, clock
):
    admin = await add_user(account.account_id, first_name="aaa", role=Role.ADMIN, created_at=T0)
    for i in range(110):
        await add_user(
            account.account_id,
            first_name=f"user{i:03d}",
            created_at=T0 + timedelta(seconds=i),
            assigned_by=admin.id,
            invitation=True,
        )

    small_rows, small = await page_with_relations(owner, clock, 10)
    large_rows, large = await page_with_relations(owner, clock, 100)

    assert (small_rows, large_rows) == (10, 100)
    # account, count, page with its invitations, owner, assignments, assigners.
    assert small == large == 6


async def test_given_invitations_here_and_elsewhere_when_read_then_each_user_shows_its_latest(
    account, owner, clock
):
    # given a user invited twice (the later row is the latest), a user never
    # invited, and another account's invitation for a user id of this account
    twice = await add_user(account.account_id, first_name="Ann", created_at=T0, invitation=True)
    first = await Invitation.get(user_id=twice.id)
    second = await Invitation.create(
        account_id=account.account_id,
        user_id=twice.id,
        kind=first.kind,
        email=first.email,
        token_hash="second-invitation",
        status=InvitationStatus.REVOKED,
        created_at=T0,
        sent_at=T0,
        expires_at=T0 + timedelta(days=7),
        revoked_at=T0,
    )
    never = await add_user(account.account_id, first_name="Ben", created_at=T0)
    other = await make_account(clock, email="owner@other.example", name="Other")
    await Invitation.create(
        account_id=other.account_id,
        user_id=never.id,
        kind=first.kind,
        email="stray@other.example",
        token_hash="foreign-invitation",
        status=InvitationStatus.PENDING,
        created_at=T0,
        sent_at=T0,
        expires_at=T0 + timedelta(days=7),
    )
    expected = {str(twice.id): {"id": str(second.id), "status": "REVOKED"}, str(never.id): None}

    # when the page (every order) and each user alone are read
    for order in UserOrder:
        page = await execute(
            "query($order: UserOrder) { account { users(first: 10, orderBy: $order) { edges { "
            "node { id invitation { id status } } } } } }",
            owner,
            clock,
            order=order.value,
        )
        assert page.errors is None, page.errors
        shown = {
            edge["node"]["id"]: edge["node"]["invitation"]
            for edge in page.data["account"]["users"]["edges"]
        }
        # then each shows its latest invitation of this account, or null
        assert {key: shown[key] for key in expected} == expected, order
    for user_id, invitation in expected.items():
        alone = await execute(
            "query($id: ID!) { account { user(id: $id) { invitation { id status } } } }",
            owner,
            clock,
            id=user_id,
        )
        assert alone.errors is None, alone.errors
        assert alone.data["account"]["user"]["invitation"] == invitation
