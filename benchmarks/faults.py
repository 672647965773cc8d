"""Faults at scale: workers killed, frozen and robbed of their queue messages while a large
batch runs. Is anything lost or done twice, and how long does the queue stand still?

For each backend (PostgreSQL + Redis when ``BATCHNB_TEST_POSTGRES_URL`` and
``BATCHNB_TEST_REDIS_URL`` are set; SQLite + SqliteHuey with ``--sqlite``) a batch of
``--documents`` (10,000) tiny text documents is queued, ``--workers`` (4) ``batchnb worker``
processes are started, and meanwhile:

* every ``--kill-every`` (5) seconds the oldest live worker is killed with SIGKILL and a new
  one started at once (as a supervisor replaces a child that dies);
* when a fifth of the batch is done, one worker is frozen with SIGSTOP for ``--freeze`` (20)
  seconds (a VM pause, a long GC pause); on PostgreSQL at a moment one of its sessions is
  inside a write transaction, if that can be caught within a few seconds;
* when half is done and the freeze is over, every queue message is lost: FLUSHDB of the Redis
  database the queue lives in (its own, ``--redis-db``), or every message deleted from the
  SqliteHuey queue.

Counted from the database afterwards: documents lost (no result and not failed), results
duplicated, the longest stall (the longest stretch with no completion between the first and
the last; work waited throughout), seconds with no completion, and the longest stall after
each fault. Baseline, in the same run: ``--baseline-documents`` (2,000) documents through the
same number of workers with no fault; the faulted run's documents per second are printed
against it.

Run: ``source /tmp/env.sh; .venv/bin/python benchmarks/faults.py [--documents 10000]
[--sqlite]``. ``--smoke``: 50 documents, 2 workers, one fault of each kind, SQLite (and
PostgreSQL + Redis when configured); nothing timed is asserted; exits 1 if a document was
lost or duplicated or a run failed. Otherwise the exit code is always 0.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path

BATCHNB = Path(sys.executable).with_name("batchnb")
PROMPT = "invoice number, total"
SETTLE_SECONDS = 20.0
"""How long after a kill or a message loss its stall is looked for."""


def text_documents(count: int) -> list[tuple[str, bytes]]:
    """Tiny distinct invoices (intake refuses duplicate content)."""
    text = "ACME Ltd\nInvoice Number: INV-{n:05d}\nTotal: {n}.50 EUR\n"
    return [(f"doc-{n:05d}.txt", text.format(n=n).encode()) for n in range(count)]


@dataclass
class Backend:
    """One run's workspace settings, and how to lose every queue message."""

    name: str
    env: dict[str, str]
    redis_url: str | None = None

    def lose_messages(self) -> None:
        if self.redis_url:
            import redis

            client = redis.Redis.from_url(self.redis_url)
            client.flushdb()
            client.close()
            return
        from batchnb.queue.transport import create_huey

        huey = create_huey(f"sqlite:///{Path(self.env['BATCHNB_HOME']) / 'queue.db'}")
        huey.flush()


