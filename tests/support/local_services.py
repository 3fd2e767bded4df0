"""Throwaway PostgreSQL and Redis servers on loopback, for tests, CI and local clusters.

From Python::

    from tests.support.local_services import PostgresServer, RedisServer

    with PostgresServer() as pg, RedisServer() as redis:
        pg.url      # postgres://postgres@127.0.0.1:PORT/licenses  (Tortoise URL form)
        redis.url   # redis://127.0.0.1:PORT/0
        other = pg.create_database("isolated")   # URL of a fresh, empty database
        redis.restart()                           # same port, for fault tests

From a shell (the module is stdlib-only, so this works before any virtualenv exists)::

    python3 -m tests.support.local_services env    # start both, print TEST_POSTGRES_URL=...
                                                   # and TEST_REDIS_URL=..., run until SIGTERM
    python3 -m tests.support.local_services check  # where the binaries are; exit 1 if missing

It runs from the repository root (``tests`` and ``tests.support`` are plain packages with empty
``__init__`` modules) and must keep importing nothing outside the standard library.

Every server lives in its own temporary directory, listens on 127.0.0.1 on a free port, runs in
its own process group and is stopped (and its directory removed) by ``stop()``, by leaving the
``with`` block, or at interpreter exit.  When run as root, PostgreSQL (which refuses to run as
root) runs as the ``postgres`` account, or ``nobody`` when that does not exist.

Environment overrides: ``PG_BINDIR`` (directory holding ``initdb`` and ``postgres``) and
``REDIS_SERVER`` (path of the ``redis-server`` binary).
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import glob
import os
import pwd
import re
import shutil
import signal
import socket
import stat
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import FrameType, TracebackType
from typing import IO, Self

__all__ = [
    "LOOPBACK",
    "PostgresServer",
    "RedisServer",
    "ServiceError",
    "find_free_port",
    "find_postgres_bindir",
    "find_redis_server",
    "main",
]

LOOPBACK = "127.0.0.1"

_START_ATTEMPTS = 3  # a free port can be taken between find_free_port() and bind()
_POLL_INTERVAL = 0.05
_LOG_TAIL_CHARS = 3000
_DB_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")

_FAST_TEST_SETTINGS: dict[str, str] = {
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "200",
}


class ServiceError(RuntimeError):
    """A local service could not be found, started or queried."""


def find_free_port(host: str = LOOPBACK) -> int:
    """A TCP port that is free on ``host`` right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


# --- finding binaries ---------------------------------------------------------------------


def _has_postgres_server(bindir: Path) -> bool:
    return all(os.access(bindir / name, os.X_OK) for name in ("initdb", "postgres"))


def _version_key(bindir: Path) -> tuple[int, ...]:
    # /usr/lib/postgresql/15/bin -> (15,); /usr/lib/postgresql/9.6/bin -> (9, 6)
    return tuple(int(part) for part in re.findall(r"\d+", bindir.parent.name))


def find_postgres_bindir() -> Path | None:
    """The directory holding ``initdb`` and ``postgres``, or None.

    Looked up in order: ``$PG_BINDIR``, ``pg_config --bindir``, the newest
    ``/usr/lib/postgresql/*/bin`` (Debian's layout) and ``initdb`` on ``PATH``.
    """
    override = os.environ.get("PG_BINDIR")
    if override:
        return Path(override) if _has_postgres_server(Path(override)) else None
    pg_config = shutil.which("pg_config")
    if pg_config:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            result = subprocess.run(
                [pg_config, "--bindir"],
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=10,
                check=True,
            )
            bindir = Path(result.stdout.strip())
            if result.stdout.strip() and _has_postgres_server(bindir):
                return bindir
    debian = sorted(
        (Path(path) for path in glob.glob("/usr/lib/postgresql/*/bin")),
        key=_version_key,
        reverse=True,
    )
    for bindir in debian:
        if _has_postgres_server(bindir):
            return bindir
    initdb = shutil.which("initdb")
    if initdb:
        for bindir in (Path(initdb).parent, Path(initdb).resolve().parent):
            if _has_postgres_server(bindir):
                return bindir
    return None


