"""B4: invitation emails through outbox -> Redis -> Dramatiq -> aiosmtplib ->
aiosmtpd, against a raw aiosmtplib loop over one connection to the same server
(which builds each message, with the standard library, and sends it; see
tests.benchmarks.tasks.smtp_raw).

The production topology on loopback (tests.support.cluster.Cluster: PostgreSQL,
Redis with its append-only file, one idle API, worker processes, no
scheduler), with MAIL_URL pointing at tests.benchmarks.smtp_sink, an aiosmtpd
server in its own process that counts messages without parsing or storing
them (the cluster's own SMTP server parses and writes each message to disk,
a cost that would hide the pipeline's). The invitations are made through the users service
in a separate process that hands nothing to the broker, so their outbox rows
wait; the clock starts when their ids are sent to Redis (as the relay or the
API would send them) and stops when the SMTP server has received them all.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time

import asyncpg

from tests.benchmarks import smtp_sink
from tests.benchmarks.common import (
    REPO_ROOT,
    SECRET_KEY,
    Figure,
    Options,
    PySpy,
    Recorder,
    median,
    say,
)
from tests.benchmarks.dataset import asyncpg_dsn
from tests.benchmarks.tasks import run_task
from tests.support.cluster import Cluster

WORKERS = 2  # worker processes (one per core)
THREADS = 4  # threads per worker process (`licenses worker` default)


async def _undelivered_ids(url: str) -> list[int]:
    connection = await asyncpg.connect(asyncpg_dsn(url))
    try:
        rows = await connection.fetch(
            "SELECT id FROM outbox_messages WHERE sent_at IS NULL AND failed_at IS NULL ORDER BY id"
        )
        return [int(row["id"]) for row in rows]
    finally:
        await connection.close()


async def _wait_for(control_port: int, count: int) -> float:
    """When the sink has received `count` messages (10 minutes at most)."""
    async with asyncio.timeout(600):
        while await smtp_sink.count(control_port) < count:  # noqa: ASYNC110 - another process
            await asyncio.sleep(0.01)
    return time.perf_counter()


class Sink:
    def __init__(self) -> None:
        self.popen = subprocess.Popen(
            [sys.executable, "-m", "tests.benchmarks.smtp_sink"],
            cwd=REPO_ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.popen.stdout is not None
        port, control = self.popen.stdout.readline().split()
        self.port, self.control_port = int(port), int(control)

    def stop(self) -> None:
        self.popen.terminate()
        self.popen.wait(10)


async def b4_email(options: Options, recorder: Recorder) -> None:
    count = 200 if options.quick else 1000
    rounds = options.rounds
    say(f"B4 email: {rounds} x {count} invitations, {WORKERS} worker processes x {THREADS} threads")
    sink = Sink()
    cluster = Cluster(
        api=1,
        workers=WORKERS,
        worker_threads=THREADS,
        scheduler=False,
        secret_key=SECRET_KEY,
        extra_env={"LOG_LEVEL": "WARNING", "MAIL_URL": f"smtp://127.0.0.1:{sink.port}"},
    )
    try:
        with cluster:
            pipeline, raw = await _measure(options, cluster, sink, count, rounds)
    finally:
        sink.stop()
    pipeline_rate = median([count / seconds for seconds in pipeline])
    for variant, label, target in ((0, "", True), (1, ", messages prebuilt", False)):
        raw_seconds = [pair[variant] for pair in raw]
        # Each pipeline round against the mean of the raw loops just before and after it.
        ratios = [
            (count / seconds) / ((count / raw_seconds[i] + count / raw_seconds[i + 1]) / 2)
            for i, seconds in enumerate(pipeline)
        ]
        ratio = median(ratios)
        raw_rate = median([count / seconds for seconds in raw_seconds])
        recorder.add(
            Figure(
                name=f"B4 email, pipeline / raw aiosmtplib loop{label} (postgres + redis)",
                ratio=ratio,
                target=">= 0.5" if target else "(info)",
                met=(ratio >= 0.5) if target else None,
                benchmark="B4",
                backend="postgres",
                details={
                    "emails_per_round": count,
                    "rounds": rounds,
                    "pipeline_seconds": [round(x, 3) for x in pipeline],
                    "raw_seconds": [round(x, 3) for x in raw_seconds],
                    "pipeline_per_s": round(pipeline_rate, 1),
                    "raw_per_s": round(raw_rate, 1),
                    "round_ratios": [round(x, 3) for x in ratios],
                    "raw_builds_messages": not variant,
                    "worker_processes": WORKERS,
                    "threads": THREADS,
                },
                summary=(
                    f"pipeline {pipeline_rate:.0f} emails/s; raw loop {raw_rate:.0f} emails/s "
                    f"({rounds} x {count} emails)"
                ),
            )
        )


async def _raw(sink: Sink, count: int) -> tuple[float, float]:
    """Seconds of the raw loop, building each message, then with messages prebuilt."""
    before = await smtp_sink.count(sink.control_port)
    built = run_task("smtp-raw", port=sink.port, count=count)
    prebuilt = run_task("smtp-raw", port=sink.port, count=count, prebuilt=True)
    if await smtp_sink.count(sink.control_port) < before + 2 * count:
        raise RuntimeError("B4: the raw loop's messages did not all arrive")
    say(
        f"  raw aiosmtplib: {count} emails in {built['seconds']:.2f}s "
        f"({prebuilt['seconds']:.2f}s prebuilt)"
    )
    return float(built["seconds"]), float(prebuilt["seconds"])


async def _measure(
    options: Options, cluster: Cluster, sink: Sink, count: int, rounds: int
) -> tuple[list[float], list[tuple[float, float]]]:
    """raw, pipeline, raw, pipeline, ..., raw: the seconds of each."""
    assert cluster.postgres is not None and cluster.redis is not None
    account = cluster.create_account(seats=rounds * count + 1, owner_email="owner@mail.example")
    made = run_task(
        "invites",
        url=cluster.postgres.url,
        api_token=account.api_token,
        count=rounds * count,
        tag="reader",
    )
    say(f"  {rounds * count} invitations made in {made['seconds']:.1f}s (outbox rows waiting)")
    # The owner's password-set email (written by the CLI) is sent first, alone.
    ids = await _undelivered_ids(cluster.postgres.url)
    owner, ids = ids[: len(ids) - rounds * count], ids[len(ids) - rounds * count :]

    from workers.broker import (  # noqa: PLC0415
        close_broker,
        configure_broker,
        send_delivery_messages,
    )

    configure_broker(cluster.redis.url)
    pipeline: list[float] = []
    raw = [await _raw(sink, count)]
    try:
        if owner:
            expected = await smtp_sink.count(sink.control_port) + len(owner)
            send_delivery_messages(owner)
            await _wait_for(sink.control_port, expected)
        for index in range(rounds):
            chunk = ids[index * count : (index + 1) * count]
            expected = await smtp_sink.count(sink.control_port) + len(chunk)
            spies = []
            if options.profile and index == rounds - 1:
                folder = options.out.parent / "benchmarks"
                spies = [
                    PySpy(process.pid, folder / f"profile-B4-{process.name}.txt", subprocesses=True)
                    for process in cluster.worker_processes
                ]
            try:
                started = time.perf_counter()
                await asyncio.to_thread(send_delivery_messages, chunk)
                finished = await _wait_for(sink.control_port, expected)
            finally:
                for spy in spies:
                    spy.stop()
            pipeline.append(finished - started)
            say(f"  pipeline: {len(chunk)} emails in {pipeline[-1]:.2f}s")
            raw.append(await _raw(sink, count))
    finally:
        close_broker()
    left = await _undelivered_ids(cluster.postgres.url)
    if left:
        raise RuntimeError(f"B4: {len(left)} outbox rows not marked sent")
    return pipeline, raw
