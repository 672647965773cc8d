"""The batch manager on a large history: time from a filter change to the table's rows updated.

Seeds ``--batches`` (1,000) batches holding ``--documents`` (200,000) documents (with their
jobs, queue items and results) into a fresh PostgreSQL database, with the history generator of
``list_and_analytics.py``, then opens a :class:`batchnb.ui.BatchManager` as an admin (who sees
every batch: the largest lists) and changes one filter at a time the way the browser does, by
setting the table's traitlet: status, failures, search (a word in ~8% of the batches' file
names), a date range, the sort column and the page. Each change is timed from the assignment to
the table's ``rows`` holding the new page (the manager reads it in the change's observer), and
then the state is encoded as the JSON the comm would carry.

Baseline, measured in the same run on the same database: a bare ``list_batches`` call with the
same arguments. The ratio shows what the widget adds on top of the query. Every call goes to
the database (``cache_url="none"``): a real user's filter change rarely repeats one just made.
Medians of ``--runs`` rounds over the changes. Aim: under 300 ms from change to rows.

PostgreSQL: a database named ``batchnb_bench_<random>`` is created next to the one in
``--postgres-url`` (default ``BATCHNB_TEST_POSTGRES_URL``) and dropped at the end.

Run: ``source /tmp/env.sh; .venv/bin/python benchmarks/batch_manager.py [--batches 1000]
[--documents 200000] [--runs 5] [--postgres-url URL] [--sqlite] [--dir PARENT] [--smoke]``.
``--smoke`` is the smallest run through every step (30 batches, 300 documents, one round, on
SQLite and, when a URL is given, PostgreSQL; its figures mean nothing): it checks the script,
and exits 1 when a backend fails. Otherwise the exit code is always 0.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import list_and_analytics as history

from batchnb.services.listing import list_batches
from batchnb.services.workspace import Workspace, open_workspace
from batchnb.ui.batch_manager import BatchManager

AIM_MS = 300.0
PAGE_SIZE = 25


def changes(now: datetime) -> list[tuple[str, dict[str, Any]]]:
    """Filter changes in the order a user might make them; each is (label, traits set)."""
    month_ago = (now - timedelta(days=30)).date().isoformat()
    return [
        ("status = completed", {"status": "completed"}),
        ("status = any", {"status": ""}),
        ("with failures", {"has_failures": "yes"}),
        ("without failures", {"has_failures": "no"}),
        ("failures: either", {"has_failures": ""}),
        (f"search {history.SEARCH!r}", {"search": history.SEARCH}),
        ("search cleared", {"search": ""}),
        ("created in the last 30 days", {"created_from": month_ago}),
        ("any date", {"created_from": ""}),
        ("sort by name", {"sort": "name", "descending": False}),
        ("sort by failed", {"sort": "failed", "descending": True}),
        ("sort by created", {"sort": "created_at", "descending": True}),
        ("page 2", {"page": 2}),
        ("page 20", {"page": 20}),
        ("page 1", {"page": 1}),
    ]


def time_ms(call: Callable[[], Any]) -> float:
    started = time.perf_counter()
    call()
    return (time.perf_counter() - started) * 1000


def run(workspace: Workspace, runs: int, now: datetime) -> None:
    manager = BatchManager(workspace=workspace, page_size=PAGE_SIZE)
    table = manager.table
    steps = changes(now)
    widget: dict[str, list[float]] = {label: [] for label, _ in steps}
    encode: dict[str, list[float]] = {label: [] for label, _ in steps}
    bare: dict[str, list[float]] = {label: [] for label, _ in steps}
    shown_rows: dict[str, int] = {}  # rows on the page (fewer than PAGE_SIZE on a small history)
    for _ in range(runs):
        for label, traits in steps:
            before = table.rows

            def change(traits: dict[str, Any] = traits) -> None:
                with table.hold_trait_notifications():
                    for name, value in traits.items():
                        setattr(table, name, value)

            widget[label].append(time_ms(change))
            shown_rows[label] = len(table.rows)
            assert table.rows is not before, f"{label}: the rows were not replaced"
            encode[label].append(time_ms(lambda: json.dumps(table.get_state(), default=str)))
            arguments = manager.query()
            bare[label].append(
                time_ms(
                    lambda arguments=arguments: list_batches(
                        workspace=workspace, actor=manager.actor, **arguments
                    )
                )
            )
    manager.close()

    print(
        f"\n{'filter change':<32} {'rows':>5} {'list_batches':>13} {'widget':>9} "
        f"{'+ JSON':>8} {'ratio':>6}"
    )
    all_widget: list[float] = []
    all_bare: list[float] = []
    for label, _ in steps:
        base = statistics.median(bare[label])
        shown = statistics.median(widget[label])
        coded = statistics.median(encode[label])
        all_widget.extend(w + e for w, e in zip(widget[label], encode[label], strict=True))
        all_bare.extend(bare[label])
        print(
            f"{label:<32} {shown_rows[label]:>5} {base:>10.1f} ms {shown:>6.1f} ms "
            f"{coded:>5.1f} ms {(shown + coded) / base:>5.2f}x"
        )
    median_widget = statistics.median(all_widget)
    median_bare = statistics.median(all_bare)
    worst = max(all_widget)
    print(
        f"\nall changes: median {median_widget:.1f} ms from change to rows (JSON included), "
        f"bare list_batches {median_bare:.1f} ms, ratio {median_widget / median_bare:.2f}x; "
        f"slowest {worst:.1f} ms; aim < {AIM_MS:.0f} ms: "
        f"{'met' if worst < AIM_MS else 'MISSED (slowest)'}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batches", type=int, default=1000)
    parser.add_argument("--documents", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=5, help="rounds over the filter changes")
    parser.add_argument("--postgres-url", default=os.environ.get("BATCHNB_TEST_POSTGRES_URL", ""))
    parser.add_argument("--sqlite", action="store_true", help="also run on SQLite")
    parser.add_argument("--dir", type=Path, default=None, help="parent of the temporary folder")
    parser.add_argument(
        "--smoke", action="store_true", help="a tiny history through every step: checks the script"
    )
    args = parser.parse_args(argv)
    if args.smoke:
        args.batches, args.documents, args.runs, args.sqlite = 30, 300, 1, True
    for name in list(os.environ):
        if name.startswith("BATCHNB_") and not name.startswith("BATCHNB_TEST_"):
            del os.environ[name]
    print(f"load average at start: {os.getloadavg()}")
    now = datetime.now(UTC)
    folder = Path(tempfile.mkdtemp(prefix="batchnb-bench-manager-", dir=args.dir))
    backends: list[tuple[str, Callable[[], Any]]] = []
    if args.postgres_url:
        backends.append(("postgresql", lambda: history.postgres_database(args.postgres_url)))
    else:
        print("PostgreSQL skipped: set BATCHNB_TEST_POSTGRES_URL or pass --postgres-url")
    try:
        for name, database in backends:
            with database() as url:
                _backend(name, url, folder / name, args, now)
        if args.sqlite:
            _backend("sqlite", "", folder / "sqlite", args, now)
    except Exception as exc:  # a benchmark reports, it does not fail (--smoke: it does)
        print(f"benchmark stopped: {type(exc).__name__}: {exc}")
        if args.smoke:
            raise
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    print(f"load average at end: {os.getloadavg()}")
    return 0


def _backend(name: str, url: str, home: Path, args: argparse.Namespace, now: datetime) -> None:
    print(f"\n== {name}: seeding {args.batches:,} batches, {args.documents:,} documents")
    options: dict[str, Any] = {"cache_url": "none", "admins": history.ADMIN, "user": history.ADMIN}
    if url:
        options["database_url"] = url
    workspace = open_workspace(home=str(home), **options)
    try:
        stats: dict[Any, Any] = {}
        chunks = history.generate(args.batches, args.documents, now, stats)
        seed = history.seed_postgres if name == "postgresql" else history.seed_sqlite
        started = time.perf_counter()
        rows = seed(workspace, chunks, lambda: history.stat_rows(stats))
        print(f"seeded {rows:,} rows in {time.perf_counter() - started:.1f} s")
        run(workspace, args.runs, now)
    finally:
        workspace.close()


if __name__ == "__main__":
    sys.exit(main())
