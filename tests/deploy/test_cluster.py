"""The production topology: a real cluster on loopback, and the container files.

(a) a journey across two API processes, two workers and a scheduler (PostgreSQL, Redis and an
    SMTP server on loopback), then a stop that leaves no process behind;
(b) SIGTERM to an API process while requests are in flight: they all complete, new connections
    are refused;
(c) deploy/Dockerfile and deploy/compose.yaml checked with what this machine has (no Docker
    engine, maybe no PyYAML): our own Dockerfile reader and a small YAML reader.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import signal
import subprocess
import time
import tomllib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

import httpx
import pytest

from deploy.cluster import (
    Cluster,
    ManagedProcess,
    pid_alive,
    process_start_time,
    processes_with_marker,
)
from deploy.local_services import find_postgres_bindir, find_redis_server
from domain.settings import Settings

REPO_ROOT = Path(__file__).resolve().parents[2]
DEPLOY = REPO_ROOT / "deploy"


def _registered_markers() -> set[str]:
    config = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    lines = config["tool"]["pytest"]["ini_options"].get("markers", [])
    return {line.split(":", 1)[0].strip() for line in lines}


# The journey takes tens of seconds; it is marked "slow" (still part of the default suite) once
# pyproject.toml registers that marker (--strict-markers refuses an unregistered one).
slow: Callable[[Any], Any] = (
    pytest.mark.slow if "slow" in _registered_markers() else (lambda function: function)
)


def require_cluster_tools() -> None:
    if find_postgres_bindir() is None:
        pytest.skip("PostgreSQL server binaries (initdb, postgres) not installed")
    if find_redis_server() is None:
        pytest.skip("redis-server not installed")
    pytest.importorskip("aiosmtpd", reason="aiosmtpd (dev dependency) not installed")


# --- GraphQL over two processes --------------------------------------------------------------


class GraphQLClient:
    """Sends each request to the next API process in turn."""

    def __init__(self, client: httpx.Client, urls: list[str]) -> None:
        self.client = client
        self.urls = urls
        self.sent: dict[str, int] = dict.fromkeys(urls, 0)
        self._next = 0

    def raw(
        self, query: str, variables: dict[str, Any] | None = None, *, token: str | None = None
    ) -> dict[str, Any]:
        url = self.urls[self._next % len(self.urls)]
        self._next += 1
        self.sent[url] += 1
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        response = self.client.post(
            url, json={"query": query, "variables": variables or {}}, headers=headers
        )
        assert response.status_code == 200, (url, response.status_code, response.text)
        body: dict[str, Any] = response.json()
        return body

    def query(
        self, query: str, variables: dict[str, Any] | None = None, *, token: str | None = None
    ) -> dict[str, Any]:
        body = self.raw(query, variables, token=token)
        assert not body.get("errors"), body
        data: dict[str, Any] = body["data"]
        return data

    def mutate(
        self,
        field: str,
        query: str,
        variables: dict[str, Any] | None = None,
        *,
        token: str | None = None,
    ) -> dict[str, Any]:
        """The payload of ``field``, whose ``errors`` must be empty."""
        payload: dict[str, Any] = self.query(query, variables, token=token)[field]
        assert payload["errors"] == [], payload
        return payload


ACCEPT = """
mutation($input: AcceptInvitationInput!) {
  acceptInvitation(input: $input) { token user { id status role } errors { code message } }
}"""
INVITE = """
mutation($input: InviteUserInput!) {
  inviteUser(input: $input) {
    user { id status } invitation { status } licenses { inUse available }
    errors { code message }
  }
}"""
UNASSIGN = """
mutation($userId: ID!) {
  unassignLicense(userId: $userId) {
    user { id status hasLicense } licenses { total inUse available } errors { code message }
  }
}"""
AGREEMENT = "{ licenseAgreement { version } account { licenses { total inUse available } } }"
CHANGE_SEATS = """
mutation($input: ChangeSeatCountInput!) {
  changeSeatCount(input: $input) {
    licenses { total inUse available } charge { kind quantity amountCents }
    errors { code message }
  }
}"""
TRANSFER = """
mutation($userId: ID!) {
  transferOwnership(userId: $userId) {
    previousOwner { id role } newOwner { id role isOwner } errors { code message }
  }
}"""
VIEWER = "{ viewer { id status role } }"
OWNER = "{ account { id owner { id email } licenses { total inUse } } }"


def _error_codes(body: dict[str, Any]) -> list[str]:
    return [error.get("extensions", {}).get("code") for error in body.get("errors") or []]


def _join(gql: GraphQLClient, cluster: Cluster, email: str, password: str) -> dict[str, Any]:
    """Wait for the invitation to ``email``, accept it; the SessionPayload."""
    invitation = cluster.wait_for_email(to=email, subject_contains="invited to join")
    token = invitation.accept_token(cluster.public_url)
    assert re.fullmatch(r"[A-Za-z0-9_-]+", token), token
    return gql.mutate("acceptInvitation", ACCEPT, {"input": {"token": token, "password": password}})


@slow
def test_journey_across_two_api_processes_then_nothing_is_left() -> None:
    require_cluster_tools()
    started = time.monotonic()
    # keep_files: the logs are read after stop(); removed below once everything passed.
    cluster = Cluster(api=2, workers=2, scheduler=True, keep_files=True)
    with cluster, httpx.Client(timeout=30) as http:
        assert len(cluster.api_urls) == 2
        gql = GraphQLClient(http, cluster.graphql_urls)
        account = cluster.create_account(
            name="Journey Inc",
            owner_email="olive@journey.example.com",
            seats=3,
            seat_price_cents=1200,
        )
        assert account.api_token.startswith("lic_")
        api_token = account.api_token

        # The owner's password-set link (written by the CLI, delivered via the relay).
        welcome = cluster.wait_for_email(
            to="olive@journey.example.com", subject_contains="password"
        )
        owner = gql.mutate(
            "acceptInvitation",
            ACCEPT,
            {
                "input": {
                    "token": welcome.accept_token(cluster.public_url),
                    "password": "olive-password-1",
                }
            },
        )
        owner_token = owner["token"]
        assert owner["user"]["role"] == "OWNER"

        # Invite -> the email arrives -> accept on the other process.
        invited = gql.mutate(
            "inviteUser",
            INVITE,
            {
                "input": {
                    "email": "alice@journey.example.com",
                    "firstName": "Alice",
                    "lastName": "A",
                }
            },
            token=api_token,
        )
        alice_id = invited["user"]["id"]
        assert invited["user"]["status"] == "INVITED"
        assert invited["licenses"] == {"inUse": 2, "available": 1}
        alice = _join(gql, cluster, "alice@journey.example.com", "alice-password-1")
        assert alice["user"] == {"id": alice_id, "status": "ENABLED", "role": "MEMBER"}
        assert gql.query(VIEWER, token=alice["token"])["viewer"]["status"] == "ENABLED"

        # Unassign: the user stays, DISABLED, signed out everywhere.
        released = gql.mutate("unassignLicense", UNASSIGN, {"userId": alice_id}, token=owner_token)
        assert released["user"]["status"] == "DISABLED"
        assert released["licenses"] == {"total": 3, "inUse": 1, "available": 2}
        assert "UNAUTHENTICATED" in _error_codes(gql.raw(VIEWER, token=alice["token"]))
        cluster.wait_for_email(to="alice@journey.example.com", subject_contains="removed")

        # More seats, after reading the agreement to accept.
        before = gql.query(AGREEMENT, token=api_token)
        version = before["licenseAgreement"]["version"]
        assert before["account"]["licenses"]["total"] == 3
        changed = gql.mutate(
            "changeSeatCount",
            CHANGE_SEATS,
            {"input": {"total": 5, "acceptAgreement": True, "agreementVersion": version}},
            token=owner_token,
        )
        assert changed["licenses"] == {"total": 5, "inUse": 1, "available": 4}
        assert changed["charge"]["kind"] == "SEAT_INCREASE"
        assert changed["charge"]["quantity"] == 2

        # Ownership moves to an ENABLED user: a second invited-and-accepted user.
        bob_id = gql.mutate(
            "inviteUser",
            INVITE,
            {
                "input": {
                    "email": "bob@journey.example.com",
                    "firstName": "Bob",
                    "lastName": "B",
                    "role": "ADMIN",
                }
            },
            token=owner_token,
        )["user"]["id"]
        bob = _join(gql, cluster, "bob@journey.example.com", "bob-password-12")
        assert bob["user"]["status"] == "ENABLED"
        moved = gql.mutate("transferOwnership", TRANSFER, {"userId": bob_id}, token=owner_token)
        assert moved["newOwner"] == {"id": bob_id, "role": "OWNER", "isOwner": True}
        assert moved["previousOwner"] == {"id": account.owner_user_id, "role": "ADMIN"}
        assert "UNAUTHENTICATED" in _error_codes(gql.raw(VIEWER, token=owner_token))
        for _ in cluster.api_urls:  # every process sees the new owner
            owner_now = gql.query(OWNER, token=api_token)["account"]
            assert owner_now["owner"]["id"] == bob_id
            assert owner_now["licenses"] == {"total": 5, "inUse": 2}
        cluster.wait_for_email(to="bob@journey.example.com", subject_contains="now the owner")
        cluster.wait_for_email(to="olive@journey.example.com", subject_contains="transferred")

        # Both processes served the journey and count it in their metrics.
        assert all(count >= 5 for count in gql.sent.values()), gql.sent
        for url in cluster.api_urls:
            metrics = http.get(f"{url}/metrics").text
            assert "licenses_graphql_requests_total" in metrics
            assert "licenses_http_responses_total" in metrics
        # Production logs are JSON lines carrying the request id.
        api_log = cluster.api_processes[0].log_path.read_text().splitlines()
        records = [json.loads(line) for line in api_log if line.startswith("{")]
        assert records, "no JSON log line from api-1"

        spawned = {pid: process_start_time(pid) for pid in processes_with_marker(cluster.marker)}
        leaders = [process.pid for process in cluster.processes]
        assert set(leaders) <= set(spawned)
        # The Dramatiq workers run child processes: the scan must have seen them too.
        assert len(spawned) > len(leaders)

    assert cluster.stopped is not None
    assert cluster.stopped.killed == [], cluster.stopped
    assert cluster.stopped.leftovers == []
    assert cluster.leftover_pids() == []
    alive = [pid for pid, start in spawned.items() if pid_alive(pid, start)]
    assert alive == [], f"still running after stop(): {alive}"
    for api in cluster.api_processes:
        assert_graceful_api_exit(api)
    assert time.monotonic() - started < 90
    assert cluster.directory is not None
    shutil.rmtree(cluster.directory)


def assert_graceful_api_exit(api: ManagedProcess) -> None:
    """uvicorn finished its shutdown (it then re-raises SIGTERM, hence 0 or -SIGTERM)."""
    assert api.returncode in (0, -signal.SIGTERM), (api.name, api.returncode)
    messages = [
        json.loads(line).get("message")
        for line in api.log_path.read_text().splitlines()
        if line.startswith("{")
    ]
    assert "Application shutdown complete." in messages, api.log_tail()


# --- graceful shutdown -------------------------------------------------------------------------

IN_FLIGHT = 50


def test_sigterm_finishes_in_flight_requests_and_refuses_new_connections() -> None:
    require_cluster_tools()
    with Cluster(api=1, workers=0, scheduler=False) as cluster:
        account = cluster.create_account(owner_email="drain@example.com", seats=7)
        api = cluster.api_processes[0]
        port = cluster.api_ports[0]
        body = json.dumps({"query": "{ account { id licenses { total inUse } } }"}).encode()
        half = len(body) // 2

        async def drive() -> list[httpx.Response]:
            started = 0
            all_started = asyncio.Event()
            release = asyncio.Event()

            async def slow_body() -> AsyncIterator[bytes]:
                # A slow client: headers and half the body now, the rest after SIGTERM.
                nonlocal started
                yield body[:half]
                started += 1
                if started == IN_FLIGHT:
                    all_started.set()
                await release.wait()
                yield body[half:]

            limits = httpx.Limits(max_connections=IN_FLIGHT, max_keepalive_connections=0)
            async with httpx.AsyncClient(timeout=60, limits=limits) as client:
                requests = [
                    asyncio.create_task(
                        client.post(
                            cluster.graphql_urls[0],
                            content=slow_body(),
                            headers={
                                "Authorization": f"Bearer {account.api_token}",
                                "Content-Type": "application/json",
                                "Content-Length": str(len(body)),
                            },
                        )
                    )
                    for _ in range(IN_FLIGHT)
                ]
                await asyncio.wait_for(all_started.wait(), 20)
                await asyncio.sleep(1.0)  # the server has read every request's headers

                api.send_signal(signal.SIGTERM)
                deadline = time.monotonic() + 10
                while True:  # the listening socket closes at once...
                    try:
                        _, writer = await asyncio.open_connection("127.0.0.1", port)
                    except ConnectionRefusedError:
                        break
                    writer.close()
                    assert time.monotonic() < deadline, "still accepting after SIGTERM"
                    await asyncio.sleep(0.1)
                # ... while the process waits for the requests it has.
                assert api.running
                assert not any(request.done() for request in requests)

                release.set()
                return list(await asyncio.gather(*requests))

        responses = asyncio.run(drive())
        assert [r.status_code for r in responses] == [200] * IN_FLIGHT
        for response in responses:
            payload = response.json()
            assert not payload.get("errors"), payload
            assert payload["data"]["account"]["licenses"]["total"] == 7
        api.popen.wait(15)
        assert_graceful_api_exit(api)
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{cluster.api_urls[0]}/healthz", timeout=2)
    assert cluster.leftover_pids() == []
    assert cluster.stopped is not None and cluster.stopped.killed == []


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
