"""The production topology on loopback, without containers: for tests and for trying it out.

From Python::

    from tests.support.cluster import Cluster

    with Cluster(api=2, workers=2) as cluster:
        cluster.api_urls          # ["http://127.0.0.1:PORT", ...], each /readyz answered
        account = cluster.create_account(owner_email="owner@example.com")  # CLI, --json
        email = cluster.wait_for_email(to="owner@example.com")
        email.accept_token(cluster.public_url)     # the token of the accept-invitation link
    # leaving the block stops every process (SIGTERM, then SIGKILL), then Redis and PostgreSQL

From a shell::

    python -m tests.support.cluster up --api 2 --workers 2    # prints the URLs, runs until Ctrl-C

What runs, in start order (``stop()`` goes in reverse):

1. PostgreSQL and Redis (``tests.support.local_services``: throwaway servers on 127.0.0.1,
   Redis with its append-only file on, as in production);
2. an SMTP server: the tests' catcher (``tests.support.smtp``, aiosmtpd's ``Controller``) in a
   thread of *this* process.  Every message it
   receives is kept in memory (``emails``, ``wait_for_email``) and written to ``mail/`` in the
   cluster's directory as ``NNNN.eml``, so a person running ``up`` can read it too.  In-process
   was chosen over a subprocess because the tests then read messages with no polling of files and
   no extra process to clean up;
3. ``licenses migrate`` (one-shot, like the compose ``migrate`` service);
4. N x ``licenses serve`` on free ports, M x ``licenses worker --processes 1 --threads 2`` and
   one ``licenses scheduler``, with ENVIRONMENT=production, LOG_FORMAT=json, one SECRET_KEY and
   a short SCHEDULER_INTERVAL_SECONDS.  Start-up waits for every API's ``/readyz``.

Every process runs in its own session (process group) with the marker variable
``LICENSES_CLUSTER_ID`` in its environment, so ``stop()`` can SIGTERM each leader (which lets
uvicorn finish in-flight requests and Dramatiq finish or requeue its messages), SIGKILL each
group after ``stop_timeout``, and finally find and kill any descendant that escaped its group by
scanning ``/proc/*/environ`` for the marker.  ``leftover_pids()`` runs that scan.

Each process writes standard output and error to ``logs/NAME.log`` in a temporary directory.
The directory is removed by ``stop()`` unless something failed (start-up error, exception in the
``with`` block, a process that had to be killed or died early) or ``keep_files=True``; its path
is then printed to standard error.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType, TracebackType
from typing import Self

from domain.settings import SETTINGS
from tests.support.local_services import (
    LOOPBACK,
    PostgresServer,
    RedisServer,
    ServiceError,
    find_free_port,
)
from tests.support.smtp import ReceivedEmail, SmtpCatcher, SmtpServer

__all__ = [
    "MARKER_VARIABLE",
    "Cluster",
    "ClusterError",
    "CreatedAccount",
    "ManagedProcess",
    "ReceivedEmail",
    "StopReport",
    "main",
    "pid_alive",
    "process_start_time",
    "processes_with_marker",
]

MARKER_VARIABLE = "LICENSES_CLUSTER_ID"
REPO_ROOT = Path(__file__).resolve().parents[2]

_LOG_TAIL_CHARS = 4000
_POLL_INTERVAL = 0.1
# The service's settings (and uvicorn's) that a caller's environment must not leak into the
# cluster's processes.
_SCRUBBED_VARIABLES = frozenset(
    {setting.name for setting in SETTINGS} | {"FORWARDED_ALLOW_IPS", "WEB_CONCURRENCY"}
)


class ClusterError(RuntimeError):
    """The cluster could not be started, or one of its commands failed."""


# --- processes ---------------------------------------------------------------------------------


def _proc_stat(pid: int) -> tuple[str, int] | None:
    """(state letter, start time in clock ticks) of a process, or None when there is none."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # "pid (comm) state ppid ...": comm may hold spaces and parentheses.
    fields = text.rsplit(")", 1)[1].split()
    return fields[0], int(fields[19])


def process_start_time(pid: int) -> int | None:
    """When ``pid`` started (clock ticks since boot): with the pid, it names one process."""
    stat = _proc_stat(pid)
    return stat[1] if stat else None


