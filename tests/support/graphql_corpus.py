"""GraphQL documents the project itself sends: those written in the test suite,
the console's operations, and fuzzed ones (tests/hostile/gqlfuzz.py), each with
variables to run it. Used to compare executors (tests/api/test_compiled_plan_differential.py).
"""

from __future__ import annotations

import ast
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from graphql import (
    DocumentNode,
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLInputType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLSchema,
    OperationDefinitionNode,
    parse,
    type_from_ast,
    validate,
)
from graphql.error import GraphQLError
from hypothesis import HealthCheck, Phase, given, seed, settings

from tests.hostile.gqlfuzz import Pools, requests

ROOT = Path(__file__).resolve().parents[2]
CONSOLE_OPERATIONS = ROOT / "api" / "console" / "operations.graphql"
MANIFEST = ROOT / "api" / "persisted_operations.json"


@dataclass(frozen=True)
class Document:
    query: str
    operation_name: str | None
    operation_type: str  # query | mutation
    variables: dict[str, Any] | None = None

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"query": self.query}
        if self.operation_name is not None:
            body["operationName"] = self.operation_name
        if self.variables is not None:
            body["variables"] = self.variables
        return body


def _operations(document: DocumentNode) -> list[OperationDefinitionNode]:
    return [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]


def _string_constants(path: Path) -> Iterator[str]:
    """String literals, and f-strings with each placeholder written as 1 (most
    stand for an id)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and "{" in node.value:
            yield node.value
        elif isinstance(node, ast.JoinedStr):
            text = "".join(
                str(part.value) if isinstance(part, ast.Constant) else "1" for part in node.values
            )
            if "{" in text:
                yield text


def _valid(schema: GraphQLSchema, text: str) -> DocumentNode | None:
    try:
        document = parse(text)
    except (GraphQLError, RecursionError):
        return None
    if not _operations(document) or validate(schema, document):
        return None
    return document


def documents_of(
    schema: GraphQLSchema, texts: list[str], values: Callable[[GraphQLInputType, str], Any]
) -> list[Document]:
    """Each valid text's operations, with a value for every declared variable."""
    found: dict[tuple[str, str | None], Document] = {}
    for text in texts:
        document = _valid(schema, text)
        if document is None:
            continue
        for operation in _operations(document):
            name = operation.name.value if operation.name else None
            variables: dict[str, Any] = {}
            for definition in operation.variable_definitions or ():
                type_ = type_from_ast(schema, definition.type)
                if type_ is not None:
                    variables[definition.variable.name.value] = values(
                        type_,  # type: ignore[arg-type]
                        definition.variable.name.value,
                    )
            found[(text, name)] = Document(text, name, operation.operation.value, variables or None)
    return list(found.values())


def suite_texts() -> list[str]:
    """String literals of the test files that look like GraphQL (validated later)."""
    texts: set[str] = set()
    for path in sorted((ROOT / "tests").rglob("*.py")):
        if "node_modules" in path.parts:
            continue
        texts.update(_string_constants(path))
    return sorted(texts)


def console_texts() -> list[str]:
    manifest = json.loads(MANIFEST.read_text(encoding="utf-8"))
    return [CONSOLE_OPERATIONS.read_text(encoding="utf-8")] + [
        operation["body"] for operation in manifest["operations"]
    ]


@dataclass(frozen=True)
class SampleValues:
    """Plain values for a variable, by its type (and a few names): live ids of
    the seeded account so that the operation reads something."""

    user_id: str
    now: datetime

    def __call__(self, type_: GraphQLInputType, name: str) -> Any:
        if isinstance(type_, GraphQLNonNull):
            return self(type_.of_type, name)
        if isinstance(type_, GraphQLList):
            return [self(type_.of_type, name)]
        if isinstance(type_, GraphQLEnumType):
            return next(iter(type_.values))
        if isinstance(type_, GraphQLInputObjectType):
            return {
                key: self(field.type, key)
                for key, field in type_.fields.items()
                if isinstance(field.type, GraphQLNonNull)
            }
        return {
            "ID": self.user_id,
            "Int": 3 if name in ("first", "limit") else 5,
            "BigInt": 1000,
            "Boolean": True,
            "DateTime": self.now.isoformat(),
            "Float": 1.5,
        }.get(type_.name, "Mia")


def fuzzed(pools: Pools, count: int, seed_value: int) -> list[Document]:
    """`count` requests of the fuzzer (seeded), those that are GraphQL POSTs."""
    drawn: list[Any] = []

    @seed(seed_value)
    @settings(
        max_examples=count,
        deadline=None,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
        print_blob=False,
    )
    @given(request=requests(pools, "unused"))
    def collect(request: Any) -> None:
        drawn.append(request)

    collect()
    documents = []
    for request in drawn:
        if request.kind != "graphql" or request.method != "POST" or request.body is None:
            continue
        body = json.loads(request.body)
        documents.append(
            Document(
                body["query"],
                body.get("operationName"),
                request.operation_type or "query",
                body.get("variables"),
            )
        )
    return documents
