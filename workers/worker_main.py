"""`licenses worker`: Dramatiq worker processes for the production mode.

Dramatiq's own command line runs them (`dramatiq.cli.main`), so process
supervision, logging and signals are the library's: SIGTERM (or SIGINT) makes
every worker stop taking messages, finish the ones in progress (up to the
shutdown timeout) and requeue those it had prefetched; a second signal kills.

`--processes` forks that many worker processes, each with its own database
pool and one event loop for the async actors; `--threads` is how many
messages each process runs at once. A process fetches up to twice --threads
messages from a queue ahead of time (running or waiting for a thread).

A worker killed outright leaves its fetched messages in Redis, unacknowledged:
Dramatiq gives them back only once its heartbeat timeout (60 s) has passed
AND a live worker's Redis call happens to run the maintenance step (one call
in a thousand), often many minutes later. The relay does not wait for that:
a row fetched but never started is handed over again within about one and a
half scheduler intervals, a row whose send started once its lease has passed
(see deploy/README.md, "Recovery times").

Equivalent command: `dramatiq workers.broker:setup_worker_broker workers.actors -p N -t M`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from domain.settings import Settings, SettingsError
from workers.broker import remember_worker_settings

BROKER_SETUP = "workers.broker:setup_worker_broker"
ACTORS_MODULE = "workers.actors"


def dramatiq_arguments(
    *, processes: int, threads: int, shutdown_timeout_seconds: float = 60.0
) -> list[str]:
    if processes < 1 or threads < 1:
        raise ValueError("processes and threads must be at least 1")
    return [
        BROKER_SETUP,
        ACTORS_MODULE,
        "--processes",
        str(processes),
        "--threads",
        str(threads),
        "--worker-shutdown-timeout",
        str(int(shutdown_timeout_seconds * 1000)),
    ]


def run_worker(
    settings: Settings,
    *,
    processes: int,
    threads: int,
    shutdown_timeout_seconds: float = 60.0,
) -> int:
    """Run the workers in the foreground until a signal stops them; the exit code."""
    if settings.redis_url is None:
        raise ValueError("workers need REDIS_URL")
    import dramatiq.cli  # noqa: PLC0415 - only the worker command needs it

    # The forked worker processes inherit these settings (setup_worker_broker
    # reads them; without fork it reads the environment again).
    remember_worker_settings(settings)
    parser = dramatiq.cli.make_argument_parser()  # type: ignore[no-untyped-call]
    arguments = parser.parse_args(
        dramatiq_arguments(
            processes=processes,
            threads=threads,
            shutdown_timeout_seconds=shutdown_timeout_seconds,
        )
    )
    return int(dramatiq.cli.main(arguments))  # type: ignore[no-untyped-call]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m workers.worker_main", description="Run the Dramatiq workers."
    )
    parser.add_argument("--processes", "-p", type=int, default=2)
    parser.add_argument("--threads", "-t", type=int, default=4)
    args = parser.parse_args(argv)
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"worker: {exc}", file=sys.stderr)
        return 2
    if settings.redis_url is None:
        print("worker: REDIS_URL is not set", file=sys.stderr)
        return 2
    return run_worker(settings, processes=args.processes, threads=args.threads)


if __name__ == "__main__":
    sys.exit(main())
