"""What every benchmark shares: options, figures, the server process, profiles."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import re
import signal
import sqlite3
import statistics
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from domain.settings import SETTINGS
from tests.support.live_server import answers_ready
from tests.support.local_services import LOOPBACK, find_free_port

REPO_ROOT = Path(__file__).resolve().parents[2]
SECRET_KEY = "benchmark-secret-key-" + "0123456789abcdef" * 2
# The service's settings a caller's environment must not leak into the processes.
_SCRUBBED = frozenset({s.name for s in SETTINGS} | {"FORWARDED_ALLOW_IPS", "WEB_CONCURRENCY"})


@dataclass(frozen=True)
class Options:
    quick: bool
    only: frozenset[str]
    backends: tuple[str, ...]
    out: Path
    work_dir: Path
    profile: bool
    concurrency: int
    keep: bool = False

    @property
    def rounds(self) -> int:
        return 1 if self.quick else 3

    @property
    def round_seconds(self) -> float:
        return 2.0 if self.quick else 5.0


# ---------------------------------------------------------------------------
# Figures


@dataclass
class Figure:
    name: str
    ratio: float | None
    target: str
    met: bool | None
    benchmark: str
    backend: str
    details: dict[str, Any] = field(default_factory=dict)
    summary: str = ""

    def as_json(self, run: str) -> dict[str, Any]:
        return {
            "name": self.name,
            "ratio": round(self.ratio, 4) if self.ratio is not None else None,
            "target": self.target,
            "met": self.met,
            "benchmark": self.benchmark,
            "backend": self.backend,
            "run": run,
            **self.details,
        }


class Recorder:
    """Prints each figure as a JSON line when measured; appends it to `out`."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.figures: list[Figure] = []
        self.run = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        out.parent.mkdir(parents=True, exist_ok=True)

    def add(self, figure: Figure) -> None:
        self.figures.append(figure)
        line = json.dumps(figure.as_json(self.run), ensure_ascii=False)
        with self.out.open("a", encoding="utf-8") as handle:
            handle.write(line + "\n")
        print(line, flush=True)

    def table(self) -> str:
        lines = [
            "| Figure | Ratio | Target | Met | Measured |",
            "| --- | --- | --- | --- | --- |",
        ]
        for f in self.figures:
            ratio = f"{f.ratio:.3g}" if f.ratio is not None else "-"
            met = {True: "yes", False: "**no**", None: "-"}[f.met]
            lines.append(f"| {f.name} | {ratio} | {f.target} | {met} | {f.summary} |")
        return "\n".join(lines)


def say(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def median(values: list[float]) -> float:
    return statistics.median(values) if values else 0.0


# ---------------------------------------------------------------------------
# Processes


def service_env(database_url: str, work_dir: Path, **extra: str) -> dict[str, str]:
    """The environment of a server or worker: production, quiet, our secret."""
    env = {k: v for k, v in os.environ.items() if k not in _SCRUBBED}
    python_path = [str(REPO_ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
    env.update(
        ENVIRONMENT="production",
        SECRET_KEY=SECRET_KEY,
        LOG_LEVEL="WARNING",
        LOG_FORMAT="text",
        DATABASE_URL=database_url,
        MAIL_URL=f"maildir://{work_dir / 'mail'}",
        DEMO_ACCOUNT="false",
        PYTHONPATH=os.pathsep.join(python_path),
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


class ServerProcess:
    """`python -m tests.benchmarks.server` (uvicorn) on a free loopback port."""

    def __init__(self, database_url: str, work_dir: Path, name: str) -> None:
        self.port = find_free_port()
        self.host = LOOPBACK
        self.log_path = work_dir / f"{name}.log"
        env = service_env(database_url, work_dir, PUBLIC_URL=f"http://{LOOPBACK}:{self.port}")
        with self.log_path.open("ab") as log:
            self.popen = subprocess.Popen(
                [sys.executable, "-m", "tests.benchmarks.server", "--port", str(self.port)],
                cwd=REPO_ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    @property
    def pid(self) -> int:
        return self.popen.pid

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.popen.poll() is not None:
                raise RuntimeError(f"server exited: {self.log_path.read_text()[-3000:]}")
            if answers_ready(f"{self.base_url}/readyz"):
                return
            time.sleep(0.1)
        raise RuntimeError(f"server not ready in {timeout}s: {self.log_path}")

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.pid, signal.SIGKILL)
                self.popen.wait(5)

    def __enter__(self) -> ServerProcess:
        self.wait_ready()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class PySpy:
    """py-spy sampling a running process (and its children) into a raw profile."""

    @staticmethod
    def binary() -> Path:
        return Path(sys.executable).parent / "py-spy"

    def __init__(self, pid: int, out: Path, *, subprocesses: bool = False) -> None:
        self.out = out
        out.parent.mkdir(parents=True, exist_ok=True)
        argv = [
            str(self.binary()),
            "record",
            "--pid",
            str(pid),
            "--format",
            "raw",
            "--rate",
            "250",
            "--nonblocking",
            "--output",
            str(out),
        ]
        if subprocesses:
            argv.append("--subprocesses")
        self.popen = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        time.sleep(0.5)

    def stop(self) -> None:
        self.popen.send_signal(signal.SIGINT)
        try:
            self.popen.wait(30)
        except subprocess.TimeoutExpired:
            self.popen.kill()


_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")


def summarize_profile(raw: Path, top: int = 25) -> str:
    """Inclusive and own time per function from py-spy's collapsed stacks."""
    if not raw.exists():
        return f"(no profile at {raw})"
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        frames = [_short(frame) for frame in stack.split(";") if frame]
        for name in set(frames):
            inclusive[name] += count
        if frames:
            own[frames[-1]] += count
    if not total:
        return "(empty profile)"
    lines = [f"{total} samples", "", "inclusive %  function"]
    lines += [f"{100 * n / total:10.1f}  {name}" for name, n in inclusive.most_common(top)]
    lines += ["", "own %  function"]
    lines += [f"{100 * n / total:6.1f}  {name}" for name, n in own.most_common(top)]
    return "\n".join(lines)


def _short(frame: str) -> str:
    match = _FRAME.match(frame.strip())
    if not match:
        return frame.strip()
    path = match.group("file")
    for marker in ("site-packages/", str(REPO_ROOT) + "/", "lib/python3"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{match.group('func')} ({path})"


# ---------------------------------------------------------------------------
# The machine


def machine() -> dict[str, Any]:
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    ram_gib = 0.0
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                ram_gib = int(line.split()[1]) / 1024 / 1024
    commit = "unknown"
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "ram_gib": round(ram_gib, 1),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "commit": commit,
        "load_average": os.getloadavg(),
    }
