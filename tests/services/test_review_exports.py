"""Exports write corrected values (every format and mode), and the originals on request."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import openpyxl
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from sqlalchemy import select

from batchnb.cli import main
from batchnb.db.models import Export
from batchnb.jobs.export_records import Selection, iter_export_records
from batchnb.services.exports import export
from batchnb.services.results import export_dataframe
from batchnb.services.review import correct_value
from batchnb.services.workers import start_worker
from batchnb.services.workspace import Workspace

from .test_exports import INVOICE, invoice, seed_batch


@pytest.fixture
def corrected(workspace: Workspace) -> tuple[int, list[int]]:
    """Two invoices; the first has its number, total and second item's amount corrected."""
    batch_id, ids = seed_batch(
        workspace,
        [
            {
                "file_name": "a.pdf",
                "status": "completed",
                "results": [(INVOICE, invoice("A-1", [("chairs", 10.0), ("desk", 5.5)], 15.5))],
            },
            {
                "file_name": "b.pdf",
                "status": "completed",
                "results": [(INVOICE, invoice("B-2", [("lamp", 3.0)], 3.0))],
            },
        ],
    )
    correct_value(ids[0], "invoice_number", "A-100", workspace=workspace)
    correct_value(ids[0], "total", "EUR 17.25", workspace=workspace)
    correct_value(ids[0], "line_items.1.amount", "7.25", workspace=workspace)
    return batch_id, ids


def test_json_and_csv_exports_write_corrected_values_and_originals_on_request(
    workspace: Workspace, corrected: tuple[int, list[int]], tmp_path: Path
) -> None:
    batch_id, _ = corrected
    export(batch_id, path=tmp_path / "fixed.json", workspace=workspace)
    export(batch_id, path=tmp_path / "as-extracted.json", originals=True, workspace=workspace)
    fixed = json.loads((tmp_path / "fixed.json").read_text())
    original = json.loads((tmp_path / "as-extracted.json").read_text())
    assert [r["invoice_number"] for r in fixed] == ["A-100", "B-2"]
    assert [r["invoice_number"] for r in original] == ["A-1", "B-2"]
    assert fixed[0]["total"] == 17.25 and original[0]["total"] == 15.5
    assert [i["amount"] for i in fixed[0]["line_items"]] == [10.0, 7.25]
    assert [i["amount"] for i in original[0]["line_items"]] == [10.0, 5.5]

    export(batch_id, path=tmp_path / "fixed.csv", workspace=workspace)
    with (tmp_path / "fixed.csv").open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert rows[0]["invoice_number"] == "A-100" and rows[0]["total"] == "17.25"
    with workspace.db.connect() as connection:
        options = connection.scalars(select(Export.options).order_by(Export.id)).all()
    assert [o["originals"] for o in options] == [False, True, False]


def test_excel_parquet_and_multi_row_exports_write_corrected_values(
    workspace: Workspace, corrected: tuple[int, list[int]], tmp_path: Path
) -> None:
    batch_id, _ = corrected
    export(batch_id, mode="multi-row", path=tmp_path / "items.xlsx", workspace=workspace)
    sheet = openpyxl.load_workbook(tmp_path / "items.xlsx", read_only=True).active
    assert sheet is not None
    rows = list(sheet.iter_rows(values_only=True))
    header = list(rows[0])
    amounts = [row[header.index("line_items.amount")] for row in rows[1:]]
    numbers = [row[header.index("invoice_number")] for row in rows[1:]]
    assert amounts == [10.0, 7.25, 3.0]
    assert numbers == ["A-100", "A-100", "B-2"]

    export(batch_id, mode="sheets", path=tmp_path / "sheets.xlsx", workspace=workspace)
    book = openpyxl.load_workbook(tmp_path / "sheets.xlsx", read_only=True)
    item_rows = list(book["line_items"].iter_rows(values_only=True))
    assert 7.25 in [cell for row in item_rows for cell in row]

    export(batch_id, path=tmp_path / "fixed.parquet", workspace=workspace)
    export(batch_id, path=tmp_path / "orig.parquet", originals=True, workspace=workspace)
    assert pq.read_table(tmp_path / "fixed.parquet").column("total").to_pylist() == [17.25, 3.0]
    assert pq.read_table(tmp_path / "orig.parquet").column("total").to_pylist() == [15.5, 3.0]

    frame = export_dataframe(batch_id, "multi-row", workspace=workspace)
    assert list(frame["line_items.amount"]) == [10.0, 7.25, 3.0]
    frame = export_dataframe(batch_id, "multi-row", originals=True, workspace=workspace)
    assert list(frame["line_items.amount"]) == [10.0, 5.5, 3.0]


def test_a_queued_export_on_a_worker_writes_corrected_values(
    workspace: Workspace, corrected: tuple[int, list[int]], tmp_path: Path
) -> None:
    batch_id, _ = corrected
    worker = start_worker(workspace, threads=1)
    try:
        fixed = export(batch_id, path=tmp_path / "q.json", background=True, workspace=workspace)
        orig = export(
            batch_id, path=tmp_path / "o.json", background=True, originals=True, workspace=workspace
        )
        fixed_rows = json.loads(fixed.wait(timeout=60, progress=False).read_text())
        orig_rows = json.loads(orig.wait(timeout=60, progress=False).read_text())
    finally:
        worker.stop()
    assert fixed_rows[0]["invoice_number"] == "A-100"
    assert orig_rows[0]["invoice_number"] == "A-1"


def test_corrections_cost_one_query_per_page(
    workspace: Workspace, corrected: tuple[int, list[int]]
) -> None:
    """Records read in pages of one document: 3 queries per page (documents, results,
    corrections), never one per correction."""
    from sqlalchemy import event

    batch_id, _ = corrected
    statements: list[str] = []

    def count(*args: object) -> None:
        statements.append(str(args[2]))

    event.listen(workspace.db.engine, "before_cursor_execute", count)
    try:
        records = list(
            iter_export_records(workspace.db, Selection(batch_ids=(batch_id,)), False, page_size=1)
        )
    finally:
        event.remove(workspace.db.engine, "before_cursor_execute", count)
    assert records[0].data["invoice_number"] == "A-100"
    selects = [s for s in statements if s.startswith("SELECT")]
    assert sum("FROM corrections" in s for s in selects) == 2  # two pages
    assert len(selects) == 3 * 2 + 1  # and a last, empty page of documents


def test_the_cli_export_takes_originals(
    workspace: Workspace, corrected: tuple[int, list[int]], tmp_path: Path
) -> None:
    batch_id, _ = corrected
    runner = CliRunner()
    for name, extra in (("fixed.json", []), ("orig.json", ["--originals"])):
        result = runner.invoke(main, ["export", str(batch_id), "-o", str(tmp_path / name), *extra])
        assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "fixed.json").read_text())[0]["invoice_number"] == "A-100"
    assert json.loads((tmp_path / "orig.json").read_text())[0]["invoice_number"] == "A-1"
