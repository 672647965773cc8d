"""Every format in both modes, read back with json / csv / openpyxl / pyarrow, cell by cell."""

from __future__ import annotations

import csv
import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openpyxl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from batchnb.export import ExportError, ExportRecord, Mode, write, writers
from batchnb.export.cells import TRUNCATION_MARKER, sheet_title, truncate

SCHEMA: dict[str, Any] = {
    "fields": [
        {"name": "invoice_number", "label": "Invoice No.", "type": "string"},
        {"name": "invoice_date", "label": "Date", "type": "date"},
        {"name": "total", "label": "Total", "type": "money"},
        {"name": "paid", "label": "Paid?", "type": "boolean"},
        {"name": "quantity", "label": "Quantity", "type": "number"},
        {
            "name": "line_items",
            "label": "Line items",
            "type": "array",
            "fields": [
                {"name": "description", "label": "Description", "type": "string"},
                {"name": "amount", "label": "Amount", "type": "money"},
                {"name": "delivered", "label": "Delivered", "type": "date"},
            ],
        },
        {"name": "notes", "label": "Notes", "type": "string"},
        {
            "name": "taxes",
            "label": "Taxes",
            "type": "array",
            "fields": [
                {"name": "name", "label": "Name", "type": "string"},
                {"name": "rate", "label": "Rate", "type": "number"},
            ],
        },
    ]
}

DOCUMENT_COLUMNS = ["document_id", "file_name", "batch_id", "status", "error"]
NORMAL_COLUMNS = [
    *DOCUMENT_COLUMNS,
    "invoice_number",
    "invoice_date",
    "total",
    "total_currency",
    "paid",
    "quantity",
    "line_items",
    "notes",
    "taxes",
]
LINE_ITEM_COLUMNS = [
    "line_items.description",
    "line_items.amount",
    "line_items.amount_currency",
    "line_items.delivered",
]
MULTI_ROW_COLUMNS = [
    *NORMAL_COLUMNS[: NORMAL_COLUMNS.index("line_items")],
    *LINE_ITEM_COLUMNS,
    "notes",
    "taxes",
]


def make_records() -> list[ExportRecord]:
    """Unicode, formula-like text, empty and missing arrays, missing fields, a failed document."""
    return [
        ExportRecord(
            document_id=1,
            file_name="Rechnung_Müller_日本.pdf",
            batch_id=7,
            status="completed",
            data={
                "invoice_number": "INV-001",
                "invoice_date": "2024-03-05",
                "total": {"amount": 1234.5, "currency": "EUR"},
                "paid": True,
                "quantity": 3,
                "line_items": [
                    {
                        "description": "Café crème ☕",
                        "amount": {"amount": 4.2, "currency": "EUR"},
                        "delivered": "2024-03-01",
                    },
                    {"description": "Ürün 😀", "amount": {"amount": 1230.3, "currency": None}},
                ],
                "notes": "Straße, 東京",
                "taxes": [{"name": "VAT", "rate": 0.19}],
            },
            schema=SCHEMA,
            confidence=0.91,
            evidence={"total": {"raw": "1.234,50 €", "page": 1}},
        ),
        ExportRecord(
            document_id=2,
            file_name="=evil.pdf",
            batch_id=7,
            status="completed",
            data={
                "invoice_number": "=1+1",
                "invoice_date": "2024-12-31",
                "total": {"amount": -5, "currency": "USD"},
                "paid": False,
                "quantity": -5,
                "line_items": [{"description": "-cmd", "amount": {"amount": -5.0}}],
                "notes": "@SUM(A1)",
                "taxes": [],
            },
            schema=SCHEMA,
            confidence=0.5,
        ),
        ExportRecord(
            document_id=3,
            file_name="empty.pdf",
            batch_id=8,
            status="completed",
            data={"invoice_number": "\tTAB", "line_items": [], "taxes": [], "notes": "+plus"},
            schema=SCHEMA,
        ),
        ExportRecord(
            document_id=4,
            file_name="missing.png",
            batch_id=8,
            status="completed",
            data={"invoice_number": "ONLY"},
            schema=SCHEMA,
        ),
        ExportRecord(
            document_id=5,
            file_name="broken.pdf",
            batch_id=8,
            status="failed",
            error="+corrupt: encrypted PDF",
        ),
    ]


# --- expected rows, written out independently of batchnb.export.rows ---------------------------


def _money(value: Any) -> tuple[Any, Any]:
    if isinstance(value, dict):
        return value.get("amount"), value.get("currency")
    return value, None


def _date(value: Any) -> Any:
    return dt.date.fromisoformat(value) if isinstance(value, str) else value


def _line_item(item: dict[str, Any]) -> dict[str, Any]:
    amount, currency = _money(item.get("amount"))
    return {
        "description": item.get("description"),
        "amount": amount,
        "amount_currency": currency,
        "delivered": _date(item.get("delivered")),
    }


def _tax(item: dict[str, Any]) -> dict[str, Any]:
    return {"name": item.get("name"), "rate": item.get("rate")}


