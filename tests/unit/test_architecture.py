"""The layering the README promises, checked on the source: domain/ knows no HTTP
or GraphQL, and no product module grows past its room."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PRODUCT = ("api", "schema", "workers", "domain")
WEB_LIBRARIES = ("starlette", "strawberry", "uvicorn", "graphql", "httpx", "cross_web")
ROOM_LINES = 420  # "about 400"
COHESIVE = "one cohesive"  # the docstring phrase of a module allowed to be longer


def _modules(package: str) -> list[Path]:
    return sorted(path for path in (ROOT / package).rglob("*.py") if "migrations" not in path.parts)


def _imported(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_given_the_domain_package_when_its_imports_are_read_then_no_web_library_or_layer_appears():
    offenders = {
        str(path.relative_to(ROOT)): sorted(
            _imported(path) & {*WEB_LIBRARIES, "api", "schema", "workers"}
        )
        for path in _modules("domain")
    }

    assert {name: found for name, found in offenders.items() if found} == {}


def test_given_the_product_packages_when_measured_then_no_module_outgrows_its_room():
    oversized = []
    for package in PRODUCT:
        for path in _modules(package):
            text = path.read_text(encoding="utf-8")
            docstring = ast.get_docstring(ast.parse(text)) or ""
            if text.count("\n") > ROOM_LINES and COHESIVE not in docstring:
                oversized.append(f"{path.relative_to(ROOT)}: {text.count(chr(10))} lines")

    assert oversized == []


def test_given_the_product_packages_when_installed_then_every_data_file_is_package_data():
    import tomllib  # noqa: PLC0415
    from fnmatch import fnmatch  # noqa: PLC0415

    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    package_data: dict[str, list[str]] = config["tool"]["setuptools"]["package-data"]
    missing = []
    for package in PRODUCT:
        for path in (ROOT / package).rglob("*"):
            if path.is_dir() or path.suffix in (".py", ".pyc") or "__pycache__" in path.parts:
                continue
            relative = path.relative_to(ROOT)
            covered = any(
                fnmatch(str(relative), f"{name.replace('.', '/')}/{pattern}")
                for name, patterns in package_data.items()
                for pattern in patterns
            )
            if not covered:
                missing.append(str(relative))

    assert missing == []  # a non-editable install (the container image) would lack them
