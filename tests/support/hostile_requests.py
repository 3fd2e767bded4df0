"""Requests past the API's limits, written once: tests/api/test_hostile_input.py checks how
each one is answered, tests/hostile/test_threats.py that none of them runs anything.

The limits: operation depth 10 (the root field is depth 0, as in graphql-depth-limit),
30 aliases, 5000 tokens, a 1 MiB body.
"""

from __future__ import annotations

import json

MIB = 1024 * 1024


def nested_query(depth: int) -> str:
    """`viewer` with `depth` levels of fields below it (licenseHistory and
    assignedBy alternating). Depth counts as in graphql-depth-limit, which
    Strawberry's QueryDepthLimiter follows: the root field is depth 0."""
    names = ["viewer"]
    while len(names) < depth:
        names.append("licenseHistory" if len(names) % 2 == 1 else "assignedBy")
    leaf = "assignedAt" if names[-1] == "licenseHistory" else "id"
    selection = leaf
    for name in reversed(names):
        selection = f"{name} {{ {selection} }}"
    return f"{{ {selection} }}"


def aliased_query(aliases: int) -> str:
    return "{ " + " ".join(f"a{i}: licenseAgreement {{ version }}" for i in range(aliases)) + " }"


# More than 5000 tokens.
TOKEN_HEAVY_QUERY = "{ licenseAgreement { " + "version " * 5000 + "} }"
FRAGMENT_CYCLE = "{ viewer { ...A } } fragment A on User { licenseHistory { assignedBy { ...A } } }"

# Each refused before it runs: data null, one INVALID_INPUT error.
OVER_LIMIT_QUERIES = {
    "depth 11": nested_query(11),
    "31 aliases": aliased_query(31),
    "5001 tokens": TOKEN_HEAVY_QUERY,
    "fragment cycle": FRAGMENT_CYCLE,
}


def oversized_body() -> str:
    """A JSON request body just over 1 MiB (413)."""
    return json.dumps({"query": "{ viewer { id } }", "variables": {"pad": "x" * MIB}})


# JSON nested far deeper than any parser should follow (400).
DEEPLY_NESTED_JSON = b"[" * 100_000 + b"]" * 100_000