def expected_rows(
    records: list[ExportRecord], mode: Mode, include_failed: bool = False
) -> list[dict[str, Any]]:
    """Rows with logical values: dates as dates, arrays as lists of flattened item dicts."""
    rows = []
    for record in records:
        if record.status == "failed" and not include_failed:
            continue
        data = record.data
        total, currency = _money(data.get("total"))
        line_items = data.get("line_items")
        taxes = data.get("taxes")
        row = {
            "document_id": record.document_id,
            "file_name": record.file_name,
            "batch_id": record.batch_id,
            "status": record.status,
            "error": record.error,
            "invoice_number": data.get("invoice_number"),
            "invoice_date": _date(data.get("invoice_date")),
            "total": total,
            "total_currency": currency,
            "paid": data.get("paid"),
            "quantity": data.get("quantity"),
            "line_items": None if line_items is None else [_line_item(i) for i in line_items],
            "notes": data.get("notes"),
            "taxes": None if taxes is None else [_tax(i) for i in taxes],
        }
        if mode == "normal":
            rows.append(row)
            continue
        del row["line_items"]
        items = [_line_item(i) for i in line_items or []]
        for item in items or [
            dict.fromkeys(("description", "amount", "amount_currency", "delivered"))
        ]:
            rows.append(row | {f"line_items.{k}": v for k, v in item.items()})
    return rows


# --- per-format encodings of an expected value --------------------------------------------------


def _iso(value: Any) -> Any:
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, list):
        return [_iso(v) for v in value]
    if isinstance(value, dict):
        return {k: _iso(v) for k, v in value.items()}
    return value


def _neutral(text: str) -> str:
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def as_csv(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, list):
        return json.dumps(_iso(value), ensure_ascii=False)
    return _neutral(value)


def as_xlsx(value: Any) -> Any:
    if isinstance(value, list):
        return json.dumps(_iso(value), ensure_ascii=False)
    if isinstance(value, str):
        return _neutral(value)
    return value


def read_xlsx(path: Path) -> dict[str, list[list[Any]]]:
    workbook = openpyxl.load_workbook(path, read_only=True)
    sheets = {ws.title: [list(row) for row in ws.iter_rows(values_only=True)] for ws in workbook}
    workbook.close()
    # Empty cells are not stored: a row ending in empty cells reads back shorter than its header.
    for rows in sheets.values():
        for row in rows[1:]:
            row.extend([None] * (len(rows[0]) - len(row)))
    return sheets


def _xlsx_value(cell: Any, expected: Any) -> Any:
    # openpyxl reads every date cell back as a datetime at midnight.
    if isinstance(cell, dt.datetime) and type(expected) is dt.date:
        return cell.date()
    return cell


MODES: list[tuple[Mode, str | None, list[str]]] = [
    ("normal", None, NORMAL_COLUMNS),
    ("multi-row", "line_items", MULTI_ROW_COLUMNS),
]


@pytest.fixture
def records() -> list[ExportRecord]:
    return make_records()


@pytest.mark.parametrize(("mode", "array_field", "columns"), MODES)
@pytest.mark.parametrize("include_failed", [False, True])
def test_json_and_jsonl_round_trip(
    tmp_path: Path,
    records: list[ExportRecord],
    mode: Mode,
    array_field: str | None,
    columns: list[str],
    include_failed: bool,
) -> None:
    expected = [_iso(row) for row in expected_rows(records, mode, include_failed)]
    json_path, jsonl_path = tmp_path / "out.json", tmp_path / "out.jsonl"
    options: dict[str, Any] = {"include_failed": include_failed, "chunk_size": 2}
    first = write(records, "json", json_path, mode=mode, array_field=array_field, **options)
    second = write(records, "jsonl", jsonl_path, mode=mode, array_field=array_field, **options)

    from_json = json.loads(json_path.read_text(encoding="utf-8"))
    from_jsonl = [json.loads(line) for line in jsonl_path.read_text(encoding="utf-8").splitlines()]
    assert from_json == expected
    assert from_jsonl == expected
    assert [list(row) for row in from_json] == [columns] * len(expected)
    assert first.rows == second.rows == len(expected)
    assert first.bytes == json_path.stat().st_size


@pytest.mark.parametrize(("mode", "array_field", "columns"), MODES)
def test_csv_round_trip(
    tmp_path: Path,
    records: list[ExportRecord],
    mode: Mode,
    array_field: str | None,
    columns: list[str],
) -> None:
    path = tmp_path / "out.csv"
    summary = write(records, "csv", path, mode=mode, array_field=array_field, include_failed=True)
    with path.open(encoding="utf-8", newline="") as file:
        header, *cells = list(csv.reader(file))
    expected = expected_rows(records, mode, include_failed=True)
    assert header == columns
    assert summary.rows == len(cells) == len(expected)
    for row, want in zip(cells, expected, strict=True):
        assert row == [as_csv(want[name]) for name in columns]


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
    assert rows["5"]["error"] == "'+corrupt: encrypted PDF"


