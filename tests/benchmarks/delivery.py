"""B4: invitation emails through outbox -> Redis -> Dramatiq -> aiosmtplib ->
aiosmtpd, against a raw aiosmtplib loop over one connection to the same server.

The production topology on loopback (deploy.cluster.Cluster: PostgreSQL,
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

from deploy.cluster import Cluster
from tests.benchmarks import smtp_sink
from tests.benchmarks.common import (
    REPO_ROOT,
    SECRET_KEY,
    Figure,
    Options,
    PySpy,
    Recorder,
    say,
)
from tests.benchmarks.dataset import asyncpg_dsn
from tests.benchmarks.tasks import run_task

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
    say(f"B4 email: {count} invitations, {WORKERS} worker processes x {THREADS} threads")
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
            pipeline_seconds, enqueued, emails, raw_seconds = await _measure(
                options, cluster, sink, count
            )
    finally:
        sink.stop()
    pipeline_rate = emails / pipeline_seconds
    raw_rate = emails / raw_seconds
    ratio = pipeline_rate / raw_rate
    recorder.add(
        Figure(
            name="B4 email, pipeline / raw aiosmtplib loop (postgres + redis)",
            ratio=ratio,
            target=">= 0.5",
            met=ratio >= 0.5,
            benchmark="B4",
            backend="postgres",
            details={
                "emails": emails,
                "pipeline_seconds": round(pipeline_seconds, 3),
                "pipeline_per_s": round(pipeline_rate, 1),
                "enqueue_seconds": round(enqueued, 3),
                "raw_seconds": round(raw_seconds, 3),
                "raw_per_s": round(raw_rate, 1),
                "worker_processes": WORKERS,
                "threads": THREADS,
            },
            summary=(
                f"pipeline {pipeline_rate:.0f} emails/s; raw loop {raw_rate:.0f} emails/s "
                f"({emails} emails)"
            ),
        )
    )


async def _measure(
    options: Options, cluster: Cluster, sink: Sink, count: int
) -> tuple[float, float, int, float]:
    assert cluster.postgres is not None and cluster.redis is not None
    account = cluster.create_account(seats=count + 1, owner_email="owner@mail.example")
    made = run_task(
        "invites",
        url=cluster.postgres.url,
        api_token=account.api_token,
        count=count,
        tag="reader",
    )
    say(f"  {count} invitations made in {made['seconds']:.1f}s (outbox rows waiting)")
    ids = await _undelivered_ids(cluster.postgres.url)
    expected = await smtp_sink.count(sink.control_port) + len(ids)

    from workers.broker import (  # noqa: PLC0415
        close_broker,
        configure_broker,
        send_delivery_messages,
    )

    configure_broker(cluster.redis.url)
    spies = []
    if options.profile:
        folder = options.out.parent / "benchmarks"
        spies = [
            PySpy(process.pid, folder / f"profile-B4-{process.name}.txt", subprocesses=True)
            for process in cluster.worker_processes
        ]
    try:
        started = time.perf_counter()
        await asyncio.to_thread(send_delivery_messages, ids)
        enqueued = time.perf_counter() - started
        finished = await _wait_for(sink.control_port, expected)
    finally:
        for spy in spies:
            spy.stop()
        close_broker()
    pipeline_seconds = finished - started
    left = await _undelivered_ids(cluster.postgres.url)
    if left:
        raise RuntimeError(f"B4: {len(left)} outbox rows not marked sent")
    say(f"  pipeline: {len(ids)} emails in {pipeline_seconds:.2f}s (enqueued in {enqueued:.2f}s)")

    raw = run_task("smtp-raw", port=sink.port, count=len(ids))
    say(f"  raw aiosmtplib: {len(ids)} emails in {raw['seconds']:.2f}s")
    if await smtp_sink.count(sink.control_port) < expected + len(ids):
        raise RuntimeError("B4: the raw loop's messages did not all arrive")
    return pipeline_seconds, enqueued, len(ids), float(raw["seconds"])