def find_redis_server() -> Path | None:
    """The ``redis-server`` binary (``$REDIS_SERVER``, else on ``PATH`` or in sbin), or None."""
    override = os.environ.get("REDIS_SERVER")
    if override:
        return Path(override) if os.access(override, os.X_OK) else None
    search = os.pathsep.join(
        [os.environ.get("PATH", os.defpath), "/usr/sbin", "/usr/local/sbin", "/usr/local/bin"]
    )
    found = shutil.which("redis-server", path=search)
    return Path(found) if found else None


# --- process plumbing ---------------------------------------------------------------------


def _unprivileged_account(name: str | None) -> pwd.struct_passwd | None:
    """The account to run a server as: None when we are not root (run as ourselves)."""
    if os.geteuid() != 0:
        return None
    candidates = [name] if name else ["postgres", "nobody"]
    for candidate in candidates:
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(candidate)
    raise ServiceError(
        f"running as root, but none of the accounts {candidates} exists to run the server as"
    )


def _world_traversable(path: Path) -> bool:
    for directory in (path, *path.parents):
        with contextlib.suppress(OSError):
            if not os.stat(directory).st_mode & stat.S_IXOTH:
                return False
    return True


def _make_temp_dir(prefix: str, parent: str | Path | None, owner: pwd.struct_passwd | None) -> Path:
    where = Path(parent) if parent is not None else Path(tempfile.gettempdir())
    if owner is not None and parent is None and not _world_traversable(where):
        where = Path("/tmp")
    path = Path(tempfile.mkdtemp(prefix=prefix, dir=where))
    if owner is not None:
        os.chown(path, owner.pw_uid, owner.pw_gid)
    return path


def _child_env(owner: pwd.struct_passwd | None, home: Path) -> dict[str, str]:
    # PG* variables (PGDATA, PGPORT, PGOPTIONS...) of the caller must not leak into the server.
    env = {key: value for key, value in os.environ.items() if not key.startswith("PG")}
    env["LC_ALL"] = "C"
    if owner is not None:
        env.update(HOME=str(home), USER=owner.pw_name, LOGNAME=owner.pw_name)
    return env


def _log_tail(path: Path) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return text[-_LOG_TAIL_CHARS:].strip() or "(empty log)"


def _signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