def pid_alive(pid: int, start_time: int | None = None) -> bool:
    """True while ``pid`` is a running process (zombies count as gone).

    With ``start_time`` (from ``/proc/PID/stat``) a new process that reused the pid does not
    count either.
    """
    stat = _proc_stat(pid)
    if stat is None:
        return False
    state, started = stat
    if state in ("Z", "X"):
        return False
    return start_time is None or started == start_time


def processes_with_marker(marker: str) -> list[int]:
    """Pids of the live processes whose environment holds ``LICENSES_CLUSTER_ID=marker``."""
    needle = f"{MARKER_VARIABLE}={marker}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        if pid == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if needle in environ.split(b"\0") and pid_alive(pid):
            found.append(pid)
    return sorted(found)


def _log_tail(path: Path) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return text[-_LOG_TAIL_CHARS:].strip() or "(empty log)"


@dataclass
class ManagedProcess:
    """One process of the cluster, leader of its own process group."""

    name: str
    argv: list[str]
    log_path: Path
    popen: subprocess.Popen[bytes]
    signalled: bool = False  # asked to stop (by stop() or a test): its exit is no failure
    killed: bool = False

    @property
    def pid(self) -> int:
        return self.popen.pid

    @property
    def returncode(self) -> int | None:
        return self.popen.poll()

    @property
    def running(self) -> bool:
        return self.popen.poll() is None

    def send_signal(self, sig: signal.Signals) -> None:
        """Send ``sig`` to the process itself (not its group)."""
        if sig in (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT, signal.SIGKILL):
            self.signalled = True
        if self.running:
            with contextlib.suppress(ProcessLookupError):
                self.popen.send_signal(sig)

    def kill_group(self) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)

    def log_tail(self) -> str:
        return _log_tail(self.log_path)


# --- mail ---------------------------------------------------------------------------------------


def _start_smtp(directory: Path) -> SmtpServer:
    """The tests' SMTP catcher, keeping every message in memory and in ``directory``."""
    try:
        return SmtpServer(SmtpCatcher(directory=directory)).start()
    except ImportError as exc:
        raise ClusterError("aiosmtpd is not installed (pip install -e '.[dev]')") from exc


# --- the cluster ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class CreatedAccount:
    """What ``licenses account create --json`` printed."""

    account_id: str
    owner_user_id: str
    api_token: str
    owner_email: str


@dataclass
class StopReport:
    """What ``stop()`` found, for reports and tests."""

    exit_codes: dict[str, int | None] = field(default_factory=dict)
    killed: list[str] = field(default_factory=list)
    leftovers: list[int] = field(default_factory=list)


_LIVE_CLUSTERS: set[Cluster] = set()


@atexit.register
def _stop_live_clusters() -> None:
    for cluster in list(_LIVE_CLUSTERS):
        with contextlib.suppress(Exception):
            cluster.stop()


