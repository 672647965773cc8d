"""Excel's sheets mode: a Documents sheet plus one sheet per array field, linked by document_id.

Cell-by-cell read-back of this mode is in tests/formats/test_read_back.py; these tests cover what
is particular to it: formats that cannot take it, sheet names, row limits, pandas joins.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from batchnb.formats import ExportError, ExportRecord, write, writers
from batchnb.formats.cells import TRUNCATION_MARKER
from tests.formats.expected import (
    DOCUMENT_COLUMNS,
    ITEM_COLUMNS,
    SCHEMA,
    SHEETS_COLUMNS,
    expected_item_rows,
    expected_rows,
    make_records,
    read_xlsx,
)


@pytest.fixture
def records() -> list[ExportRecord]:
    return make_records()


@pytest.mark.parametrize("fmt", ["json", "jsonl", "csv", "parquet"])
def test_sheets_mode_is_for_excel_only(
    tmp_path: Path, records: list[ExportRecord], fmt: str
) -> None:
    with pytest.raises(ExportError, match=r"xlsx.*multi-row"):
        write(records, fmt, tmp_path / f"x.{fmt}", mode="sheets")
    assert not list(tmp_path.iterdir())


def test_each_sheet_continues_past_the_row_limit(
    tmp_path: Path, records: list[ExportRecord], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(writers, "EXCEL_MAX_ROWS", 3)  # header + 2 rows per sheet
    path = tmp_path / "split.xlsx"
    summary = write(records * 2, "xlsx", path, mode="sheets", include_failed=True, chunk_size=5)
    sheets = read_xlsx(path)
    documents = [row["document_id"] for row in expected_rows(records * 2, "sheets", True)]
    items = {
        array: [row["document_id"] for row in expected_item_rows(records * 2, array, True)]
        for array in ("line_items", "taxes")
    }
    assert (len(documents), len(items["line_items"]), len(items["taxes"])) == (12, 12, 6)

    def series(base: str, count: int) -> list[str]:
        return [base, *(f"{base} ({n})" for n in range(2, count + 1))]

    # The parts of one table stay together, though rows of the three went in turn.
    assert list(sheets) == [*series("Documents", 6), *series("line_items", 6), *series("taxes", 3)]
    for base, ids, header in (
        ("Documents", documents, SHEETS_COLUMNS),
        ("line_items", items["line_items"], ["document_id", *ITEM_COLUMNS["line_items"]]),
        ("taxes", items["taxes"], ["document_id", *ITEM_COLUMNS["taxes"]]),
    ):
        parts = [rows for title, rows in sheets.items() if title.startswith(base)]
        assert all(rows[0] == header and 2 <= len(rows) <= 3 for rows in parts)
        assert [row[0] for rows in parts for row in rows[1:]] == ids
    assert summary.rows == 12 + 12 + 6


def test_sheet_titles_of_array_fields_are_valid_and_unique(tmp_path: Path) -> None:
    def array(name: str) -> dict[str, Any]:
        return {"name": name, "type": "array", "fields": [{"name": "x", "type": "number"}]}

    names = [
        "Documents",
        "positions/items: [all of them] and more besides",
        "positions/items: [all of them] and more again",
    ]
    schema = {"fields": [array(name) for name in names]}
    data = {name: [{"x": number}] for number, name in enumerate(names, start=1)}
    record = ExportRecord(1, "a.pdf", 1, "completed", data=data, schema=schema)
    write([record], "xlsx", tmp_path / "t.xlsx", mode="sheets")
    sheets = read_xlsx(tmp_path / "t.xlsx")
    titles = list(sheets)
    assert titles[0] == "Documents"
    assert titles[1] == "Documents (2)"
    assert titles[2].startswith("positionsitems all of them")
    assert titles[3].endswith(" (2)")
    assert all(len(title) <= 31 and not set("[]:*?/\\") & set(title) for title in titles)
    assert len({title.lower() for title in titles}) == 4
    assert sheets["Documents"] == [DOCUMENT_COLUMNS, [1, "a.pdf", 1, "completed", None]]
    assert [sheets[title][1] for title in titles[1:]] == [[1, 1], [1, 2], [1, 3]]


def test_pandas_joins_item_sheets_to_documents(tmp_path: Path, records: list[ExportRecord]) -> None:
    path = tmp_path / "joined.xlsx"
    write(records, "xlsx", path, mode="sheets")
    frames = pd.read_excel(path, sheet_name=None)
    assert list(frames) == ["Documents", "line_items", "taxes"]
    joined = frames["line_items"].merge(frames["Documents"], on="document_id", how="left")
    want = [
        (row["document_id"], row["file_name"], row["line_items.description"])
        for row in expected_rows(records, "multi-row")
        if row["line_items.description"] is not None
    ]
    got = [
        (row.document_id, row.file_name, row.description)
        for row in joined.itertuples()
        if isinstance(row.description, str)
    ]
    spreadsheet = [(i, _neutral(name), _neutral(text)) for i, name, text in want]
    assert got == spreadsheet
    assert frames["taxes"]["rate"].dtype == "float64"
    assert str(frames["line_items"]["delivered"].dtype).startswith("datetime64")


def _neutral(text: str) -> str:
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def test_item_cells_are_truncated_and_odd_arrays_left_out(tmp_path: Path) -> None:
    long_text = "😀" * 20_000  # 40,000 UTF-16 units
    records = [
        ExportRecord(1, "a.pdf", 1, "completed", data={"line_items": [{"description": long_text}]}),
        # Not a list: neither sheet has a place for it (JSON and CSV keep it as stored).
        ExportRecord(2, "b.pdf", 1, "completed", data={"line_items": "see attachment"}),
    ]
    summary = write(records, "xlsx", tmp_path / "t.xlsx", mode="sheets", schema=SCHEMA)
    sheets = read_xlsx(tmp_path / "t.xlsx")
    assert [row[0] for row in sheets["Documents"][1:]] == [1, 2]
    (header, item) = sheets["line_items"]
    cell = item[header.index("description")]
    assert cell.endswith(TRUNCATION_MARKER)
    assert cell.startswith("😀" * 1000)
    assert len(cell.encode("utf-16-le")) // 2 <= 32_767
    assert item[0] == 1
    assert summary.rows == 3
