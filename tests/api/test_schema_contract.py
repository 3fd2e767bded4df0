"""The served schema is a superset of the public contract, and schema.graphql is current.

The contract is the repository's copy, schema/contract.graphql. Names it
holds that are not built yet are listed in PENDING, by feature: the
comparison must find exactly those missing, so building a feature means
emptying its entry (and a name that disappears from the served schema fails).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from graphql import (
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLInterfaceType,
    GraphQLObjectType,
    GraphQLSchema,
    GraphQLUnionType,
    build_schema,
)
from graphql.language import print_ast
from graphql.pyutils import Undefined

from schema import schema

ROOT = Path(__file__).resolve().parents[2]
CONTRACT = ROOT / "schema" / "contract.graphql"
# Where the contract is published beside a checkout, when it is.
PUBLISHED = ROOT.parent / "shared" / "contract" / "schema.graphql"
EXPORTED = ROOT / "schema" / "schema.graphql"

PENDING: dict[str, frozenset[str]] = {}


def pending() -> list[str]:
    return sorted(problem for problems in PENDING.values() for problem in problems)


def served() -> GraphQLSchema:
    return build_schema(schema.as_str())


def contract() -> GraphQLSchema:
    return build_schema(CONTRACT.read_text(encoding="utf-8"))


def _default(argument: object) -> str | None:
    """The default of an argument or input field as SDL text (both schemas come from SDL)."""
    default = getattr(argument, "default", None)
    if default is None:
        return None
    literal = getattr(default, "literal", Undefined)
    if literal is Undefined or literal is None:
        return repr(default.value)
    return print_ast(literal)


def missing_from_served(expected: GraphQLSchema, actual: GraphQLSchema) -> list[str]:
    """Everything of `expected` that `actual` lacks or serves differently."""
    problems: list[str] = []
    for name, want in expected.type_map.items():
        if name.startswith("__"):
            continue
        have = actual.type_map.get(name)
        if have is None:
            problems.append(f"type {name} is missing")
            continue
        if type(have) is not type(want):
            problems.append(f"type {name} is a {type(have).__name__}, not {type(want).__name__}")
            continue
        if isinstance(want, GraphQLEnumType):
            assert isinstance(have, GraphQLEnumType)
            for value in want.values:
                if value not in have.values:
                    problems.append(f"enum value {name}.{value} is missing")
        elif isinstance(want, GraphQLObjectType | GraphQLInterfaceType):
            assert isinstance(have, GraphQLObjectType | GraphQLInterfaceType)
            for field_name, field in want.fields.items():
                got = have.fields.get(field_name)
                where = f"{name}.{field_name}"
                if got is None:
                    problems.append(f"field {where} is missing")
                    continue
                if str(got.type) != str(field.type):
                    problems.append(f"field {where} is {got.type}, contract says {field.type}")
                for arg_name, arg in field.args.items():
                    got_arg = got.args.get(arg_name)
                    if got_arg is None:
                        problems.append(f"argument {where}({arg_name}) is missing")
                        continue
                    if str(got_arg.type) != str(arg.type):
                        problems.append(
                            f"argument {where}({arg_name}) is {got_arg.type}, "
                            f"contract says {arg.type}"
                        )
                    want_default = _default(arg)
                    got_default = _default(got_arg)
                    if want_default != got_default:
                        problems.append(
                            f"argument {where}({arg_name}) defaults to {got_default}, "
                            f"contract says {want_default}"
                        )
                for arg_name, got_arg in got.args.items():
                    required = str(got_arg.type).endswith("!") and _default(got_arg) is None
                    if arg_name not in field.args and required:
                        problems.append(f"added argument {where}({arg_name}) is required")
        elif isinstance(want, GraphQLInputObjectType):
            assert isinstance(have, GraphQLInputObjectType)
            for field_name, field in want.fields.items():
                got_input = have.fields.get(field_name)
                where = f"{name}.{field_name}"
                if got_input is None:
                    problems.append(f"input field {where} is missing")
                    continue
                if str(got_input.type) != str(field.type):
                    problems.append(
                        f"input field {where} is {got_input.type}, contract says {field.type}"
                    )
                want_default = _default(field)
                got_default = _default(got_input)
                if want_default != got_default:
                    problems.append(
                        f"input field {where} defaults to {got_default}, "
                        f"contract says {want_default}"
                    )
            for field_name, got_input in have.fields.items():
                required = str(got_input.type).endswith("!") and _default(got_input) is None
                if field_name not in want.fields and required:
                    problems.append(f"added input field {name}.{field_name} is required")
        elif isinstance(want, GraphQLUnionType):
            assert isinstance(have, GraphQLUnionType)
            have_members = {t.name for t in have.types}
            for member in want.types:
                if member.name not in have_members:
                    problems.append(f"union member {name}.{member.name} is missing")
    for root in ("query_type", "mutation_type"):
        want_root = getattr(expected, root)
        have_root = getattr(actual, root)
        if want_root is not None and (have_root is None or have_root.name != want_root.name):
            problems.append(f"{root} differs")
    return problems


def undescribed(actual: GraphQLSchema) -> list[str]:
    """Types and fields of the contract served without a description."""
    expected = contract()
    missing: list[str] = []
    for name, want in expected.type_map.items():
        if name.startswith("__") or name in ("String", "Int", "Boolean", "ID", "Float"):
            continue
        have = actual.type_map.get(name)
        if have is None:  # not built yet: PENDING says so
            continue
        if not have.description:
            missing.append(name)
        if isinstance(want, GraphQLObjectType | GraphQLInputObjectType):
            fields = have.fields  # type: ignore[union-attr]
            for field_name in want.fields:
                if field_name in fields and not fields[field_name].description:
                    missing.append(f"{name}.{field_name}")
    return missing


def test_given_the_contract_when_compared_with_the_served_schema_then_only_pending_is_missing():
    assert sorted(missing_from_served(contract(), served())) == pending()


def test_given_the_published_contract_beside_the_checkout_when_compared_then_the_copy_equals_it():
    if not PUBLISHED.exists():
        pytest.skip("no published contract beside this checkout; the copy is the reference")

    assert CONTRACT.read_text(encoding="utf-8") == PUBLISHED.read_text(encoding="utf-8")


def test_given_a_schema_lacking_a_contract_field_when_compared_then_it_is_reported():
    described_field = re.compile(
        r'\n  """(?:(?!""").)*"""\n  releasedAtScheduledChange: Int!', re.S
    )
    trimmed = build_schema(
        described_field.sub("", schema.as_str()).replace("  API_TOKEN_REVOKED\n", "")
    )

    problems = missing_from_served(contract(), trimmed)

    assert "field LicenseSummary.releasedAtScheduledChange is missing" in problems
    assert "enum value AuditAction.API_TOKEN_REVOKED is missing" in problems


def test_given_an_argument_default_changed_when_compared_then_it_is_reported():
    changed = build_schema(schema.as_str().replace("first: Int = 50", "first: Int = 20", 1))

    problems = missing_from_served(contract(), changed)

    assert any("defaults to 20" in problem for problem in problems)


def test_given_the_contract_when_served_then_every_type_and_field_is_described():
    assert undescribed(served()) == []


def test_given_the_served_schema_when_exported_then_schema_graphql_is_current():
    exported = EXPORTED.read_text(encoding="utf-8")

    assert exported == schema.as_str() + "\n", (
        "schema/schema.graphql is stale: run "
        "`.venv/bin/python -c 'from schema import schema; print(schema.as_str())' "
        "> schema/schema.graphql`"
    )
