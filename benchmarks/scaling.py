"""Documents per second with 1, 2, 4 worker processes: does ``batchnb worker --processes N`` use
every core?

One worker process uses about one core: pypdfium2 parses under a process-wide lock and OCR is
CPU-bound. For each kind of document (text PDFs, scanned images that need OCR, and the ``openai``
extractor against a local chat-completions server) and each backend (SQLite + SQLite Huey;
PostgreSQL + Redis when ``BATCHNB_TEST_POSTGRES_URL`` and ``BATCHNB_TEST_REDIS_URL`` are set), a
batch is queued with no worker running, then ``batchnb worker --processes N`` is started and the
clock runs from its start to the batch finished (process start-up included: it is paid once per
run, whatever N). Baseline, in the same run: ``--processes 1``; each row prints its speed-up.
Aim (issue 14): at least 1.8x from 1 to 2 processes on 2 cores for PDFs and OCR.

Run: ``.venv/bin/python benchmarks/scaling.py [--processes 1,2,4] [--kinds pdf,ocr,openai]``;
``--smoke`` runs a few documents with 1 and 2 processes on SQLite.
"""

from __future__ import annotations

import argparse
import io
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "samples" / "documents"
BATCHNB = Path(sys.executable).with_name("batchnb")
PROMPT = "invoice number, date, total"
KINDS = ("pdf", "ocr", "openai")


PDF_PAGES = 20
"""Pages per PDF: enough that parsing, not the queue's few milliseconds a document, is the
work (a one-page sample takes about 3 ms through the whole path, and then the database's
writes set the pace; see benchmarks/README.md)."""


def pdf_documents(count: int) -> list[tuple[str, bytes]]:
    """Text PDFs of :data:`PDF_PAGES` pages (the sample PDFs' pages over and over), each made
    unique by a trailing comment (intake refuses duplicates)."""
    import pypdfium2

    originals = [pypdfium2.PdfDocument(path) for path in sorted(SAMPLES.glob("*.pdf"))]
    templates = []
    for first in range(len(originals)):
        document = pypdfium2.PdfDocument.new()
        for page in range(PDF_PAGES):
            source = originals[(first + page) % len(originals)]
            document.import_pages(source, [0])
        buffer = io.BytesIO()
        document.save(buffer)
        templates.append(buffer.getvalue())
    return [
        (f"doc-{n:05d}.pdf", templates[n % len(templates)] + f"%{n}\n".encode())
        for n in range(count)
    ]


def image_documents(count: int) -> list[tuple[str, bytes]]:
    """PNG scans of a short invoice, one number different in each: OCR reads every one."""
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.load_default(size=28)
    documents = []
    for n in range(count):
        image = Image.new("L", (1000, 420), 255)
        draw = ImageDraw.Draw(image)
        lines = ["ACME Supplies Ltd", f"Invoice Number: INV-{n:05d}", "Date: 2024-03-15"]
        lines += [f"Total: {100 + n}.50 EUR"]
        for row, line in enumerate(lines):
            draw.text((40, 40 + 80 * row), line, fill=0, font=font)
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        documents.append((f"scan-{n:05d}.png", buffer.getvalue()))
    return documents


def text_documents(count: int) -> list[tuple[str, bytes]]:
    text = "ACME Ltd\nInvoice Number: INV-{n:05d}\nDate: 2024-03-15\nTotal: {n}.50 EUR\n"
    return [(f"doc-{n:05d}.txt", text.format(n=n).encode()) for n in range(count)]


