"""Every format in every mode, read back and compared cell by cell, types included.

The expected cells come from :mod:`tests.formats.expected`, derived from the input records
without calling the export code.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from batchnb.formats import ExportRecord, write
from tests.formats.expected import (
    CONFIDENCE_COLUMNS,
    ITEM_COLUMNS,
    MULTI_ROW_COLUMNS,
    NORMAL_COLUMNS,
    SHEETS_COLUMNS,
    encode_table,
    expected_rows,
    expected_tables,
    make_records,
    read_table,
    read_xlsx,
    typed,
)

FORMATS = ("json", "jsonl", "csv", "xlsx", "parquet")
CASES = [
    *((fmt, mode) for mode in ("normal", "multi-row") for fmt in FORMATS),
    ("xlsx", "sheets"),
]
COLUMNS = {"normal": NORMAL_COLUMNS, "multi-row": MULTI_ROW_COLUMNS, "sheets": SHEETS_COLUMNS}


def expected_header(mode: str, title: str, include_confidence: bool) -> list[str]:
    """The header of a file, or of one sheet of a workbook (``title``)."""
    if mode == "sheets" and title != "Documents":
        return ["document_id", *ITEM_COLUMNS[title]]
    return [*COLUMNS[mode], *(CONFIDENCE_COLUMNS if include_confidence else [])]


@pytest.fixture
def records() -> list[ExportRecord]:
    return make_records()


def assert_same_cells(got: list[list[object]], want: list[list[object]], where: str) -> None:
    assert len(got) == len(want), where
    for number, (row, wanted) in enumerate(zip(got, want, strict=True), start=1):
        assert typed(row) == typed(wanted), f"{where}, row {number}"


@pytest.mark.parametrize("include_confidence", [False, True], ids=["plain", "confidence"])
@pytest.mark.parametrize("include_failed", [False, True], ids=["completed", "with-failed"])
@pytest.mark.parametrize(("fmt", "mode"), CASES)
def test_written_file_reads_back_cell_by_cell(
    tmp_path: Path,
    records: list[ExportRecord],
    fmt: str,
    mode: str,
    include_failed: bool,
    include_confidence: bool,
) -> None:
    path = tmp_path / f"out.{fmt}"
    summary = write(
        records,
        fmt,
        path,
        mode=mode,  # type: ignore[arg-type]
        array_field="line_items" if mode == "multi-row" else None,
        include_failed=include_failed,
        include_confidence=include_confidence,
        chunk_size=2,
    )
    if fmt == "xlsx":
        tables = expected_tables(records, mode, include_failed, include_confidence)
        sheets = read_xlsx(path)
        assert list(sheets) == list(tables)
        for title, rows in tables.items():
            header, *cells = sheets[title]
            assert header == expected_header(mode, title, include_confidence)
            assert_same_cells(cells, encode_table(fmt, rows), f"sheet {title}")
        written = sum(len(rows) for rows in tables.values())
    else:
        rows = expected_rows(records, mode, include_failed, include_confidence)
        header, cells = read_table(fmt, path)
        assert header == expected_header(mode, "", include_confidence)
        assert_same_cells(cells, encode_table(fmt, rows), fmt)
        written = len(rows)
    assert summary.rows == written
    assert summary.bytes == path.stat().st_size


def test_every_case_holds_what_the_acceptance_asks_for(records: list[ExportRecord]) -> None:
    """Guard the test data: a case the matrix must cover cannot silently drop out of it."""
    rows = expected_rows(records, "normal", include_failed=True)
    text = " ".join(str(value) for row in rows for value in row.values())
    assert any(ord(char) > 0xFFFF for char in text)  # beyond the BMP
    assert any("\u0590" <= char <= "\u06ff" for char in text)  # Hebrew and Arabic
    assert any("\u4e00" <= char <= "\u9fff" for char in text)  # CJK
    starts = {str(v)[:1] for row in rows for v in row.values() if isinstance(v, str)}
    starts |= {
        str(v)[:1]
        for row in rows
        for array in ("line_items", "taxes")
        for item in row[array] or []
        for v in item.values()
        if isinstance(v, str)
    }
    assert {"=", "+", "-", "@", "\t", "\r"} <= starts
    assert [] in [row["line_items"] for row in rows] and None in [row["taxes"] for row in rows]
    assert any(row["status"] == "failed" for row in rows)
    assert {type(row["quantity"]) for row in rows} >= {int, float}
