"""How the results grid (``batchnb.ui.ResultsView``) copes with a large batch.

One real document is processed by a worker; its document, job and result rows are then copied
in bulk so that the batch holds ``--n`` documents (default 20,000), each with its own values.
Timed, in this process (the kernel's side; the browser only ever receives one page):

- reading the results (``batch.results()`` plus the review marks) and drawing page 1;
- a filter change, a search (the first builds the search text, later ones reuse it), a
  sort, turning a page, and the "flagged" filter (reads every document's flags once);
- opening one document's view (parse again, evidence boxes, page image).

Aim: every query change under 300 ms at 20,000 documents; reading under 5 s. Each step is
also printed as a ratio against the baseline: ``batch.results()`` alone, read in the same run.
Run: ``.venv/bin/python benchmarks/results_view.py [--n 20000] [--dir PARENT] [--smoke]``
(``--smoke``: 60 documents, three pages; checks the script, its figures mean nothing).
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

BASELINE = "baseline: batch.results() alone"
"""The DataFrame the grid is built on, read in the same run: each step's ratio is against it."""

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "samples" / "documents" / "bluefin-office-supplies-invoice.pdf"


def _timed(label: str, action: Callable[[], Any], rows: list[tuple[str, float]]) -> Any:
    started = time.perf_counter()
    result = action()
    rows.append((label, (time.perf_counter() - started) * 1000))
    return result


def _grow(workspace: Any, batch_id: int, n: int) -> None:
    """Copy the batch's one document (and its job and result) until it has ``n``."""
    from sqlalchemy import insert, select, update

    from batchnb.db.models import Document, ExtractedData, ExtractionBatch, ExtractionJob

    with workspace.db.begin() as connection:
        document = connection.execute(select(Document)).mappings().one()
        job = connection.execute(select(ExtractionJob)).mappings().one()
        result = connection.execute(select(ExtractedData)).mappings().one()
        chunk = 2000
        for start in range(1, n, chunk):
            count = min(chunk, n - start)
            documents = [
                {**document, "id": None, "file_name": f"invoice-{start + i:06d}.pdf"}
                for i in range(count)
            ]
            for row in documents:
                row.pop("id")
            ids = connection.scalars(
                insert(Document).returning(Document.id, sort_by_parameter_order=True), documents
            ).all()
            jobs = []
            for document_id in ids:
                row = {**job, "document_id": document_id, "queue_item_id": None}
                row.pop("id")
                jobs.append(row)
            job_ids = connection.scalars(
                insert(ExtractionJob).returning(ExtractionJob.id, sort_by_parameter_order=True),
                jobs,
            ).all()
            results = []
            for number, (document_id, job_id) in enumerate(zip(ids, job_ids, strict=True)):
                data = dict(result["data"])
                data["total"] = {"amount": float(start + number), "currency": "USD"}
                row = {**result, "document_id": document_id, "job_id": job_id, "data": data}
                row.pop("id")
                if number % 50 == 0:
                    row["flags"] = [{"rule": "required", "field": "total", "message": "check"}]
                results.append(row)
            connection.execute(insert(ExtractedData), results)
        connection.execute(
            update(ExtractionBatch).where(ExtractionBatch.id == batch_id).values(document_count=n)
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=20_000, help="documents in the batch")
    parser.add_argument("--dir", type=Path, default=None, help="where the workspace goes")
    parser.add_argument(
        "--smoke", action="store_true", help="60 documents: checks the script itself"
    )
    options = parser.parse_args()
    if options.smoke:
        options.n = 60
    for name in list(os.environ):
        if name.startswith("BATCHNB_"):
            del os.environ[name]
    home = Path(tempfile.mkdtemp(prefix="batchnb-results-view-", dir=options.dir))
    os.environ["BATCHNB_HOME"] = str(home)
    print(f"load average {os.getloadavg()}; workspace {home}")

    from batchnb.services.submit import submit
    from batchnb.services.workers import start_worker
    from batchnb.services.workspace import open_workspace
    from batchnb.ui import ResultsView

    workspace = open_workspace(home=str(home))
    rows: list[tuple[str, float]] = []
    try:
        worker = start_worker(workspace, threads=1)
        batch = submit([SAMPLE], "invoice number, date, total, vendor", workspace=workspace)
        batch.wait(timeout=120)
        worker.stop()
        _timed(
            f"copy to {options.n:,} documents (set-up)",
            lambda: _grow(workspace, batch.id, options.n),
            rows,
        )
        _timed(BASELINE, batch.results, rows)
        view = _timed("read the results and draw page 1", lambda: ResultsView(batch), rows)
        grid = view.grid
        assert grid.count == options.n, grid.count

        def change(**values: Any) -> Callable[[], None]:
            return lambda: [setattr(grid, key, value) for key, value in values.items()]

        _timed("filter: completed", change(filter="completed"), rows)
        _timed("search (builds the search text)", change(search="invoice-01"), rows)
        _timed("search again", change(search="invoice-012"), rows)
        _timed("clear the search", change(search=""), rows)
        _timed("sort by total, descending", change(sort="total", descending=True), rows)
        _timed("sort by file name", change(sort="file_name", descending=False), rows)
        _timed("next page", change(page=1), rows)
        _timed("filter: flagged (reads every document's flags)", change(filter="flagged"), rows)
        _timed("back to all documents", change(filter="all"), rows)
        first = grid.rows[0]["document_id"]
        _timed("open a document view", lambda: view.open_document(first), rows)
    finally:
        workspace.close()
        shutil.rmtree(home, ignore_errors=True)
    width = max(len(label) for label, _ in rows)
    baseline = dict(rows)[BASELINE]
    print(f"\n{'step'.ljust(width)}  ms       x baseline")
    for label, ms in rows:
        print(f"{label.ljust(width)}  {ms:7,.0f}  {ms / baseline:6.2f}x")
    print(f"\nload average {os.getloadavg()}")


if __name__ == "__main__":
    main()