@contextmanager
def backend(name: str, home: Path) -> Iterator[dict[str, str]]:
    """The environment of one run's workspace: SQLite in ``home``, or a fresh PostgreSQL
    database with a Redis queue of its own name."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("BATCHNB_")}
    env["BATCHNB_HOME"] = str(home)
    if name == "sqlite":
        yield env
        return
    import psycopg
    from sqlalchemy.engine import make_url

    url = make_url(os.environ["BATCHNB_TEST_POSTGRES_URL"])
    database = f"bench_scaling_{uuid.uuid4().hex[:8]}"
    admin = url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{database}"')
    try:
        env["BATCHNB_DATABASE_URL"] = url.set(database=database).render_as_string(
            hide_password=False
        )
        redis = os.environ["BATCHNB_TEST_REDIS_URL"].rstrip("/")
        env["BATCHNB_QUEUE_URL"] = f"{redis}?huey_name={database}"  # a queue of its own
        yield env
    finally:
        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def _children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_once(
    kind: str, count: int, processes: int, env: dict[str, str], chat_url: str | None
) -> tuple[float, float]:
    """Queue ``count`` documents, start ``processes`` workers; documents per second (start-up
    included) and the cores the workers kept busy."""
    from batchnb.services.submit import submit
    from batchnb.services.workspace import open_workspace

    documents = {"pdf": pdf_documents, "ocr": image_documents, "openai": text_documents}[kind]
    if kind == "openai":
        env = {**env, "BATCHNB_OPENAI_API_KEY": "bench", "BATCHNB_OPENAI_BASE_URL": str(chat_url)}
    # This process submits with the same settings the workers read from ``env``.
    overrides = {
        name.removeprefix("BATCHNB_").lower(): value
        for name, value in env.items()
        if name.startswith("BATCHNB_") and not name.startswith("BATCHNB_TEST_")
    }
    workspace = open_workspace(**overrides)
    try:
        extractor = "openai" if kind == "openai" else "offline"
        batch = submit(documents(count), PROMPT, extractor=extractor, workspace=workspace)
        cpu_before = _children_cpu_seconds()
        started = time.perf_counter()
        worker = subprocess.Popen(
            [str(BATCHNB), "worker", "--processes", str(processes)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            progress = batch.wait(timeout=600, poll_seconds=0.1, progress=False)
            # Timed to the batch's end: the workers' graceful stop is not part of the work.
            elapsed = time.perf_counter() - started
        finally:
            worker.send_signal(signal.SIGTERM)
            worker.wait(120)
        # The workers' CPU time (every descendant, reaped by now) over the whole run, stop
        # included: how many cores the run kept busy.
        cores_busy = (_children_cpu_seconds() - cpu_before) / (time.perf_counter() - started)
        if progress.completed != count:
            raise RuntimeError(f"{kind}: {progress.completed} of {count} completed: {progress}")
        return count / elapsed, cores_busy
    finally:
        workspace.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--processes", default="1,2,4", help="comma-separated process counts")
    parser.add_argument("--kinds", default=",".join(KINDS), help="pdf, ocr, openai")
    parser.add_argument("--documents", type=int, default=0, help="per run (default by kind)")
    parser.add_argument("--dir", type=Path, default=None, help="where the workspaces go")
    parser.add_argument("--smoke", action="store_true", help="a few documents, 1 and 2 processes")
    args = parser.parse_args()
    counts = [int(n) for n in ("1,2" if args.smoke else args.processes).split(",")]
    kinds = [k for k in args.kinds.split(",") if k]
    default_documents = {"pdf": 600, "ocr": 40, "openai": 300}
    backends = ["sqlite"]
    if (
        not args.smoke
        and os.environ.get("BATCHNB_TEST_POSTGRES_URL")
        and os.environ.get("BATCHNB_TEST_REDIS_URL")
    ):
        backends.append("postgres+redis")
    else:
        print(
            "PostgreSQL + Redis skipped (smoke run, or BATCHNB_TEST_POSTGRES_URL/_REDIS_URL unset)"
        )
    print(f"cores {len(os.sched_getaffinity(0))}; load average {os.getloadavg()}")
    sys.path.insert(0, str(Path(__file__).parent))
    from openai_extractor import chat_server

    root = Path(tempfile.mkdtemp(prefix="batchnb-scaling-", dir=args.dir))
    rows: list[tuple[str, str, int, int, float, float, float]] = []
    try:
        with chat_server() as chat_url:
            for name in backends:
                for kind in kinds:
                    count = 4 if args.smoke else args.documents or default_documents[kind]
                    baseline = 0.0
                    for processes in counts:
                        home = root / f"{name}-{kind}-{processes}".replace("+", "-")
                        with backend(name, home) as env:
                            rate, busy = run_once(kind, count, processes, env, chat_url)
                        baseline = baseline or rate
                        rows.append((name, kind, count, processes, rate, rate / baseline, busy))
                        print(
                            f"  {name:15} {kind:7} {processes} processes: {rate:7.1f} docs/s, "
                            f"{busy:.2f} cores busy"
                        )
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(
        "\nbackend          kind     docs  processes  docs/s   x 1 process (baseline)  cores busy"
    )
    for name, kind, count, processes, rate, ratio, busy in rows:
        print(
            f"{name:15}  {kind:7} {count:5}  {processes:9}  {rate:6.1f}   {ratio:5.2f}x"
            f"                  {busy:4.2f}"
        )
    print(f"\nload average {os.getloadavg()}")


if __name__ == "__main__":
    main()