def _child_pids(pid: int) -> list[int]:
    """Direct children of ``pid`` (Linux /proc; empty elsewhere)."""
    children = []
    for stat_file in glob.glob("/proc/[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            # "pid (comm) state ppid ...": comm may contain spaces and parentheses
            after_comm = Path(stat_file).read_text().rsplit(")", 1)[1].split()
            if int(after_comm[1]) == pid:
                children.append(int(Path(stat_file).parent.name))
    return children


class _EarlyExitError(Exception):
    """The server process exited while we were waiting for it to accept connections."""


class _Server:
    """Start/stop/restart plumbing shared by the concrete servers."""

    kind = "server"
    # (signal sent to the main process, seconds to wait for it to exit), tried in order;
    # the whole process group is SIGKILLed after the last one.
    stop_signals: tuple[tuple[signal.Signals, float], ...] = ((signal.SIGTERM, 10.0),)

    def __init__(
        self,
        *,
        host: str,
        port: int,
        base_dir: str | Path | None,
        startup_timeout: float,
        owner: pwd.struct_passwd | None,
    ) -> None:
        self.host = host
        self.port = port
        self.startup_timeout = startup_timeout
        self._port_fixed = port != 0
        self._parent_dir = base_dir
        self._owner = owner
        self._directory: Path | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._started_once = False

    # -- public API

    @property
    def directory(self) -> Path:
        """The server's temporary directory (data, logs, sockets); gone after ``stop()``."""
        if self._directory is None:
            raise ServiceError(f"{self.kind} is not started")
        return self._directory

    @property
    def log_path(self) -> Path:
        return self.directory / f"{self.kind}.log"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> Self:
        """Start the server and wait until it accepts connections (no-op if running)."""
        if self.running:
            return self
        fresh = self._directory is None
        try:
            if self._directory is None:
                self._directory = _make_temp_dir(
                    f"licenses-{self.kind}-", self._parent_dir, self._owner
                )
                _RUNNING.add(self)
                self._prepare()
            self._launch()
        except BaseException:
            if fresh:
                self.stop()
            else:
                self._terminate()  # a failed restart keeps the directory (stop() removes it)
            raise
        return self

    def stop(self) -> None:
        """Stop the server, kill its process group and remove its directory (idempotent)."""
        try:
            self._terminate()
        finally:
            if self._directory is not None:
                shutil.rmtree(self._directory, ignore_errors=True)
                self._directory = None
            _RUNNING.discard(self)

    def stop_process(self) -> None:
        """Stop the process only (an outage): the directory and port stay, ``start()``
        brings the same server back."""
        if self._directory is None:
            raise ServiceError(f"{self.kind} was never started")
        self._terminate()

    def restart(self) -> None:
        """Stop the process and start it again on the same port, keeping the directory."""
        if self._directory is None:
            raise ServiceError(f"{self.kind} was never started")
        self._terminate()
        self._port_fixed = True
        self.start()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = f"pid={self.pid}" if self.running else "stopped"
        return f"<{type(self).__name__} {self.host}:{self.port} {state}>"

    # -- hooks for subclasses

    def _prepare(self) -> None:
        """One-time set-up of a fresh directory (e.g. initdb)."""

    def _argv(self) -> list[str]:
        raise NotImplementedError

    def _probe(self) -> bool:
        """True once the server answers; False while it is starting; raise if it is broken."""
        raise NotImplementedError

    def _after_first_start(self) -> None:
        """Runs once, after the first successful start."""

    # -- internals

    def _spawn(self, argv: Sequence[str], log: IO[bytes]) -> subprocess.Popen[bytes]:
        owner = self._owner
        return subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=self.directory,
            env=_child_env(owner, self.directory),
            start_new_session=True,  # own process group: killpg() on stop, no terminal signals
            user=owner.pw_uid if owner else None,
            group=owner.pw_gid if owner else None,
            extra_groups=[] if owner else None,
        )

    def _launch(self) -> None:
        attempts = 1 if self._port_fixed else _START_ATTEMPTS
        for attempt in range(1, attempts + 1):
            if not self._port_fixed:
                self.port = find_free_port(self.host)
            with open(self.log_path, "ab") as log:
                self._proc = self._spawn(self._argv(), log)
            try:
                self._wait_ready()
            except _EarlyExitError:
                self._terminate()
                tail = _log_tail(self.log_path)
                if attempt < attempts and "address already in use" in tail.lower():
                    continue
                raise ServiceError(
                    f"{self.kind} exited during start-up on {self.host}:{self.port}; "
                    f"log {self.log_path}:\n{tail}"
                ) from None
            break
        self._port_fixed = True
        if not self._started_once:
            self._started_once = True
            self._after_first_start()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        while True:
            proc = self._proc
            if proc is None or proc.poll() is not None:
                raise _EarlyExitError
            if self._probe():
                return
            if time.monotonic() > deadline:
                raise ServiceError(
                    f"{self.kind} did not accept connections on {self.host}:{self.port} within "
                    f"{self.startup_timeout:.0f}s; log {self.log_path}:\n"
                    f"{_log_tail(self.log_path)}"
                )
            time.sleep(_POLL_INTERVAL)

    def _terminate(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        try:
            for sig, timeout in self.stop_signals:
                if proc.poll() is not None:
                    break
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(sig)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout)
        finally:
            # Last resort: SIGKILL the process group and the direct children (postgres puts
            # each backend in its own session, so the group alone does not cover them).
            children = _child_pids(proc.pid) if proc.poll() is None else []
            _signal_group(proc.pid, signal.SIGKILL)
            for child in children:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(child, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(5)


_RUNNING: set[_Server] = set()


@atexit.register
def _stop_all() -> None:
    for server in list(_RUNNING):
        with contextlib.suppress(Exception):
            server.stop()


# --- PostgreSQL ---------------------------------------------------------------------------


class _PgError(Exception):
    def __init__(self, fields: Mapping[str, str]) -> None:
        self.sqlstate = fields.get("C", "")
        super().__init__(f"{fields.get('S', 'ERROR')} {self.sqlstate}: {fields.get('M', '')}")


def _recv_exact(sock: socket.socket, size: int) -> bytes:
    buf = bytearray()
    while len(buf) < size:
        chunk = sock.recv(size - len(buf))
        if not chunk:
            raise ConnectionResetError("connection closed by the server")
        buf += chunk
    return bytes(buf)


def _pg_until_ready(sock: socket.socket) -> None:
    """Read backend messages until ReadyForQuery; raise the first ErrorResponse."""
    error: _PgError | None = None
    while True:
        try:
            header = _recv_exact(sock, 5)
        except ConnectionResetError:
            if error is not None:
                raise error from None
            raise
        kind, length = header[:1], struct.unpack("!i", header[1:])[0]
        body = _recv_exact(sock, length - 4)
        if kind == b"R":
            (auth,) = struct.unpack("!i", body[:4])
            if auth != 0:
                raise ServiceError(f"PostgreSQL asks for authentication (code {auth}), not trust")
        elif kind == b"E" and error is None:
            fields = {
                item[:1].decode(): item[1:].decode(errors="replace")
                for item in body.split(b"\0")
                if item
            }
            error = _PgError(fields)
        elif kind == b"Z":
            if error is not None:
                raise error
            return


def _pg_execute(host: str, port: int, user: str, database: str, sql: str | None) -> None:
    """Connect with the v3 wire protocol (trust auth) and run one simple query, if given."""
    with socket.create_connection((host, port), timeout=10) as sock:
        params = f"user\0{user}\0database\0{database}\0\0".encode()
        sock.sendall(struct.pack("!ii", 8 + len(params), 196608) + params)
        _pg_until_ready(sock)
        if sql is not None:
            query = sql.encode() + b"\0"
            sock.sendall(b"Q" + struct.pack("!i", 4 + len(query)) + query)
            _pg_until_ready(sock)
        sock.sendall(b"X" + struct.pack("!i", 4))


class PostgresServer(_Server):
    """A throwaway PostgreSQL cluster: initdb in a temp dir, ``postgres`` on 127.0.0.1.

    ``url`` is ``postgres://postgres@127.0.0.1:PORT/<database>``; trust authentication, no
    password.  Settings favour speed over durability (fsync, synchronous_commit and
    full_page_writes off); pass ``settings`` to add or override ``-c name=value`` options.
    """

    kind = "postgres"
    # SIGINT = fast shutdown; SIGQUIT = immediate shutdown; then SIGKILL of the whole group.
    stop_signals = ((signal.SIGINT, 15.0), (signal.SIGQUIT, 5.0))

    def __init__(
        self,
        database: str = "licenses",
        *,
        user: str = "postgres",
        host: str = LOOPBACK,
        port: int = 0,
        bindir: str | Path | None = None,
        run_as: str | None = None,
        base_dir: str | Path | None = None,
        settings: Mapping[str, str] | None = None,
        startup_timeout: float = 60.0,
    ) -> None:
        _check_db_name(database)
        found = Path(bindir) if bindir is not None else find_postgres_bindir()
        if found is None or not _has_postgres_server(found):
            raise ServiceError(
                "PostgreSQL server binaries (initdb, postgres) not found; install the "
                "'postgresql' package or set PG_BINDIR"
            )
        super().__init__(
            host=host,
            port=port,
            base_dir=base_dir,
            startup_timeout=startup_timeout,
            owner=_unprivileged_account(run_as),
        )
        self.bindir = found
        self.database = database
        self.user = user
        self.settings = {**_FAST_TEST_SETTINGS, **(settings or {})}

    @property
    def data_dir(self) -> Path:
        return self.directory / "data"

    @property
    def url(self) -> str:
        """URL of the server's main database (Tortoise / asyncpg form)."""
        return self.url_for(self.database)

    def url_for(self, database: str) -> str:
        return f"postgres://{self.user}@{self.host}:{self.port}/{database}"

    def execute(self, sql: str, database: str = "postgres") -> None:
        """Run one SQL statement (no results) through the server's TCP port."""
        if not self.running:
            raise ServiceError("postgres is not running")
        try:
            _pg_execute(self.host, self.port, self.user, database, sql)
        except (_PgError, OSError) as exc:
            raise ServiceError(f"PostgreSQL {sql!r} on {database!r} failed: {exc}") from exc

    def create_database(self, name: str) -> str:
        """Create an empty database and return its URL."""
        _check_db_name(name)
        self.execute(f'CREATE DATABASE "{name}"')
        return self.url_for(name)

    def drop_database(self, name: str) -> None:
        """Drop a database, disconnecting its clients."""
        _check_db_name(name)
        self.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def _prepare(self) -> None:
        argv = [
            str(self.bindir / "initdb"),
            "-D",
            str(self.data_dir),
            "-A",
            "trust",
            "-U",
            self.user,
            "--no-sync",
            "-E",
            "UTF8",
            "--locale=C",
        ]
        with open(self.log_path, "ab") as log:
            proc = self._spawn(argv, log)
        try:
            code = proc.wait(self.startup_timeout)
        except BaseException:
            _signal_group(proc.pid, signal.SIGKILL)
            proc.wait()
            raise
        if code != 0:
            raise ServiceError(
                f"initdb failed with exit code {code}; log {self.log_path}:\n"
                f"{_log_tail(self.log_path)}"
            )

    def _argv(self) -> list[str]:
        argv = [
            str(self.bindir / "postgres"),
            "-D",
            str(self.data_dir),
            "-h",
            self.host,
            "-p",
            str(self.port),
            "-k",
            str(self.directory),
        ]
        for name, value in self.settings.items():
            argv += ["-c", f"{name}={value}"]
        return argv

    def _probe(self) -> bool:
        try:
            _pg_execute(self.host, self.port, self.user, "postgres", None)
        except OSError:
            return False  # not listening yet
        except _PgError as exc:
            if exc.sqlstate == "57P03":  # cannot_connect_now: starting up
                return False
            raise ServiceError(f"postgres refuses connections: {exc}") from exc
        return True

    def _after_first_start(self) -> None:
        if self.database != "postgres":
            self.create_database(self.database)


def _check_db_name(name: str) -> None:
    if not _DB_NAME.fullmatch(name):
        raise ValueError(f"invalid database name {name!r}: use letters, digits and _")


# --- Redis --------------------------------------------------------------------------------


class RedisServer(_Server):
    """A throwaway ``redis-server`` on 127.0.0.1; ``url`` is ``redis://127.0.0.1:PORT/0``.

    No snapshots; the append-only file is off unless ``appendonly=True`` (the attribute can be
    changed before ``restart()``).  Data survive ``restart()`` only with the append-only file.
    """

    kind = "redis"
    stop_signals = ((signal.SIGTERM, 10.0),)

    def __init__(
        self,
        *,
        host: str = LOOPBACK,
        port: int = 0,
        appendonly: bool = False,
        binary: str | Path | None = None,
        base_dir: str | Path | None = None,
        startup_timeout: float = 30.0,
    ) -> None:
        found = Path(binary) if binary is not None else find_redis_server()
        if found is None or not os.access(found, os.X_OK):
            raise ServiceError(
                "redis-server not found; install the 'redis-server' package or set REDIS_SERVER"
            )
        super().__init__(
            host=host, port=port, base_dir=base_dir, startup_timeout=startup_timeout, owner=None
        )
        self.binary = found
        self.appendonly = appendonly

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"

    def _argv(self) -> list[str]:
        return [
            str(self.binary),
            "--port",
            str(self.port),
            "--bind",
            self.host,
            "--dir",
            str(self.directory),
            "--save",
            "",
            "--appendonly",
            "yes" if self.appendonly else "no",
            "--daemonize",
            "no",
        ]

    def _probe(self) -> bool:
        try:
            with socket.create_connection((self.host, self.port), timeout=5) as sock:
                sock.sendall(b"*1\r\n$4\r\nPING\r\n")
                reply = b""
                while not reply.endswith(b"\r\n"):
                    chunk = sock.recv(256)
                    if not chunk:
                        return False
                    reply += chunk
        except OSError:
            return False
        if reply.startswith(b"+PONG"):
            return True
        if reply.startswith(b"-LOADING"):
            return False
        raise ServiceError(f"redis answered PING with {reply!r}")


# --- command line -------------------------------------------------------------------------


class _StopRequestedError(Exception):
    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


def _on_stop_signal(signum: int, frame: FrameType | None) -> None:
    for sig in _STOP_SIGNALS:  # a second signal must not interrupt the clean-up
        signal.signal(sig, signal.SIG_IGN)
    raise _StopRequestedError(signum)


def _say(message: str) -> None:
    print(f"local_services: {message}", file=sys.stderr, flush=True)


def _cmd_env(args: argparse.Namespace) -> int:
    for sig in _STOP_SIGNALS:
        signal.signal(sig, _on_stop_signal)
    parent = os.getppid()
    try:
        with contextlib.ExitStack() as stack:
            servers: list[_Server] = []
            lines: list[str] = []
            if not args.no_postgres:
                pg = stack.enter_context(PostgresServer(database=args.database))
                servers.append(pg)
                lines.append(f"TEST_POSTGRES_URL={pg.url}")
                _say(f"PostgreSQL ({pg.bindir}) ready at {pg.url}, directory {pg.directory}")
            if not args.no_redis:
                redis = stack.enter_context(RedisServer(appendonly=args.redis_appendonly))
                servers.append(redis)
                lines.append(f"TEST_REDIS_URL={redis.url}")
                _say(f"Redis ({redis.binary}) ready at {redis.url}, directory {redis.directory}")
            print("\n".join(lines), flush=True)
            _say("running; stop with SIGTERM or Ctrl-C")
            while True:
                for server in servers:
                    if not server.running:
                        _say(f"{server.kind} died unexpectedly; log:\n{_log_tail(server.log_path)}")
                        return 1
                if args.exit_with_parent and os.getppid() != parent:
                    _say("parent process is gone, stopping")
                    return 0
                time.sleep(0.5)
    except _StopRequestedError as stop:
        _say(f"got {signal.Signals(stop.signum).name}, services stopped")
        return 0
    except ServiceError as exc:
        _say(f"error: {exc}")
        return 1


def _cmd_check(args: argparse.Namespace) -> int:
    missing = False
    if not args.redis:
        bindir = find_postgres_bindir()
        print(f"postgres: {bindir or 'NOT FOUND (install the postgresql package)'}")
        missing |= bindir is None
    if not args.postgres:
        redis = find_redis_server()
        print(f"redis-server: {redis or 'NOT FOUND (install the redis-server package)'}")
        missing |= redis is None
    return 1 if missing else 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.support.local_services",
        description="Throwaway PostgreSQL and Redis servers on loopback.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    env = commands.add_parser(
        "env",
        help="start PostgreSQL and Redis, print TEST_POSTGRES_URL=/TEST_REDIS_URL= lines, "
        "stay in the foreground until SIGTERM/SIGINT",
    )
    env.add_argument("--database", default="licenses", help="database to create (licenses)")
    env.add_argument("--no-postgres", action="store_true", help="do not start PostgreSQL")
    env.add_argument("--no-redis", action="store_true", help="do not start Redis")
    env.add_argument("--redis-appendonly", action="store_true", help="Redis append-only file")
    env.add_argument(
        "--exit-with-parent",
        action="store_true",
        help="stop the services when the parent process exits (for scripts)",
    )
    env.set_defaults(handler=_cmd_env)
    check = commands.add_parser(
        "check", help="print where the server binaries are; exit 1 if one is missing"
    )
    only = check.add_mutually_exclusive_group()
    only.add_argument("--postgres", action="store_true", help="check PostgreSQL only")
    only.add_argument("--redis", action="store_true", help="check redis-server only")
    check.set_defaults(handler=_cmd_check)
    args = parser.parse_args(argv)
    code: int = args.handler(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