class Cluster:
    """PostgreSQL, Redis, SMTP, migrations, N APIs, M workers and a scheduler on loopback."""

    def __init__(
        self,
        *,
        api: int = 2,
        workers: int = 2,
        scheduler: bool = True,
        schedulers: int = 1,
        worker_threads: int = 2,
        scheduler_interval_seconds: int = 2,
        secret_key: str | None = None,
        public_url: str | None = None,
        extra_env: Mapping[str, str] | None = None,
        startup_timeout: float = 60.0,
        stop_timeout: float = 35.0,
        keep_files: bool = False,
        python: str = sys.executable,
    ) -> None:
        if api < 1:
            raise ValueError("a cluster needs at least one API process")
        if workers < 0:
            raise ValueError("workers must be >= 0")
        if schedulers < 1:
            raise ValueError("schedulers must be >= 1 (scheduler=False runs none)")
        self.api_count = api
        self.worker_count = workers
        self.run_scheduler = scheduler
        self.scheduler_count = schedulers
        self.worker_threads = worker_threads
        self.scheduler_interval_seconds = scheduler_interval_seconds
        self.secret_key = secret_key or secrets.token_urlsafe(48)
        self._public_url = public_url
        self.extra_env = dict(extra_env or {})
        self.startup_timeout = startup_timeout
        self.stop_timeout = stop_timeout
        self.keep_files = keep_files
        self.python = python
        self.marker = f"cluster-{secrets.token_hex(8)}"

        self.directory: Path | None = None
        self.postgres: PostgresServer | None = None
        self.redis: RedisServer | None = None
        self._smtp: SmtpServer | None = None
        self.api_processes: list[ManagedProcess] = []
        self.worker_processes: list[ManagedProcess] = []
        self.scheduler_process: ManagedProcess | None = None
        # schedulers > 1: "scheduler-2", ... beside scheduler_process (SPEC: two are safe).
        self.extra_scheduler_processes: list[ManagedProcess] = []
        self.api_ports: list[int] = []
        self.stopped: StopReport | None = None
        self._failed = False
        self._started = False

    # -- what a test sees

    @property
    def log_dir(self) -> Path:
        return self._dir() / "logs"

    @property
    def mail_dir(self) -> Path:
        return self._dir() / "mail"

    @property
    def api_urls(self) -> list[str]:
        return [f"http://{LOOPBACK}:{port}" for port in self.api_ports]

    @property
    def graphql_urls(self) -> list[str]:
        return [f"{url}/graphql" for url in self.api_urls]

    @property
    def public_url(self) -> str:
        if self._public_url is not None:
            return self._public_url.rstrip("/")
        if not self.api_ports:
            raise ClusterError("the cluster is not started")
        return self.api_urls[0]

    @property
    def smtp_port(self) -> int:
        if self._smtp is None:
            raise ClusterError("the cluster is not started")
        return self._smtp.port

    @property
    def processes(self) -> list[ManagedProcess]:
        """Every long-running process, in start order."""
        scheduler = [self.scheduler_process] if self.scheduler_process is not None else []
        scheduler += self.extra_scheduler_processes
        return [*self.api_processes, *self.worker_processes, *scheduler]

    @property
    def emails(self) -> list[ReceivedEmail]:
        if self._smtp is None:
            return []
        return self._smtp.handler.messages()

    def env(self) -> dict[str, str]:
        """The environment every process of the cluster runs with."""
        if self.postgres is None or self.redis is None or self._smtp is None:
            raise ClusterError("the cluster is not started")
        env = {k: v for k, v in os.environ.items() if k not in _SCRUBBED_VARIABLES}
        python_path = [str(REPO_ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
        env.update(
            ENVIRONMENT="production",
            DATABASE_URL=self.postgres.url,
            REDIS_URL=self.redis.url,
            MAIL_URL=f"smtp://{LOOPBACK}:{self._smtp.port}",
            PUBLIC_URL=self.public_url,
            SECRET_KEY=self.secret_key,
            LOG_FORMAT="json",
            SCHEDULER_INTERVAL_SECONDS=str(self.scheduler_interval_seconds),
            PYTHONPATH=os.pathsep.join(python_path),
            PYTHONUNBUFFERED="1",
        )
        env.update(self.extra_env)
        env[MARKER_VARIABLE] = self.marker
        return env

    def wait_for_email(
        self,
        predicate: Callable[[ReceivedEmail], bool] | None = None,
        *,
        to: str | None = None,
        subject_contains: str | None = None,
        timeout: float = 30.0,
        skip: int = 0,
    ) -> ReceivedEmail:
        """The first (after ``skip`` matches) received message that matches; waits for it."""
        if self._smtp is None:
            raise ClusterError("the cluster is not started")

        def matches(message: ReceivedEmail) -> bool:
            if to is not None and to.lower() not in (r.lower() for r in message.recipients):
                return False
            if subject_contains is not None and subject_contains not in message.subject:
                return False
            return predicate is None or predicate(message)

        catcher = self._smtp.handler
        found = catcher.wait_for(matches, timeout=timeout, skip=skip)
        if found is None:
            received = [(m.recipients, m.subject) for m in catcher.messages()]
            raise ClusterError(
                f"no email to={to!r} subject~{subject_contains!r} within {timeout:.0f}s; "
                f"received: {received}; worker logs in {self.log_dir}"
            )
        return found

    def run_cli(self, *args: str, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
        """Run ``python -m api.cli ARGS`` with the cluster's environment (stderr to its log)."""
        name = "cli-" + "-".join(a for a in args[:2] if not a.startswith("-"))
        log_path = self._log_path(name)
        with open(log_path, "ab") as log:
            log.write(f"$ licenses {' '.join(args)}\n".encode())
            log.flush()
            result = subprocess.run(
                [self.python, "-m", "api.cli", *args],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=log,
                cwd=self._dir(),
                env=self.env(),
                timeout=timeout,
                check=False,
                text=True,
            )
        if result.returncode != 0:
            raise ClusterError(
                f"licenses {' '.join(args)} exited with {result.returncode}; log {log_path}:\n"
                f"{_log_tail(log_path)}\nstdout: {result.stdout}"
            )
        return result

    def create_account(
        self,
        *,
        name: str = "Cluster Test",
        owner_email: str = "owner@example.com",
        owner_first_name: str = "Olive",
        owner_last_name: str = "Owner",
        seats: int = 5,
        seat_price_cents: int = 1200,
        currency: str = "USD",
        interval: str = "month",
    ) -> CreatedAccount:
        """``licenses account create --json``; the owner gets a password-set email."""
        result = self.run_cli(
            "account",
            "create",
            "--name",
            name,
            "--owner-email",
            owner_email,
            "--owner-first-name",
            owner_first_name,
            "--owner-last-name",
            owner_last_name,
            "--seats",
            str(seats),
            "--seat-price-cents",
            str(seat_price_cents),
            "--currency",
            currency,
            "--interval",
            interval,
            "--json",
        )
        try:
            printed = json.loads(result.stdout)
            return CreatedAccount(
                account_id=str(printed["accountId"]),
                owner_user_id=str(printed["ownerUserId"]),
                api_token=str(printed["apiToken"]),
                owner_email=owner_email,
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise ClusterError(f"account create --json printed {result.stdout!r}") from exc

    def leftover_pids(self) -> list[int]:
        """Live processes carrying this cluster's marker (none once ``stop()`` returned)."""
        return processes_with_marker(self.marker)

    def mark_failed(self) -> None:
        """Keep the cluster's directory (logs, mail) after ``stop()``."""
        self._failed = True

    # -- faults (for soak and fault tests)

    def kill_worker(self, index: int = 0) -> ManagedProcess:
        """SIGKILL worker ``index`` with its whole process group (dramatiq's parent and its
        children): a crash, mid-message if it was working.  ``restart_worker`` starts it again."""
        process = self.worker_processes[index]
        process.signalled = True  # asked for: its exit is no failure
        process.kill_group()
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.popen.wait(10)
        return process

    def restart_worker(self, index: int = 0) -> ManagedProcess:
        """Start worker ``index`` again (same name and arguments, log appended) once it is gone."""
        old = self.worker_processes[index]
        if old.running:
            raise ClusterError(f"{old.name} is still running; kill_worker({index}) first")
        arguments = old.argv[old.argv.index("api.cli") + 1 :]
        self.worker_processes[index] = self._spawn(old.name, arguments)
        return self.worker_processes[index]

    def restart_redis(self) -> None:
        """Stop Redis (SIGTERM) and start it again on the same port; its append-only file keeps
        the queued messages."""
        if self.redis is None:
            raise ClusterError("the cluster is not started")
        self.redis.restart()

    # -- start

    def start(self) -> Self:
        if self._started:
            return self
        self._started = True
        self.directory = Path(tempfile.mkdtemp(prefix="licenses-cluster-"))
        self.log_dir.mkdir()
        _LIVE_CLUSTERS.add(self)
        try:
            self._start()
        except BaseException as exc:
            self._failed = True
            self.stop()
            if isinstance(exc, ServiceError | subprocess.TimeoutExpired):
                raise ClusterError(f"{exc} (files kept in {self.directory})") from exc
            raise
        return self

    def _start(self) -> None:
        self.postgres = PostgresServer(database="licenses").start()
        self.redis = RedisServer(appendonly=True).start()
        self._smtp = _start_smtp(self.mail_dir)
        self.api_ports = self._free_ports(self.api_count)
        self.run_cli("migrate")
        for index, port in enumerate(self.api_ports, start=1):
            self.api_processes.append(
                self._spawn(f"api-{index}", ["serve", "--host", LOOPBACK, "--port", str(port)])
            )
        for index in range(1, self.worker_count + 1):
            self.worker_processes.append(
                self._spawn(
                    f"worker-{index}",
                    ["worker", "--processes", "1", "--threads", str(self.worker_threads)],
                )
            )
        if self.run_scheduler:
            self.scheduler_process = self._spawn("scheduler", ["scheduler"])
            for index in range(2, self.scheduler_count + 1):
                self.extra_scheduler_processes.append(
                    self._spawn(f"scheduler-{index}", ["scheduler"])
                )
        self._wait_ready()

    @staticmethod
    def _free_ports(count: int) -> list[int]:
        ports: list[int] = []
        while len(ports) < count:
            port = find_free_port()
            if port not in ports:
                ports.append(port)
        return ports

    def _spawn(self, name: str, args: Sequence[str]) -> ManagedProcess:
        log_path = self._log_path(name)
        argv = [self.python, "-m", "api.cli", *args]
        with open(log_path, "ab") as log:
            popen = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self._dir(),
                env=self.env(),
                start_new_session=True,  # own process group; no terminal signals
            )
        return ManagedProcess(
            name=name,
            argv=argv,
            log_path=log_path,
            popen=popen,
        )

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        pending = dict(zip(self.api_urls, self.api_processes, strict=True))
        while pending:
            self._check_alive()
            for url in list(pending):
                if _ready(url):
                    del pending[url]
            if not pending:
                break
            if time.monotonic() > deadline:
                names = ", ".join(process.name for process in pending.values())
                tails = "\n".join(
                    f"--- {process.name} ({process.log_path}):\n{process.log_tail()}"
                    for process in pending.values()
                )
                raise ClusterError(
                    f"{names} not ready within {self.startup_timeout:.0f}s "
                    f"(files kept in {self.directory}):\n{tails}"
                )
            time.sleep(_POLL_INTERVAL)
        # A worker or scheduler that cannot start (bad import, bad setting) exits in about the
        # time an API takes to be ready: look once more after a short grace period.
        time.sleep(0.5)
        self._check_alive()

    def _check_alive(self) -> None:
        dead = [process for process in self.processes if not process.running]
        if dead:
            tails = "\n".join(
                f"--- {process.name} exited with {process.returncode} ({process.log_path}):\n"
                f"{process.log_tail()}"
                for process in dead
            )
            raise ClusterError(
                f"{', '.join(p.name for p in dead)} exited during start-up "
                f"(files kept in {self.directory}):\n{tails}"
            )

    # -- stop

    def stop(self) -> None:
        """Stop everything in reverse start order; idempotent.

        Each tier (scheduler, workers, APIs) gets SIGTERM on its leaders at once, then up to
        ``stop_timeout`` seconds, then SIGKILL on the whole process group.  A last /proc scan
        kills any process that still carries the marker.
        """
        if self.directory is None or self.stopped is not None:
            return
        report = StopReport()
        try:
            tiers = [
                ([self.scheduler_process] if self.scheduler_process is not None else [])
                + self.extra_scheduler_processes,
                list(reversed(self.worker_processes)),
                list(reversed(self.api_processes)),
            ]
            for tier in tiers:
                self._stop_tier(tier, report)
            leftovers = processes_with_marker(self.marker)
            for pid in leftovers:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
            report.leftovers.extend(leftovers)
        finally:
            if self._smtp is not None:
                with contextlib.suppress(Exception):
                    self._smtp.stop()
            for server in (self.redis, self.postgres):
                if server is not None and server.running:
                    self._save_server_log(server.kind, server.log_path)
                if server is not None:
                    server.stop()
            self.stopped = report
            _LIVE_CLUSTERS.discard(self)
            self._finish_files(report)

    def _stop_tier(self, tier: list[ManagedProcess], report: StopReport) -> None:
        for process in tier:
            if not process.running and not process.signalled:
                self._failed = True  # died before anyone asked it to
            process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self.stop_timeout
        for process in tier:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.popen.wait(max(0.0, deadline - time.monotonic()))
            if process.running:
                process.killed = True
                report.killed.append(process.name)
                self._failed = True
            # The leader is gone (or must go): nothing of its group may outlive it.
            process.kill_group()
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.popen.wait(5)
            report.exit_codes[process.name] = process.returncode

    def _save_server_log(self, kind: str, path: Path) -> None:
        with contextlib.suppress(OSError):
            shutil.copyfile(path, self._log_path(kind))

    def _finish_files(self, report: StopReport) -> None:
        directory = self.directory
        if directory is None:
            return
        if self._failed or self.keep_files or report.leftovers:
            print(f"cluster: files kept in {directory}", file=sys.stderr)
            return
        shutil.rmtree(directory, ignore_errors=True)

    # -- context manager

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is not None:
            self._failed = True
        self.stop()

    def __repr__(self) -> str:
        return f"<Cluster api={self.api_urls} workers={self.worker_count} dir={self.directory}>"

    # -- helpers

    def _dir(self) -> Path:
        if self.directory is None:
            raise ClusterError("the cluster is not started")
        return self.directory

    def _log_path(self, name: str) -> Path:
        return self.log_dir / f"{name}.log"


def _ready(base_url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{base_url}/readyz", timeout=2) as response:
            return bool(response.status == 200)
    except (OSError, urllib.error.URLError):
        return False


# --- command line --------------------------------------------------------------------------------


class _StopRequestedError(Exception):
    pass


def _on_signal(signum: int, frame: FrameType | None) -> None:
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)  # a second Ctrl-C must not cut the clean-up short
    raise _StopRequestedError


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _cmd_up(args: argparse.Namespace) -> int:
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _on_signal)
    cluster = Cluster(
        api=args.api,
        workers=args.workers,
        scheduler=not args.no_scheduler,
        scheduler_interval_seconds=args.scheduler_interval,
        keep_files=args.keep_files,
    )
    try:
        with cluster:
            assert cluster.postgres is not None and cluster.redis is not None
            lines = [
                *(f"api-{i}: {url}/graphql" for i, url in enumerate(cluster.api_urls, start=1)),
                f"postgres: {cluster.postgres.url}",
                f"redis: {cluster.redis.url}",
                f"smtp: {LOOPBACK}:{cluster.smtp_port} (messages in {cluster.mail_dir})",
                f"logs: {cluster.log_dir}",
            ]
            if args.account:
                account = cluster.create_account(owner_email=args.account)
                lines += [
                    f"account: {account.account_id} (owner {account.owner_email})",
                    f"api token: {account.api_token}",
                ]
            print("\n".join(lines), flush=True)
            _say("cluster running; stop with Ctrl-C")
            try:
                return _watch(cluster)
            except _StopRequestedError:
                _say("stopping the cluster")
                return 0
    except _StopRequestedError:
        _say("interrupted during start-up")
        return 130
    except ClusterError as exc:
        _say(f"error: {exc}")
        return 1
    finally:
        if cluster.stopped is not None:
            _say(f"exit codes: {cluster.stopped.exit_codes}")


def _watch(cluster: Cluster) -> int:
    """Report arriving mail; return 1 when a process dies on its own."""
    seen = 0
    while True:
        emails = cluster.emails
        for message in emails[seen:]:
            _say(f"mail to {', '.join(message.recipients)}: {message.subject}")
            for link in message.links():
                _say(f"  {link}")
        seen = len(emails)
        dead = [process for process in cluster.processes if not process.running]
        if dead:
            for process in dead:
                _say(f"{process.name} exited with {process.returncode}:\n{process.log_tail()}")
            cluster.mark_failed()
            return 1
        time.sleep(0.5)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.support.cluster",
        description="The production topology (PostgreSQL, Redis, SMTP, APIs, workers, "
        "scheduler) on loopback, without containers.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser("up", help="start a cluster, print its URLs, run until Ctrl-C")
    up.add_argument("--api", type=int, default=2, help="API processes (2)")
    up.add_argument("--workers", type=int, default=2, help="worker processes (2)")
    up.add_argument("--no-scheduler", action="store_true", help="do not run the scheduler")
    up.add_argument(
        "--scheduler-interval", type=int, default=2, help="SCHEDULER_INTERVAL_SECONDS (2)"
    )
    up.add_argument("--account", metavar="OWNER_EMAIL", help="create an account for this owner")
    up.add_argument("--keep-files", action="store_true", help="keep logs and mail after stop")
    up.set_defaults(handler=_cmd_up)
    args = parser.parse_args(argv)
    code: int = args.handler(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