@pytest.mark.parametrize(("mode", "array_field", "columns"), MODES)
def test_xlsx_round_trip(
    tmp_path: Path,
    records: list[ExportRecord],
    mode: Mode,
    array_field: str | None,
    columns: list[str],
) -> None:
    path = tmp_path / "out.xlsx"
    summary = write(records, "xlsx", path, mode=mode, array_field=array_field, include_failed=True)
    sheets = read_xlsx(path)
    title = "Documents" if mode == "normal" else "line_items"
    assert list(sheets) == [title]
    header, *cells = sheets[title]
    expected = expected_rows(records, mode, include_failed=True)
    assert header == columns
    assert summary.rows == len(cells) == len(expected)
    for row, want in zip(cells, expected, strict=True):
        wanted = [as_xlsx(want[name]) for name in columns]
        assert [_xlsx_value(c, w) for c, w in zip(row, wanted, strict=True)] == wanted
        for cell, value in zip(row, wanted, strict=True):
            assert type(_xlsx_value(cell, value)) is type(value) or isinstance(value, float)


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


@pytest.mark.parametrize(("mode", "array_field", "columns"), MODES)
def test_parquet_round_trip(
    tmp_path: Path,
    records: list[ExportRecord],
    mode: Mode,
    array_field: str | None,
    columns: list[str],
) -> None:
    path = tmp_path / "out.parquet"
    summary = write(
        records,
        "parquet",
        path,
        mode=mode,
        array_field=array_field,
        include_failed=True,
        chunk_size=2,
    )
    table = pq.read_table(path)
    expected = expected_rows(records, mode, include_failed=True)
    assert table.column_names == columns
    assert summary.rows == table.num_rows == len(expected)
    assert pq.ParquetFile(path).metadata.num_row_groups == -(-len(expected) // 2)
    for row, want in zip(table.to_pylist(), expected, strict=True):
        # Parquet has no "-5 as int" in a float column: compare numbers as floats.
        assert row == {
            k: float(v) if type(v) is int and k not in ("document_id", "batch_id") else v
            for k, v in want.items()
        }
    assert table.schema.field("invoice_date").type == pa.date32()
    assert table.schema.field("total").type == pa.float64()
    assert table.schema.field("paid").type == pa.bool_()
    assert pa.types.is_list(table.schema.field("taxes").type)


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


def test_include_confidence_adds_confidence_and_evidence(
    tmp_path: Path, records: list[ExportRecord]
) -> None:
    write(records, "jsonl", tmp_path / "c.jsonl", include_confidence=True)
    write(records, "csv", tmp_path / "c.csv", include_confidence=True)
    rows = [json.loads(x) for x in (tmp_path / "c.jsonl").read_text(encoding="utf-8").splitlines()]
    assert list(rows[0])[-2:] == ["confidence", "evidence"]
    assert rows[0]["confidence"] == 0.91
    assert rows[0]["evidence"] == {"total": {"raw": "1.234,50 €", "page": 1}}
    assert rows[2]["evidence"] is None
    with (tmp_path / "c.csv").open(encoding="utf-8", newline="") as file:
        first = next(csv.DictReader(file))
    assert json.loads(first["evidence"]) == rows[0]["evidence"]


def test_excel_continues_on_new_sheets(
    tmp_path: Path, records: list[ExportRecord], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(writers, "EXCEL_MAX_ROWS", 3)  # header + 2 rows per sheet
    path = tmp_path / "split.xlsx"
    summary = write(records * 3, "xlsx", path, include_failed=True)
    sheets = read_xlsx(path)
    assert list(sheets) == [
        "Documents",
        "Documents (2)",
        "Documents (3)",
        "Documents (4)",
        "Documents (5)",
        "Documents (6)",
        "Documents (7)",
        "Documents (8)",
    ]
    assert all(rows[0] == NORMAL_COLUMNS for rows in sheets.values())
    ids = [row[0] for rows in sheets.values() for row in rows[1:]]
    assert ids == [r.document_id for r in records] * 3
    assert summary.rows == 15


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


def generated_records(count: int) -> Iterator[ExportRecord]:
    for index in range(count):
        yield ExportRecord(
            document_id=index,
            file_name=f"doc-{index}.pdf",
            batch_id=1,
            status="completed",
            data={
                "invoice_number": f"INV-{index}",
                "invoice_date": "2024-01-02",
                "total": {"amount": index / 10, "currency": "EUR"},
                "line_items": [
                    {"description": f"item {n}", "amount": {"amount": n}} for n in range(index % 3)
                ],
            },
            schema=SCHEMA,
        )


@pytest.mark.parametrize("fmt", ["json", "jsonl", "csv", "xlsx", "parquet"])
def test_a_generator_of_20000_records_streams(tmp_path: Path, fmt: str) -> None:
    path = tmp_path / f"big.{fmt}"
    normal = write(generated_records(20_000), fmt, path, chunk_size=1000)
    assert normal.rows == 20_000
    assert normal.bytes == path.stat().st_size > 0
    multi = write(generated_records(20_000), fmt, path, mode="multi-row", array_field="line_items")
    # index % 3 items: 0 items still give one row.
    assert multi.rows == sum(max(1, i % 3) for i in range(20_000))
