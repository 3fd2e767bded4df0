"""The files of deploy/, checked with what this machine has (no Docker engine, maybe no
PyYAML): deploy/Dockerfile with our own Dockerfile reader, deploy/compose.yaml and
deploy/example.env with a small YAML reader (and `docker compose config` when there is one).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from dataclasses import dataclass
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

import pytest

from domain.settings import Settings

REPO_ROOT = Path(__file__).resolve().parents[2]
DEPLOY = REPO_ROOT / "deploy"


# --- Dockerfile ---------------------------------------------------------------------------------

DOCKERFILE_INSTRUCTIONS = frozenset(
    {
        "ADD",
        "ARG",
        "CMD",
        "COPY",
        "ENTRYPOINT",
        "ENV",
        "EXPOSE",
        "FROM",
        "HEALTHCHECK",
        "LABEL",
        "MAINTAINER",
        "ONBUILD",
        "RUN",
        "SHELL",
        "STOPSIGNAL",
        "USER",
        "VOLUME",
        "WORKDIR",
    }
)


@dataclass(frozen=True)
class Instruction:
    keyword: str
    arguments: str
    line: int


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[Instruction]


def parse_dockerfile(text: str) -> list[Instruction]:
    """Instructions with continuation lines joined; comments and blank lines dropped."""
    instructions: list[Instruction] = []
    pending: list[str] = []
    first_line = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if pending and stripped.startswith("#"):
            continue  # a comment line inside a continued instruction
        if not pending:
            first_line = number
        if stripped.endswith("\\"):
            pending.append(stripped[:-1].strip())
            continue
        pending.append(stripped)
        joined = " ".join(part for part in pending if part)
        pending = []
        keyword, _, arguments = joined.partition(" ")
        instructions.append(Instruction(keyword.upper(), arguments.strip(), first_line))
    assert not pending, "the Dockerfile ends inside a continued instruction"
    return instructions


def dockerfile_stages(instructions: list[Instruction]) -> tuple[dict[str, str], list[Stage]]:
    """Global ARG defaults and the stages, with ${ARG} substituted in FROM."""
    args: dict[str, str] = {}
    stages: list[Stage] = []
    for instruction in instructions:
        if instruction.keyword == "FROM":
            words = instruction.arguments.split()
            words = [w for w in words if not w.startswith("--platform")]
            base = re.sub(r"\$\{?(\w+)\}?", lambda m: args.get(m.group(1), m.group(0)), words[0])
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            assert len(words) in (1, 3), f"line {instruction.line}: FROM {instruction.arguments}"
            stages.append(Stage(base, name, []))
        elif not stages:
            assert instruction.keyword == "ARG", f"line {instruction.line}: before the first FROM"
            key, _, default = instruction.arguments.partition("=")
            args[key.strip()] = default.strip()
        else:
            stages[-1].instructions.append(instruction)
    return args, stages


def _flags(arguments: str) -> tuple[dict[str, str], list[str]]:
    flags: dict[str, str] = {}
    words = arguments.split()
    while words and words[0].startswith("--"):
        key, _, value = words.pop(0)[2:].partition("=")
        flags[key] = value
    return flags, words


def _dockerignore_patterns() -> list[str]:
    lines = (REPO_ROOT / ".dockerignore").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def _ignored(path: str, patterns: list[str]) -> bool:
    """Docker's rules, roughly: patterns are anchored at the context root and exclude what is
    below a matching directory; ``**/`` matches at any depth; ``!`` re-includes."""
    parts = path.strip("/").split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    ignored = False
    for line in patterns:
        negate = line.startswith("!")
        pattern = line.lstrip("!").strip("/")
        if pattern.startswith("**/"):
            hit = any(fnmatch(part, pattern[3:]) for part in parts)
        else:
            hit = any(fnmatch(prefix, pattern) for prefix in prefixes)
        if hit:
            ignored = not negate
    return ignored


def test_dockerfile_is_a_multi_stage_non_root_image_with_a_healthcheck() -> None:
    instructions = parse_dockerfile((DEPLOY / "Dockerfile").read_text())
    known = DOCKERFILE_INSTRUCTIONS
    assert [(i.line, i.keyword) for i in instructions if i.keyword not in known] == []
    _, stages = dockerfile_stages(instructions)
    assert len(stages) >= 2
    names = [stage.name for stage in stages]
    builder, runtime = stages[0], stages[-1]
    assert runtime.base == "python:3.11-slim"

    # COPY --from names an earlier stage (by name or index); plain COPY sources exist in the
    # build context and are not excluded by .dockerignore.
    ignore = _dockerignore_patterns()
    for index, stage in enumerate(stages):
        for instruction in stage.instructions:
            if instruction.keyword not in ("COPY", "ADD"):
                continue
            flags, words = _flags(instruction.arguments)
            sources = words[:-1]
            assert sources, f"line {instruction.line}: {instruction.arguments}"
            if "from" in flags:
                source_stage = flags["from"]
                earlier = [n for n in names[:index] if n]
                assert source_stage in earlier or (
                    source_stage.isdigit() and int(source_stage) < index
                ), f"line {instruction.line}: COPY --from={source_stage}, stages {names[:index]}"
                continue
            for source in sources:
                assert (REPO_ROOT / source).exists(), f"line {instruction.line}: {source} missing"
                assert not _ignored(source.rstrip("/"), ignore), f"{source} is in .dockerignore"

    # The builder installs the project with pip from pyproject.toml into a venv.
    builder_runs = " ".join(i.arguments for i in builder.instructions if i.keyword == "RUN")
    assert "venv" in builder_runs and "pip install" in builder_runs
    assert any("pyproject.toml" in i.arguments for i in builder.instructions)

    final = {i.keyword: i for i in runtime.instructions}  # the last of each keyword
    users = [i.arguments for i in runtime.instructions if i.keyword == "USER"]
    assert users, "the final stage runs as root (no USER)"
    assert users[-1].split(":")[0] not in ("root", "0")
    copies_from = [_flags(i.arguments)[0].get("from") for i in runtime.instructions]
    assert builder.name in copies_from, "the runtime stage copies nothing from the builder"
    envs = " ".join(i.arguments for i in runtime.instructions if i.keyword == "ENV")
    assert re.search(r"\bENVIRONMENT=production\b", envs)
    assert "8000" in final["EXPOSE"].arguments.split()

    healthcheck = final["HEALTHCHECK"].arguments
    assert " CMD " in f" {healthcheck} "
    assert "urllib" in healthcheck and "/healthz" in healthcheck
    assert "curl" not in healthcheck and "wget" not in healthcheck
    assert json.loads(final["CMD"].arguments) == [
        "licenses",
        "serve",
        "--host",
        "0.0.0.0",
        "--port",
        "8000",
    ]


def test_dockerignore_keeps_local_state_out_of_the_build_context() -> None:
    patterns = _dockerignore_patterns()
    for path in (".venv", "var", ".git", ".mypy_cache", ".ruff_cache", ".pytest_cache"):
        assert _ignored(path, patterns), path
    assert _ignored("api/__pycache__", patterns)
    assert _ignored("var/licenses.db", patterns)
    assert not _ignored("deploy/var", patterns)  # anchored at the root, as Docker does
    for path in ("pyproject.toml", "api", "domain", "schema", "workers", "deploy"):
        assert not _ignored(path, patterns), path


def test_dockerfile_reader_rejects_what_docker_would() -> None:
    assert parse_dockerfile("FROM a AS b\nRUN x \\\n  # note\n  && y\n") == [
        Instruction("FROM", "a AS b", 1),
        Instruction("RUN", "x && y", 2),
    ]
    bad = parse_dockerfile("FROM a\nRUNN echo\n")
    assert [i.keyword for i in bad if i.keyword not in DOCKERFILE_INSTRUCTIONS] == ["RUNN"]


# --- compose.yaml -------------------------------------------------------------------------------


class YamlSubsetError(ValueError):
    pass


@dataclass(frozen=True)
class _Line:
    number: int
    indent: int
    text: str


def _strip_comment(text: str) -> str:
    quote: str | None = None
    for index, char in enumerate(text):
        if quote:
            if char == quote and not (quote == '"' and text[index - 1] == "\\"):
                quote = None
        elif char in "\"'":
            quote = char
        elif char == "#" and (index == 0 or text[index - 1] in " \t"):
            return text[:index].rstrip()
    return text.rstrip()


def _scalar(text: str, number: int) -> Any:
    text = text.strip()
    if text.startswith("["):
        return _flow_sequence(text, number)
    if text[:1] in "{&*!|>":
        raise YamlSubsetError(f"line {number}: {text[:1]!r} is outside the supported subset")
    if text.startswith('"'):
        return json.loads(text)
    if text.startswith("'"):
        if not text.endswith("'") or len(text) < 2:
            raise YamlSubsetError(f"line {number}: unterminated quote")
        return text[1:-1].replace("''", "'")
    if text in ("", "~", "null"):
        return None
    if text in ("true", "false"):
        return text == "true"
    if re.fullmatch(r"[-+]?[0-9]+", text):
        return int(text)
    return text


def _flow_sequence(text: str, number: int) -> list[Any]:
    if not text.endswith("]"):
        raise YamlSubsetError(f"line {number}: a flow sequence must end on its line")
    items: list[Any] = []
    current = ""
    quote: str | None = None
    escaped = False
    for char in text[1:-1]:
        if quote:
            current += char
            if escaped:
                escaped = False
            elif char == "\\" and quote == '"':
                escaped = True
            elif char == quote:
                quote = None
        elif char in "\"'":
            quote = char
            current += char
        elif char == ",":
            items.append(_scalar(current, number))
            current = ""
        elif char in "[]{}":
            raise YamlSubsetError(f"line {number}: nested flow collections are not supported")
        else:
            current += char
    if current.strip():
        items.append(_scalar(current, number))
    return items


_KEY = re.compile(r"^([A-Za-z0-9_.\-/]+):(?:\s+(.*))?$")


def load_yaml_subset(text: str) -> Any:
    """Block mappings and sequences, quoted and plain scalars, one-line flow sequences.

    Enough for deploy/compose.yaml; anything else (anchors, flow mappings, block scalars,
    multi-line flow collections, tabs) raises YamlSubsetError rather than being misread.
    """
    lines: list[_Line] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        if "\t" in raw[: len(raw) - len(raw.lstrip())]:
            raise YamlSubsetError(f"line {number}: tab indentation")
        content = _strip_comment(raw)
        if content.strip() in ("", "---"):
            continue
        lines.append(_Line(number, len(content) - len(content.lstrip()), content.strip()))
    if not lines:
        return None
    value, end = _block(lines, 0, lines[0].indent)
    if end != len(lines):
        raise YamlSubsetError(f"line {lines[end].number}: unexpected indentation")
    return value


def _is_item(line: _Line) -> bool:
    return line.text == "-" or line.text.startswith("- ")


def _block(lines: list[_Line], index: int, indent: int) -> tuple[Any, int]:
    if _is_item(lines[index]):
        return _sequence(lines, index, indent)
    return _mapping(lines, index, indent)


def _mapping(lines: list[_Line], index: int, indent: int) -> tuple[dict[str, Any], int]:
    result: dict[str, Any] = {}
    while index < len(lines) and lines[index].indent == indent and not _is_item(lines[index]):
        line = lines[index]
        match = _KEY.match(line.text)
        if match is None:
            raise YamlSubsetError(f"line {line.number}: expected 'key: value', got {line.text!r}")
        key, rest = match.group(1), match.group(2)
        if key in result:
            raise YamlSubsetError(f"line {line.number}: duplicate key {key!r}")
        index += 1
        if rest:
            result[key] = _scalar(rest, line.number)
            continue
        nested = index < len(lines) and (
            lines[index].indent > indent
            or (lines[index].indent == indent and _is_item(lines[index]))
        )
        if nested:
            result[key], index = _block(lines, index, lines[index].indent)
        else:
            result[key] = None
    if index < len(lines) and lines[index].indent > indent:
        raise YamlSubsetError(f"line {lines[index].number}: unexpected indentation")
    return result, index


def _sequence(lines: list[_Line], index: int, indent: int) -> tuple[list[Any], int]:
    items: list[Any] = []
    while index < len(lines) and lines[index].indent == indent and _is_item(lines[index]):
        line = lines[index]
        rest = line.text[1:].lstrip()
        if not rest:
            index += 1
            if index >= len(lines) or lines[index].indent <= indent:
                items.append(None)
                continue
            value, index = _block(lines, index, lines[index].indent)
            items.append(value)
        elif _KEY.match(rest):  # "- key: value" opens a mapping indented past the dash
            inner = indent + (len(line.text) - len(rest))
            lines[index] = _Line(line.number, inner, rest)
            value, index = _mapping(lines, index, inner)
            items.append(value)
        else:
            items.append(_scalar(rest, line.number))
            index += 1
    return items, index


def load_compose() -> dict[str, Any]:
    text = (DEPLOY / "compose.yaml").read_text()
    subset = load_yaml_subset(text)
    try:
        import yaml  # noqa: PLC0415 - optional
    except ImportError:
        return dict(subset)
    assert yaml.safe_load(text) == subset, "the small YAML reader misread compose.yaml"
    return dict(subset)


def read_env_file(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, sep, value = line.partition("=")
            assert sep, f"{path.name}: not KEY=VALUE: {line!r}"
            values[key.strip()] = value
    return values


def test_yaml_subset_reader() -> None:
    text = """