@contextmanager
def backend(name: str, home: Path, redis_db: int, lease: float) -> Iterator[Backend]:
    """Settings for a workspace in ``home``: SQLite, or a fresh PostgreSQL database (dropped
    at the end) with a Redis queue in database ``redis_db`` (flushed before and after)."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("BATCHNB_")}
    env["BATCHNB_HOME"] = str(home)
    env["BATCHNB_LEASE_SECONDS"] = str(lease)
    if name == "sqlite":
        yield Backend(name, env)
        return
    import psycopg
    import redis
    from sqlalchemy.engine import make_url

    url = make_url(os.environ["BATCHNB_TEST_POSTGRES_URL"])
    database = f"bench_faults_{uuid.uuid4().hex[:8]}"
    admin = url.set(drivername="postgresql").render_as_string(hide_password=False)
    redis_url = f"{os.environ['BATCHNB_TEST_REDIS_URL'].rsplit('/', 1)[0]}/{redis_db}"
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{database}"')
    redis.Redis.from_url(redis_url).flushdb()
    try:
        env["BATCHNB_DATABASE_URL"] = url.set(database=database).render_as_string(
            hide_password=False
        )
        env["BATCHNB_QUEUE_URL"] = f"{redis_url}?huey_name={database}"
        yield Backend(name, env, redis_url)
    finally:
        redis.Redis.from_url(redis_url).flushdb()
        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


@dataclass
class Fault:
    kind: str
    at: datetime
    detail: str = ""
    window: float = SETTLE_SECONDS


@dataclass
class Run:
    """What happened in one run, counted from the database at the end."""

    documents: int
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    """When the workers were started ("at s" of a fault counts from here)."""
    seconds: float = 0.0
    completed: int = 0
    failed: int = 0
    lost: int = 0
    duplicated: int = 0
    attempts: Counter[int] = field(default_factory=Counter)
    finish_times: list[datetime] = field(default_factory=list)
    orphans: dict[int, datetime] = field(default_factory=dict)
    """Items a killed worker still held, and when it was killed."""
    leased_at: dict[int, datetime] = field(default_factory=dict)
    """When each item was last leased."""
    lease_times: list[datetime] = field(default_factory=list)
    """When each item was last leased."""
    faults: list[Fault] = field(default_factory=list)

    def orphan_delays(self) -> list[float]:
        """For each item a killed worker held: seconds from the kill to its next lease (how
        long an orphan waited: the rest of its lease, then a recovery round)."""
        return sorted(
            (self.leased_at[item] - killed).total_seconds()
            for item, killed in self.orphans.items()
            if item in self.leased_at and self.leased_at[item] > killed
        )

    def first_lease_after(self, moment: datetime) -> float | None:
        """Seconds from ``moment`` to the first lease after it (None: no lease after it)."""
        later = [t for t in self.lease_times if t > moment]
        return (min(later) - moment).total_seconds() if later else None

    @property
    def rate(self) -> float:
        return self.completed / self.seconds if self.seconds else 0.0

    def longest_stall(self, start: datetime | None = None, end: datetime | None = None) -> float:
        """Longest stretch with no completion between ``start`` and ``end`` (default: from
        the first completion to the last, while work waited)."""
        times = self.finish_times
        if len(times) < 2:
            return 0.0
        start = start or times[0]
        end = min(end or times[-1], times[-1])
        if end <= start:
            return 0.0
        edges = [start, *[t for t in times if start < t < end], end]
        return max((b - a).total_seconds() for a, b in pairwise(edges))

    def timeline(self) -> list[int]:
        """Completions in each second from the workers' start to the last completion."""
        if not self.finish_times:
            return []
        per_second = Counter(int((t - self.started_at).total_seconds()) for t in self.finish_times)
        return [per_second.get(second, 0) for second in range(max(per_second) + 1)]

    def idle_seconds(self) -> int:
        """Whole seconds between the first and the last completion with no completion."""
        if not self.finish_times:
            return 0
        first = self.finish_times[0]
        busy = {int((t - first).total_seconds()) for t in self.finish_times}
        return max(busy) + 1 - len(busy)


