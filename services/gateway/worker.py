"""`coalition worker`: runs the services' scheduled jobs (each service's `scheduled.py`), in a
loop or once. It only runs them: what a job does and how it batches is its service's business.

Any number of workers (and gateways) may run against one database: every job takes its rows with
`FOR UPDATE SKIP LOCKED` in batches, one transaction per batch, so nothing is done twice, nothing
waits forever, and a worker killed mid-batch loses nothing.

Between rounds (`--interval`) the worker listens on the ledger's balance channel: every committed
points move notifies it, and it then runs the jobs that deliver outbox events (`on_events`:
webhooks and member mail) at once, at most every EVENT_PAUSE, so a partner's webhook follows an
earn within a fraction of a second instead of up to an interval later. Its listener has an
application name of its own, so it is not counted among the gateways that acknowledge identity
notices. Events that come with no points move (an enrolment alone, a settlement finalized) wait
for the next round.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
from collections.abc import Callable

from services.engagement import scheduled as engagement_jobs
from services.gateway.availability import outage_of
from services.ledger import scheduled as ledger_jobs
from services.ledger.live import CHANNEL as POINTS_MOVED
from services.ledger.scheduled import DEFAULT_BATCH, BatchResult, Job, ScheduledJob
from services.notifications import scheduled as notification_jobs
from shared import clock, console
from shared.database import Database, standalone_database
from shared.listening import Listener
from shared.logs import configure_logging
from shared.settings import get_settings

log = logging.getLogger("coalition.worker")

# Every service's jobs, in the order of services.
JOBS: list[ScheduledJob] = [*ledger_jobs.JOBS, *engagement_jobs.JOBS, *notification_jobs.JOBS]


EVENT_PAUSE = 0.1  # seconds: the least time between two event-delivery runs
WAKE_APPLICATION_NAME = "coalition-worker"

BUSY_RETRIES = 20
BUSY_PAUSE = 0.05  # seconds


async def run_job(
    db: Database,
    job: Job,
    batch: int = DEFAULT_BATCH,
    on_batch: Callable[[BatchResult], None] | None = None,
) -> BatchResult:
    """Runs one job until a batch finds nothing to do; returns the totals (`on_batch` hears the
    totals so far after each batch, for a progress display).

    A batch whose rows all belonged to busy wallets (another worker's batch, a member operation in
    flight) is retried after a short pause, a bounded number of times: the lots are free again as
    soon as the other transaction commits."""
    rows = points = busy_rounds = 0
    while True:
        result = await job(db, clock.now(), batch)
        rows, points = rows + result.rows, points + result.points
        if result.rows:
            busy_rounds = 0
            if on_batch is not None:
                on_batch(BatchResult(rows=rows, points=points))
            continue
        if not result.skipped or busy_rounds >= BUSY_RETRIES:
            return BatchResult(rows=rows, points=points, skipped=result.skipped)
        busy_rounds += 1
        await asyncio.sleep(BUSY_PAUSE)


async def run_all(
    db: Database,
    batch: int = DEFAULT_BATCH,
    steps: console.Steps | None = None,
    jobs: list[ScheduledJob] | None = None,
) -> dict[str, BatchResult]:
    """One round of every job (or of `jobs`), in order; `steps` shows which job runs and how far
    it got."""
    done = {}
    for job in JOBS if jobs is None else jobs:
        note = None
        if steps is not None:
            steps.step(job.name)
            note = _noting(steps, job)
        done[job.name] = result = await run_job(db, job.run, batch, note)
        if result.rows or result.skipped:
            log.info("%s: %s", job.name, job.report(result))
    return done


def _noting(steps: console.Steps, job: ScheduledJob) -> Callable[[BatchResult], None]:
    return lambda so_far: steps.note(f"{job.name}: {so_far.rows:,} {job.unit}")


def report(done: dict[str, BatchResult]) -> str:
    """What a round did, in words: "released 3 expired holds, activated 5 lots past their return
    window, expired 2 lots (40 points)"."""
    return ", ".join(job.report(done[job.name]) for job in JOBS if job.name in done)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("worker", help="run the scheduled jobs (holds, lots, member mail)")
    parser.add_argument("--once", action="store_true", help="run every job once and exit")
    parser.add_argument("--interval", type=float, default=30.0, help="seconds between rounds")
    parser.add_argument("--batch", type=int, default=DEFAULT_BATCH, help="rows per transaction")
    parser.set_defaults(handler=worker_command)


async def worker_command(args: argparse.Namespace) -> int:
    configure_logging()  # JSON lines, or text with LOG_FORMAT=text, as the gateway's
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    # A daemon: the gateway's statement timeout, not an operator command's (a batch takes < 1 s).
    async with standalone_database(
        pool_size=2, statement_timeout=get_settings().db_statement_timeout_seconds
    ) as db:
        if args.once:  # an operator watching: progress on a terminal, then what was done
            with console.progress(total=len(JOBS)) as steps:
                done = await run_all(db, args.batch, steps)
            print(report(done))
            return 0
        moved = asyncio.Event()
        listener = Listener(db, application_name=WAKE_APPLICATION_NAME)
        await listener.subscribe(POINTS_MOVED, lambda _payload: moved.set())
        await listener.start()
        try:
            await _rounds(db, args, stop, moved)
        finally:
            await listener.stop()
        return 0


async def _rounds(db: Database, args: argparse.Namespace, stop: asyncio.Event, moved: asyncio.Event) -> None:
    """Every job each `--interval`; the event-delivery jobs also whenever points moved."""
    loop = asyncio.get_running_loop()
    event_jobs = [job for job in JOBS if job.on_events]
    jobs: list[ScheduledJob] | None = None  # None: every job
    next_round = loop.time()
    while True:
        if jobs is None:
            next_round = loop.time() + args.interval
        try:
            await run_all(db, args.batch, jobs=jobs)
        except Exception as exc:  # a database outage waits for the next round; a bug stops us
            if outage_of(exc) is None:
                raise
            log.warning("database unavailable, trying again in %.0f s: %r", args.interval, exc)
        woke = await _first_of(stop, moved, until=next_round)
        if woke is stop:
            return
        if woke is moved:
            await asyncio.sleep(EVENT_PAUSE)  # a burst of moves: one run for all of it
            moved.clear()  # after the pause: the run below sees every move heard until now
            jobs = event_jobs
        else:
            jobs = None


async def _first_of(stop: asyncio.Event, moved: asyncio.Event, *, until: float) -> asyncio.Event | None:
    """Whichever event is set first (`stop` if both), or None when the loop's clock reaches `until`."""
    waits = {asyncio.ensure_future(e.wait()): e for e in (stop, moved)}
    left = max(until - asyncio.get_running_loop().time(), 0)
    try:
        finished, _ = await asyncio.wait(waits, timeout=left, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in waits:
            task.cancel()
    if stop.is_set():
        return stop
    return moved if finished else None
