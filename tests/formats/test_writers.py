"""Format-specific behaviour of the writers: neutralising, typed cells, limits, errors.

The read-back of every format in every mode is tests/formats/test_read_back.py; Excel's sheets
mode has tests/formats/test_excel_sheets.py.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import openpyxl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from batchnb.formats import ExportError, ExportRecord, write, writers
from batchnb.formats.cells import TRUNCATION_MARKER, sheet_title, truncate
from tests.formats.expected import (
    DOCUMENT_COLUMNS,
    FORMULA_PREFIXES,
    NORMAL_COLUMNS,
    SCHEMA,
    generated_records,
    make_records,
    read_table,
    read_xlsx,
)


@pytest.fixture
def records() -> list[ExportRecord]:
    return make_records()


def test_csv_neutralises_formulas_but_not_numbers(
    tmp_path: Path, records: list[ExportRecord]
) -> None:
    path = tmp_path / "out.csv"
    write(records, "csv", path, include_failed=True)
    with path.open(encoding="utf-8", newline="") as file:
        rows = {row["document_id"]: row for row in csv.DictReader(file)}
    assert rows["2"]["invoice_number"] == "'=1+1"
    assert rows["2"]["notes"] == "'@SUM(A1)"
    assert rows["2"]["file_name"] == "'=evil.pdf"
    assert rows["2"]["quantity"] == "-5"
    assert rows["2"]["total"] == "-5"
    assert rows["3"]["invoice_number"] == "'\tTAB"
    assert rows["6"]["invoice_number"] == "'\rCR-7"
    assert rows["5"]["error"] == "'+corrupt: encrypted PDF"


@pytest.mark.parametrize("fmt", writers.FORMATS)
def test_formula_like_text_is_neutralised_only_in_spreadsheets(tmp_path: Path, fmt: str) -> None:
    texts = [f"{prefix}cmd|' /C calc'!A0" for prefix in FORMULA_PREFIXES]
    records = [
        ExportRecord(
            number,
            text,
            1,
            "completed",
            data={"notes": text, "quantity": -number, "line_items": [{"description": text}]},
            schema=SCHEMA,
        )
        for number, text in enumerate(texts, start=1)
    ]
    path = tmp_path / f"f.{fmt}"
    write(records, fmt, path, mode="multi-row", array_field="line_items")
    if fmt == "xlsx":
        header, *rows = read_xlsx(path)["line_items"]
    else:
        header, rows = read_table(fmt, path)
    columns = {name: [row[header.index(name)] for row in rows] for name in header}
    spreadsheet = fmt in ("csv", "xlsx")
    wanted = ["'" + text if spreadsheet else text for text in texts]
    assert columns["file_name"] == wanted
    assert columns["notes"] == wanted
    assert columns["line_items.description"] == wanted
    # Negative numbers are numbers, not formulas: never prefixed.
    numbers = {"csv": [str(-n) for n in range(1, 7)], "parquet": [-float(n) for n in range(1, 7)]}
    assert columns["quantity"] == numbers.get(fmt, [-n for n in range(1, 7)])


def test_xlsx_cells_are_typed(tmp_path: Path, records: list[ExportRecord]) -> None:
    path = tmp_path / "out.xlsx"
    write(records, "xlsx", path)
    workbook = openpyxl.load_workbook(path)
    sheet = workbook["Documents"]
    header = [cell.value for cell in sheet[1]]
    row = {name: cell for name, cell in zip(header, sheet[3], strict=True)}
    assert row["quantity"].data_type == "n" and row["quantity"].value == -5
    assert row["paid"].data_type == "b" and row["paid"].value is False
    assert row["invoice_date"].is_date
    assert row["invoice_number"].data_type == "s" and row["invoice_number"].value == "'=1+1"
    assert row["notes"].value == "'@SUM(A1)"


@pytest.mark.parametrize("mode", ["normal", "multi-row"])
def test_parquet_columns_are_typed_and_written_in_chunks(
    tmp_path: Path, records: list[ExportRecord], mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(writers, "PARQUET_ROW_GROUP_ROWS", 2)  # a row group per 2-row chunk
    path = tmp_path / "out.parquet"
    summary = write(
        records,
        "parquet",
        path,
        mode=mode,  # type: ignore[arg-type]
        array_field="line_items",
        include_failed=True,
        include_confidence=True,
        chunk_size=2,
    )
    schema = pq.read_schema(path)
    assert pq.ParquetFile(path).metadata.num_row_groups == -(-summary.rows // 2) > 1
    types = {
        "document_id": pa.int64(),
        "batch_id": pa.int64(),
        "invoice_number": pa.string(),
        "invoice_date": pa.date32(),
        "total": pa.float64(),
        "total_currency": pa.string(),
        "paid": pa.bool_(),
        "quantity": pa.float64(),
        "confidence": pa.float64(),
        "evidence": pa.string(),
        "taxes": pa.list_(pa.struct([("name", pa.string()), ("rate", pa.float64())])),
    }
    line_items = {
        "description": pa.string(),
        "amount": pa.float64(),
        "amount_currency": pa.string(),
        "delivered": pa.date32(),
    }
    if mode == "normal":
        types["line_items"] = pa.list_(pa.struct(list(line_items.items())))
    else:
        types |= {f"line_items.{name}": kind for name, kind in line_items.items()}
    assert {name: schema.field(name).type for name in types} == types


def test_wrong_typed_values_stay_in_json_and_are_null_in_parquet(tmp_path: Path) -> None:
    record = ExportRecord(
        1, "a.pdf", 1, "completed", data={"quantity": "lots", "invoice_date": "soon"}, schema=SCHEMA
    )
    write([record], "parquet", tmp_path / "a.parquet")
    write([record], "json", tmp_path / "a.json")
    row = pq.read_table(tmp_path / "a.parquet").to_pylist()[0]
    assert row["quantity"] is None and row["invoice_date"] is None
    kept = json.loads((tmp_path / "a.json").read_text(encoding="utf-8"))[0]
    assert kept["quantity"] == "lots" and kept["invoice_date"] == "soon"


def test_excel_continues_on_new_sheets(
    tmp_path: Path, records: list[ExportRecord], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(writers, "EXCEL_MAX_ROWS", 3)  # header + 2 rows per sheet
    path = tmp_path / "split.xlsx"
    summary = write(records * 3, "xlsx", path, include_failed=True)
    sheets = read_xlsx(path)
    assert len(records) * 3 == 18
    assert list(sheets) == ["Documents", *(f"Documents ({n})" for n in range(2, 10))]
    assert all(rows[0] == NORMAL_COLUMNS for rows in sheets.values())
    assert all(len(rows) == 3 for rows in sheets.values())
    ids = [row[0] for rows in sheets.values() for row in rows[1:]]
    assert ids == [r.document_id for r in records] * 3
    assert summary.rows == 18


def test_long_cells_are_truncated_in_excel_only(tmp_path: Path) -> None:
    long_text = "é" * 40_000
    record = ExportRecord(1, "long.pdf", 1, "completed", data={"notes": long_text}, schema=SCHEMA)
    write([record], "xlsx", tmp_path / "long.xlsx")
    write([record], "csv", tmp_path / "long.csv")
    header, row = read_xlsx(tmp_path / "long.xlsx")["Documents"]
    cell = row[header.index("notes")]
    assert len(cell) == 32_767
    assert cell.endswith(TRUNCATION_MARKER)
    assert cell.startswith("é" * 1000)
    with (tmp_path / "long.csv").open(encoding="utf-8", newline="") as file:
        assert next(csv.DictReader(file))["notes"] == long_text


def test_truncate_counts_utf16_units() -> None:
    text = "😀" * 20_000  # 40,000 UTF-16 units
    cut = truncate(text)
    assert cut.endswith(TRUNCATION_MARKER)
    assert len(cut.encode("utf-16-le")) // 2 <= 32_767
    assert truncate("short") == "short"


def test_sheet_titles_are_valid_and_unique() -> None:
    used: set[str] = set()
    first = sheet_title("a/very:long*array?field[name]_that_goes_on", 1, used)
    assert len(first) <= 31 and not set("[]:*?/\\") & set(first)
    used.add(first.lower())
    second = sheet_title("a/very:long*array?field[name]_that_goes_on", 1, used)
    assert second != first and len(second) <= 31 and second.endswith(" (2)")
    assert sheet_title("Documents", 12, set()) == "Documents (12)"


def test_multi_row_needs_an_array_field_when_there_are_two(
    tmp_path: Path, records: list[ExportRecord]
) -> None:
    with pytest.raises(ExportError, match="array_field"):
        write(records, "csv", tmp_path / "x.csv", mode="multi-row")
    with pytest.raises(ExportError, match="array_field"):
        write(records, "csv", tmp_path / "x.csv", mode="multi-row", array_field="notes")
    assert not list(tmp_path.iterdir())


def test_multi_row_picks_the_only_array_field(tmp_path: Path) -> None:
    schema = {"fields": [SCHEMA["fields"][0], SCHEMA["fields"][5]]}
    record = ExportRecord(1, "a.pdf", 1, "completed", data=make_records()[0].data, schema=schema)
    summary = write([record], "jsonl", tmp_path / "a.jsonl", mode="multi-row")
    assert summary.rows == 2


def test_unknown_format_and_mode(tmp_path: Path, records: list[ExportRecord]) -> None:
    with pytest.raises(ExportError, match="format"):
        write(records, "xml", tmp_path / "x.xml")
    with pytest.raises(ExportError, match="mode"):
        write(records, "csv", tmp_path / "x.csv", mode="wide")  # type: ignore[arg-type]


def test_records_outside_the_schema_stop_the_export_and_leave_no_file(
    tmp_path: Path, records: list[ExportRecord]
) -> None:
    other = ExportRecord(
        9,
        "other.pdf",
        1,
        "completed",
        data={"vendor": "ACME"},
        schema={"fields": [{"name": "vendor", "label": "Vendor", "type": "string"}]},
    )
    with pytest.raises(ExportError, match="vendor"):
        write([*records, other], "xlsx", tmp_path / "x.xlsx", chunk_size=1)
    assert not list(tmp_path.iterdir())


def test_only_failed_documents_give_document_columns(tmp_path: Path) -> None:
    failed = make_records()[-1]
    summary = write([failed], "csv", tmp_path / "f.csv", include_failed=True)
    with (tmp_path / "f.csv").open(encoding="utf-8", newline="") as file:
        assert next(csv.reader(file)) == DOCUMENT_COLUMNS
    assert summary.rows == 1
    assert write([failed], "csv", tmp_path / "g.csv").rows == 0


@pytest.mark.parametrize("fmt", ["json", "jsonl", "csv", "xlsx", "parquet"])
def test_a_generator_of_20000_records_streams(tmp_path: Path, fmt: str) -> None:
    path = tmp_path / f"big.{fmt}"
    normal = write(generated_records(20_000), fmt, path, chunk_size=1000)
    assert normal.rows == 20_000
    assert normal.bytes == path.stat().st_size > 0
    multi = write(generated_records(20_000), fmt, path, mode="multi-row", array_field="line_items")
    # index % 3 items: 0 items still give one row.
    assert multi.rows == sum(max(1, i % 3) for i in range(20_000))


def test_parquet_gathers_chunks_into_row_groups(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(writers, "PARQUET_ROW_GROUP_ROWS", 5)
    path = tmp_path / "groups.parquet"
    summary = write(generated_records(13), "parquet", path, chunk_size=2)
    metadata = pq.ParquetFile(path).metadata
    # Whole chunks of 2 rows are gathered until at least 5 rows wait: groups of 6, then the rest.
    sizes = [metadata.row_group(n).num_rows for n in range(metadata.num_row_groups)]
    assert sizes == [6, 6, 1]
    assert summary.rows == 13
    assert pq.read_table(path).column("document_id").to_pylist() == list(range(13))


def test_parquet_row_groups_are_large_by_default(tmp_path: Path) -> None:
    path = tmp_path / "big.parquet"
    write(generated_records(20_000), "parquet", path, chunk_size=1000)
    metadata = pq.ParquetFile(path).metadata
    sizes = [metadata.row_group(n).num_rows for n in range(metadata.num_row_groups)]
    assert sizes == [9_000, 9_000, 2_000]  # 9 chunks reach 8,192 rows
    assert writers.PARQUET_ROW_GROUP_ROWS == 8_192


def test_parquet_values_pyarrow_would_convert_wrongly_are_null(tmp_path: Path) -> None:
    """pyarrow itself would read True as 1.0, 1 as true and an integer as a day count."""
    good = ExportRecord(
        1,
        "good.pdf",
        1,
        "completed",
        data={
            "quantity": 2,
            "paid": True,
            "invoice_date": "2024-01-31",
            "notes": "fine",
            "line_items": [{"description": "ok", "amount": {"amount": 3}, "delivered": None}],
        },
        schema=SCHEMA,
    )
    bad = ExportRecord(
        2,
        "bad.pdf",
        1,
        "completed",
        data={
            "quantity": True,
            "paid": 1,
            "invoice_date": 19_000,
            "notes": 5,
            "total": {"amount": 2**60, "currency": "EUR"},
            "line_items": [{"description": 7, "amount": {"amount": False}, "delivered": 3}],
        },
        schema=SCHEMA,
    )
    path = tmp_path / "typed.parquet"
    write([good, bad], "parquet", path)
    first, second = pq.read_table(path).to_pylist()
    assert (first["quantity"], first["paid"], first["notes"]) == (2.0, True, "fine")
    assert first["line_items"] == [
        {"description": "ok", "amount": 3.0, "amount_currency": None, "delivered": None}
    ]
    assert (second["quantity"], second["paid"], second["invoice_date"]) == (None, None, None)
    assert second["notes"] == "5"  # text columns take any value as its JSON text
    assert second["total"] == float(2**60)
    assert second["line_items"] == [
        {"description": "7", "amount": None, "amount_currency": None, "delivered": None}
    ]


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_text_in_typed_columns_is_still_neutralised(tmp_path: Path, fmt: str) -> None:
    record = ExportRecord(
        1,
        "a.pdf",
        1,
        "completed",
        data={
            "quantity": "=1+1",
            "invoice_date": "@today",
            "total": "-cmd",
            "paid": "+yes",
            "line_items": [{"description": "x", "amount": {"amount": "=2*3"}}],
        },
        schema=SCHEMA,
    )
    path = tmp_path / f"n.{fmt}"
    write([record], fmt, path, mode="multi-row", array_field="line_items")
    if fmt == "xlsx":
        header, row = read_xlsx(path)["line_items"]
    else:
        header, (row,) = read_table(fmt, path)
    cells = dict(zip(header, row, strict=True))
    assert cells["quantity"] == "'=1+1"
    assert cells["invoice_date"] == "'@today"
    assert cells["total"] == "'-cmd"
    assert cells["paid"] == "'+yes"
    assert cells["line_items.amount"] == "'=2*3"


def test_csv_writes_typed_values_as_text_cell_would(tmp_path: Path) -> None:
    record = ExportRecord(
        1,
        "a.pdf",
        1,
        "completed",
        data={"quantity": False, "paid": True, "notes": 2.5, "total": {"amount": 7}},
        schema=SCHEMA,
    )
    path = tmp_path / "t.csv"
    write([record], "csv", path)
    with path.open(encoding="utf-8", newline="") as file:
        row = next(csv.DictReader(file))
    assert (row["quantity"], row["paid"], row["notes"], row["total"]) == (
        "false",
        "true",
        "2.5",
        "7",
    )
    assert row["error"] == row["invoice_date"] == row["total_currency"] == ""


def test_excel_replaces_control_characters(tmp_path: Path) -> None:
    texts = ["a\x01b\x1fc", "é\x00\x08", "\x0bvertical", "keep\ttab\nnewline", "plain café 😀"]
    records = [
        ExportRecord(n, f"{n}.pdf", 1, "completed", data={"notes": text}, schema=SCHEMA)
        for n, text in enumerate(texts, start=1)
    ]
    path = tmp_path / "c.xlsx"
    write(records, "xlsx", path)
    header, *rows = read_xlsx(path)["Documents"]
    notes = [row[header.index("notes")] for row in rows]
    assert notes == [
        "a\ufffdb\ufffdc",
        "é\ufffd\ufffd",
        "\ufffdvertical",
        "keep\ttab\nnewline",
        "plain café 😀",
    ]