class Workers:
    """The worker processes of a run: started, killed and replaced, frozen."""

    def __init__(self, env: dict[str, str], threads: int, logs: Path) -> None:
        self.env = env
        self.threads = threads
        self.logs = logs
        self.live: list[tuple[str, subprocess.Popen[bytes]]] = []
        self.dead: list[subprocess.Popen[bytes]] = []
        self.started = 0

    def start(self) -> tuple[str, subprocess.Popen[bytes]]:
        name = f"bench-worker-{self.started}"
        self.started += 1
        with open(self.logs / f"{name}.log", "wb") as log:
            process = subprocess.Popen(
                [str(BATCHNB), "worker", "--processes", "1", "--threads", str(self.threads)],
                env={**self.env, "PGAPPNAME": name},
                stdout=log,
                stderr=log,
            )
        self.live.append((name, process))
        return name, process

    def kill_oldest(self, spare: subprocess.Popen[bytes] | None) -> tuple[str, int]:
        """SIGKILL the oldest live worker (not ``spare``) and start a new one; returns the
        killed worker's name and process id."""
        name, victim = next((n, p) for n, p in self.live if p is not spare)
        victim.send_signal(signal.SIGKILL)
        victim.wait()
        self.live.remove((name, victim))
        self.dead.append(victim)
        self.start()
        return name, victim.pid

    def stop(self) -> None:
        for _name, process in self.live:
            if process.poll() is None:
                process.send_signal(signal.SIGCONT)
                process.send_signal(signal.SIGTERM)
        for _name, process in self.live:
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def freeze(
    workers: Workers, env: dict[str, str], catch_seconds: float
) -> tuple[subprocess.Popen[bytes], str]:
    """SIGSTOP a worker; on PostgreSQL try for ``catch_seconds`` to stop it inside a write
    transaction (its session holds a transaction id; the heartbeat's own is left out)."""
    name, process = workers.live[-1]
    if "BATCHNB_DATABASE_URL" not in env:
        process.send_signal(signal.SIGSTOP)
        return process, f"{name} frozen"
    from sqlalchemy import create_engine, text

    writing = text(
        "SELECT a.pid, a.backend_xid::text, left(a.query, 60) FROM pg_stat_activity a "
        "WHERE a.application_name = :name AND a.backend_xid IS NOT NULL AND NOT EXISTS ("
        "SELECT 1 FROM pg_locks l WHERE l.pid = a.pid AND l.relation = 'workers'::regclass)"
    )
    engine = create_engine(env["BATCHNB_DATABASE_URL"], isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as admin:
            deadline = time.monotonic() + catch_seconds
            while time.monotonic() < deadline:
                seen = admin.execute(writing, {"name": name}).all()
                if not seen:
                    continue
                process.send_signal(signal.SIGSTOP)
                time.sleep(0.01)
                still = {(pid, xid) for pid, xid, _ in admin.execute(writing, {"name": name})}
                caught = [query for pid, xid, query in seen if (pid, xid) in still]
                if caught:
                    return process, f"{name} frozen inside a write transaction ({caught[0]}...)"
                process.send_signal(signal.SIGCONT)
    finally:
        engine.dispose()
    process.send_signal(signal.SIGSTOP)
    return process, f"{name} frozen (no write transaction caught in {catch_seconds:.0f} s)"


def run_batch(
    backend: Backend, documents: int, args: argparse.Namespace, *, faults: bool, logs: Path
) -> Run:
    """Queue ``documents``, run the workers (with the faults, or none), count what happened."""
    from sqlalchemy import func, select, update

    from batchnb.db.models import Document, ExtractedData, ProcessingQueue, QueueItem, utcnow
    from batchnb.services.submit import submit
    from batchnb.services.workspace import open_workspace

    overrides = {
        name.removeprefix("BATCHNB_").lower(): value
        for name, value in backend.env.items()
        if name.startswith("BATCHNB_") and not name.startswith("BATCHNB_TEST_")
    }
    workspace = open_workspace(**overrides)
    run = Run(documents)
    workers = Workers(backend.env, args.threads, logs)
    try:
        batch = submit(text_documents(documents), PROMPT, workspace=workspace)
        if batch.refused:
            # The plan caps a batch (local: 10,000 files); run what was accepted.
            print(f"  {len(batch.refused):,} documents refused at intake: {batch.refused[0]}")
            documents = run.documents = documents - len(batch.refused)
        if args.concurrency_limit:
            with workspace.db.write() as session:
                session.execute(
                    update(ProcessingQueue)
                    .where(ProcessingQueue.name == "batch_processing")
                    .values(concurrency_limit=args.concurrency_limit)
                )
        orphans = 0
        final = ("completed", "failed", "cancelled")
        count_done = select(func.count()).where(
            QueueItem.batch_id == batch.id, QueueItem.status.in_(final)
        )
        started, run.started_at = time.monotonic(), utcnow()
        for _ in range(args.workers):
            workers.start()
        next_kill = started + args.kill_every
        frozen: subprocess.Popen[bytes] | None = None
        thaw_at = 0.0
        froze = lost_messages = False
        kills = 0
        while time.monotonic() - started < args.timeout:
            time.sleep(0.1)
            with workspace.db.read() as session:
                done = int(session.scalar(count_done) or 0)
            now = time.monotonic()
            if not faults:
                if done == documents:
                    break
                continue
            if frozen is not None and now >= thaw_at:
                frozen.send_signal(signal.SIGCONT)
                frozen = None
            if (
                now >= next_kill
                and kills < args.max_kills
                and (done < documents or kills < args.min_kills)
            ):
                name, pid = workers.kill_oldest(spare=frozen)
                killed_at = utcnow()
                kills += 1
                # What the dead worker still holds (its id is host:pid:random) is orphaned.
                with workspace.db.read() as session:
                    held = session.execute(
                        select(QueueItem.id).where(
                            QueueItem.status == "processing",
                            QueueItem.locked_by.like(f"%:{pid}:%"),
                        )
                    ).scalars()
                    run.orphans.update(dict.fromkeys(held, killed_at))
                detail = f"{name}, replaced at once; {len(run.orphans) - orphans} items orphaned"
                orphans = len(run.orphans)
                run.faults.append(Fault("SIGKILL", killed_at, detail, args.kill_every))
                next_kill = now + args.kill_every
            if not froze and done >= documents * args.freeze_at:
                frozen, detail = freeze(workers, backend.env, catch_seconds=3.0)
                thaw_at = time.monotonic() + args.freeze
                froze = True
                run.faults.append(Fault("SIGSTOP", utcnow(), detail, args.freeze))
            if froze and frozen is None and not lost_messages and done >= documents * args.lose_at:
                backend.lose_messages()
                lost_messages = True
                what = "FLUSHDB" if backend.redis_url else "every SqliteHuey message deleted"
                run.faults.append(
                    Fault("message loss", utcnow(), f"{what}, {documents - done} open")
                )
            faulted = froze and frozen is None and lost_messages and kills >= args.min_kills
            if done == documents and faulted:
                break
        run.seconds = time.monotonic() - started
        with workspace.db.read() as session:
            statuses = dict(
                session.execute(
                    select(Document.status, func.count())
                    .where(Document.batch_id == batch.id)
                    .group_by(Document.status)
                ).all()
            )
            per_document = Counter(
                dict(
                    session.execute(
                        select(ExtractedData.document_id, func.count())
                        .where(ExtractedData.batch_id == batch.id)
                        .group_by(ExtractedData.document_id)
                    ).all()
                )
            )
            leases = session.execute(
                select(QueueItem.id, QueueItem.attempts, QueueItem.started_at).where(
                    QueueItem.batch_id == batch.id
                )
            ).all()
            run.attempts = Counter(attempts for _, attempts, _ in leases)
            run.leased_at = {item: at for item, _, at in leases if at is not None}
            run.lease_times = list(run.leased_at.values())
            run.finish_times = sorted(
                session.execute(
                    select(QueueItem.finished_at).where(
                        QueueItem.batch_id == batch.id, QueueItem.status == "completed"
                    )
                ).scalars()
            )
        run.completed = statuses.get("completed", 0)
        run.failed = statuses.get("failed", 0)
        run.lost = documents - len(per_document) - run.failed
        run.duplicated = sum(count - 1 for count in per_document.values() if count > 1)
        if run.finish_times:
            # Throughput from the workers' start to the last completion, not to the last poll.
            run.seconds = (run.finish_times[-1] - run.started_at).total_seconds()
    finally:
        workers.stop()
        if backend.redis_url:
            workspace.runtime.huey.flush()
        workspace.close()
    return run


def report(baseline: Run, run: Run) -> None:
    ratio = run.rate / baseline.rate if baseline.rate else 0.0
    print(
        f"  baseline, no faults: {baseline.completed:,} of {baseline.documents:,} documents, "
        f"{baseline.rate:.1f} docs/s"
    )
    print(
        f"  under faults: {run.completed:,} of {run.documents:,} documents in {run.seconds:.1f} s, "
        f"{run.rate:.1f} docs/s ({ratio:.2f}x baseline)"
    )
    print("  | fault | at s | what | longest stall in the next N s |")
    for fault in run.faults:
        at = (fault.at - run.started_at).total_seconds()
        stall = run.longest_stall(fault.at, fault.at + timedelta(seconds=fault.window))
        window = f"{stall:.1f} s of {fault.window:.0f}"
        if fault.kind == "message loss":
            resumed = run.first_lease_after(fault.at)
            window += "; first lease after it: " + (
                "none" if resumed is None else f"{resumed:.1f} s"
            )
        print(f"  | {fault.kind} | {at:.1f} | {fault.detail} | {window} |")
    delays = run.orphan_delays()
    if delays:
        print(
            f"  orphans of killed workers leased again after: median "
            f"{statistics.median(delays):.1f} s, max {delays[-1]:.1f} s ({len(delays)} of "
            f"{len(run.orphans)} items)"
        )
    timeline = run.timeline()
    print("  completions per second from the workers' start (10 a line):")
    for start in range(0, len(timeline), 10):
        counts = " ".join(f"{n:4}" for n in timeline[start : start + 10])
        print(f"  {start:5} s: {counts}")
    attempts = ", ".join(f"{n}: {count:,}" for n, count in sorted(run.attempts.items()))
    print(
        f"  lost {run.lost} | duplicated {run.duplicated} | failed {run.failed} | "
        f"longest stall {run.longest_stall():.1f} s | seconds with no completion "
        f"{run.idle_seconds()} | attempts {attempts}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--documents", type=int, default=10_000)
    parser.add_argument("--baseline-documents", type=int, default=2_000)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--threads", type=int, default=2, help="per worker")
    parser.add_argument("--kill-every", type=float, default=5.0, help="seconds between SIGKILLs")
    parser.add_argument("--freeze", type=float, default=20.0, help="seconds of SIGSTOP")
    parser.add_argument("--lease", type=float, default=15.0, help="BATCHNB_LEASE_SECONDS")
    parser.add_argument(
        "--concurrency-limit",
        type=int,
        default=0,
        help="set the batch_processing queue's limit (default: leave it, 8)",
    )
    parser.add_argument("--redis-db", type=int, default=15, help="Redis database to FLUSHDB")
    parser.add_argument("--timeout", type=float, default=900.0, help="per run, seconds")
    parser.add_argument("--sqlite", action="store_true", help="also SQLite + SqliteHuey")
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--dir", type=Path, default=None, help="where the workspaces go")
    parser.add_argument("--smoke", action="store_true", help="50 documents, one fault of each")
    args = parser.parse_args()
    args.freeze_at, args.lose_at, args.min_kills, args.max_kills = 0.2, 0.5, 0, 1_000_000
    if args.smoke:
        args.documents, args.baseline_documents, args.workers = 50, 20, 2
        args.kill_every, args.freeze, args.lease, args.timeout = 0.5, 2.0, 3.0, 120.0
        args.freeze_at, args.lose_at, args.min_kills, args.max_kills = 0.0, 0.0, 1, 1
        args.sqlite = True
    backends = ["sqlite"] if args.sqlite else []
    servers = os.environ.get("BATCHNB_TEST_POSTGRES_URL") and os.environ.get(
        "BATCHNB_TEST_REDIS_URL"
    )
    if servers and not args.no_postgres:
        backends.insert(0, "postgres+redis")
    else:
        print("PostgreSQL skipped: BATCHNB_TEST_POSTGRES_URL / _REDIS_URL unset or --no-postgres")
    print(
        f"faults.py: {args.documents:,} documents, {args.workers} workers x {args.threads} "
        f"threads, a SIGKILL every {args.kill_every:g} s, a {args.freeze:g} s freeze, a message "
        f"loss; lease {args.lease:g} s"
    )
    print(f"cores {len(os.sched_getaffinity(0))}; load average at start {os.getloadavg()}")
    root = Path(tempfile.mkdtemp(prefix="batchnb-faults-", dir=args.dir))
    failures = 0
    summary: list[tuple[str, Run, Run]] = []
    try:
        for name in backends:
            print(f"\n== {name}")
            try:
                runs = []
                for label, count, faults in (
                    ("baseline", args.baseline_documents, False),
                    ("faults", args.documents, True),
                ):
                    home = root / f"{name}-{label}".replace("+", "-")
                    logs = home / "logs"
                    logs.mkdir(parents=True)
                    with backend(name, home, args.redis_db, args.lease) as chosen:
                        runs.append(run_batch(chosen, count, args, faults=faults, logs=logs))
                baseline, run = runs
                report(baseline, run)
                summary.append((name, baseline, run))
                failures += bool(run.lost or run.duplicated or baseline.lost)
            except Exception:
                traceback.print_exc(file=sys.stdout)
                print(f"  {name}: the run failed")
                failures += 1
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print("\nbackend         docs    lost  dup  failed  longest stall  idle s  docs/s  x baseline")
    for name, baseline, run in summary:
        ratio = run.rate / baseline.rate if baseline.rate else 0.0
        print(
            f"{name:14} {run.documents:6}  {run.lost:5}  {run.duplicated:3}  {run.failed:6}  "
            f"{run.longest_stall():11.1f} s  {run.idle_seconds():6}  {run.rate:6.1f}  {ratio:9.2f}x"
        )
    print(f"\nload average at the end {os.getloadavg()}")
    return 1 if args.smoke and failures else 0


if __name__ == "__main__":
    sys.exit(main())