a:
  b: [x, "y z", 'it''s', "q\\"uoted"]   # comment
  c:
    - 1
    - k: v
      l: true
  d:
e: "8001:8000"
"""
    assert load_yaml_subset(text) == {
        "a": {"b": ["x", "y z", "it's", 'q"uoted'], "c": [1, {"k": "v", "l": True}], "d": None},
        "e": "8001:8000",
    }
    with pytest.raises(YamlSubsetError):
        load_yaml_subset("a: &anchor 1\n")
    with pytest.raises(YamlSubsetError):
        load_yaml_subset("a:\n  b: 1\n    c: 2\n")


def test_compose_describes_the_production_topology() -> None:
    compose = load_compose()
    services: dict[str, Any] = compose["services"]
    volumes = set(compose.get("volumes") or {})

    def command(name: str) -> list[str]:
        value = services[name].get("command") or []
        return value if isinstance(value, list) else str(value).split()

    def replicas(name: str) -> int:
        return int((services[name].get("deploy") or {}).get("replicas", 1))

    app = [name for name in services if command(name)[:1] == ["licenses"]]
    apis = [name for name in app if command(name)[1] == "serve"]
    workers = [name for name in app if command(name)[1] == "worker"]
    assert sum(replicas(name) for name in apis) >= 2, apis
    assert sum(replicas(name) for name in workers) >= 2, workers
    assert [name for name in app if command(name)[1] == "scheduler"] == ["scheduler"]
    assert command("migrate") == ["licenses", "migrate"]
    assert str(services["migrate"].get("restart", "no")) == "no"

    for name in app:
        service = services[name]
        build = service["build"]
        context = DEPLOY / build["context"]
        assert (context / build["dockerfile"]).is_file(), name
        env_files = service["env_file"]
        env_files = env_files if isinstance(env_files, list) else [env_files]
        assert all((DEPLOY / f).is_file() for f in env_files), name
        assert service.get("init") is True, f"{name}: no init to forward signals and reap"
        if name != "migrate":
            depends = service["depends_on"]
            assert depends["migrate"]["condition"] == "service_completed_successfully", name
    for name in apis:
        ports = [str(p) for p in services[name].get("ports", [])]
        assert any(p.endswith(":8000") for p in ports) or replicas(name) > 1, name
    for name in [*workers, "scheduler", "migrate"]:
        assert services[name]["healthcheck"] == {"disable": True}, name

    postgres = services["postgres"]
    assert str(postgres["image"]).startswith("postgres:15")
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])
    assert any(str(v).split(":")[0] in volumes for v in postgres["volumes"])
    redis = services["redis"]
    assert str(redis["image"]).startswith("redis:7")
    redis_command = " ".join(redis["command"])
    assert "--appendonly yes" in redis_command
    assert any(str(v).split(":")[0] in volumes for v in redis["volumes"])
    assert "mailpit" in str(services["mailpit"]["image"])

    env = read_env_file(DEPLOY / "example.env")
    assert env["ENVIRONMENT"] == "production"
    assert re.match(r"postgres://[^@]+@postgres:5432/\w+", env["DATABASE_URL"])
    assert env["REDIS_URL"] == "redis://redis:6379/0"
    assert env["MAIL_URL"] == "smtp://mailpit:1025"
    assert env["PUBLIC_URL"].startswith("https://")
    assert "change-me" in env["SECRET_KEY"]
    # The service itself accepts these settings (and would start in production mode).
    settings = Settings.from_env(env)
    assert settings.production and not settings.embedded


def test_compose_config_with_docker_compose() -> None:
    docker = shutil.which("docker")
    if docker is None:
        pytest.skip("no docker CLI on this machine")
    version = subprocess.run(
        [docker, "compose", "version"], capture_output=True, text=True, timeout=30, check=False
    )
    if version.returncode != 0:
        reason = (version.stderr or version.stdout).strip().splitlines()[:1]
        pytest.skip(f"the docker compose plugin is not installed here ({' '.join(reason)})")
    result = subprocess.run(
        [docker, "compose", "-f", str(DEPLOY / "compose.yaml"), "config", "-q"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
