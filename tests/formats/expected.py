"""Test records of exports and what each format must hold for them, written out independently.

Nothing here calls :mod:`batchnb.formats`: the expected cells are derived from the input records
by small functions of their own, so a mistake in the code under test cannot hide in its own
expectation.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openpyxl
import pyarrow.parquet as pq

from batchnb.formats import ExportRecord

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

ARRAYS = ("line_items", "taxes")
DOCUMENT_COLUMNS = ["document_id", "file_name", "batch_id", "status", "error"]
CONFIDENCE_COLUMNS = ["confidence", "evidence"]
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
ITEM_COLUMNS: dict[str, list[str]] = {
    "line_items": ["description", "amount", "amount_currency", "delivered"],
    "taxes": ["name", "rate"],
}
LINE_ITEM_COLUMNS = [f"line_items.{name}" for name in ITEM_COLUMNS["line_items"]]
MULTI_ROW_COLUMNS = [
    *NORMAL_COLUMNS[: NORMAL_COLUMNS.index("line_items")],
    *LINE_ITEM_COLUMNS,
    "notes",
    "taxes",
]
SHEETS_COLUMNS = [name for name in NORMAL_COLUMNS if name not in ARRAYS]

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def make_records() -> list[ExportRecord]:
    """Unicode (CJK, emoji past the BMP, RTL), formula-like text at every prefix, empty and
    missing arrays, missing fields and sub-fields, integers in number fields, a failed document
    (last)."""
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
            document_id=6,
            file_name="عقد_שלום_𠀋.pdf",
            batch_id=9,
            status="completed",
            data={
                "invoice_number": "\rCR-7",
                "invoice_date": "2024-02-29",
                "total": {"amount": 0, "currency": "ILS"},
                "paid": True,
                "quantity": 2.5,
                "line_items": [
                    {
                        "description": "+1 כוס קפה 👩\u200d👩\u200d👧",
                        "amount": {"amount": 12, "currency": "ILS"},
                        "delivered": "2024-02-28",
                    },
                    {"description": "@mention مرحبا", "amount": {"currency": "EUR"}},
                    {},
                ],
                "notes": "\u200fمرحبا بالعالم — שלום 🎉",  # noqa: RUF001 (RTL on purpose)
                "taxes": [{"name": "=VAT()", "rate": 0}, {"name": "-Ermäßigt"}],
            },
            schema=SCHEMA,
            confidence=0.0,
            evidence={"notes": {"raw": "=مرحبا", "page": 2}},
        ),
        ExportRecord(
            document_id=5,
            file_name="broken.pdf",
            batch_id=8,
            status="failed",
            error="+corrupt: encrypted PDF",
        ),
    ]


def generated_records(count: int) -> Iterator[ExportRecord]:
    """``count`` plain records, lazily: ``index % 3`` line items each and one tax."""
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
                "taxes": [{"name": "VAT", "rate": 0.19}],
            },
            schema=SCHEMA,
        )


# --- expected rows with logical values -----------------------------------------------------------


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


ITEM_FLATTENERS = {"line_items": _line_item, "taxes": _tax}


def expected_rows(
    records: list[ExportRecord],
    mode: str,
    include_failed: bool = False,
    include_confidence: bool = False,
) -> list[dict[str, Any]]:
    """Rows with logical values: dates as dates, arrays as lists of flattened item dicts.

    ``sheets`` gives the rows of its ``Documents`` sheet (see :func:`expected_item_rows`).
    """
    rows = []
    for record in records:
        if record.status == "failed" and not include_failed:
            continue
        data = record.data
        total, currency = _money(data.get("total"))
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
            "line_items": _items("line_items", data.get("line_items")),
            "notes": data.get("notes"),
            "taxes": _items("taxes", data.get("taxes")),
        }
        if include_confidence:
            row["confidence"] = record.confidence
            row["evidence"] = dict(record.evidence) or None
        if mode == "normal":
            rows.append(row)
        elif mode == "sheets":
            rows.append({k: v for k, v in row.items() if k not in ARRAYS})
        else:
            head = {k: v for k, v in row.items() if k != "line_items"}
            at = list(head).index("notes")
            for item in row["line_items"] or [dict.fromkeys(ITEM_COLUMNS["line_items"])]:
                flat = {f"line_items.{k}": v for k, v in item.items()}
                pairs = list(head.items())
                rows.append(dict(pairs[:at] + list(flat.items()) + pairs[at:]))
    return rows


def _items(array: str, value: Any) -> list[dict[str, Any]] | None:
    return None if value is None else [ITEM_FLATTENERS[array](item) for item in value]


def expected_item_rows(
    records: list[ExportRecord], array: str, include_failed: bool = False
) -> list[dict[str, Any]]:
    """The rows of an array's sheet in sheets mode: ``document_id`` and one item each."""
    rows = []
    for row in expected_rows(records, "normal", include_failed):
        for item in row[array] or []:
            rows.append({"document_id": row["document_id"], **item})
    return rows


def expected_tables(
    records: list[ExportRecord],
    mode: str,
    include_failed: bool = False,
    include_confidence: bool = False,
) -> dict[str, list[dict[str, Any]]]:
    """Logical rows by Excel sheet title: what a workbook of ``mode`` holds."""
    rows = expected_rows(records, mode, include_failed, include_confidence)
    if mode == "normal":
        return {"Documents": rows}
    if mode == "multi-row":
        return {"line_items": rows}
    tables = {"Documents": rows}
    for array in ARRAYS:
        tables[array] = expected_item_rows(records, array, include_failed)
    return tables


# --- what each format holds for a logical value ---------------------------------------------------


def neutral(text: str) -> str:
    return "'" + text if text.startswith(FORMULA_PREFIXES) else text


def _iso(value: Any) -> Any:
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, list):
        return [_iso(v) for v in value]
    if isinstance(value, dict):
        return {k: _iso(v) for k, v in value.items()}
    return value


def _json_text(value: Any) -> str:
    return json.dumps(_iso(value), ensure_ascii=False)


def as_json(value: Any, column: str) -> Any:
    """JSON and JSON Lines: text verbatim, dates ISO, arrays and evidence nested."""
    return _iso(value)


def as_csv(value: Any, column: str) -> str:
    """CSV: every cell text; formula-like text neutralised, arrays and evidence JSON text."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, list | dict):
        return neutral(_json_text(value))
    return neutral(value)


def as_xlsx(value: Any, column: str) -> Any:
    """Excel read back by openpyxl: dates as datetimes at midnight, whole floats as ints."""
    if isinstance(value, list | dict):
        return neutral(_json_text(value))
    if isinstance(value, str):
        return neutral(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)  # the cell holds "-5"; openpyxl reads it back as an int
    if isinstance(value, dt.date):
        return dt.datetime.combine(value, dt.time())
    return value


def as_parquet(value: Any, column: str) -> Any:
    """Parquet: typed columns, so numbers are floats (ids stay ints), evidence JSON text."""
    if column in ("document_id", "batch_id"):
        return value
    if column == "evidence":
        return None if value is None else _json_text(value)
    if isinstance(value, list):
        return [{k: as_parquet(v, k) for k, v in item.items()} for item in value]
    if isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


ENCODERS = {
    "json": as_json,
    "jsonl": as_json,
    "csv": as_csv,
    "xlsx": as_xlsx,
    "parquet": as_parquet,
}


def encode_table(fmt: str, rows: list[dict[str, Any]]) -> list[list[Any]]:
    """Cells of ``rows`` as ``fmt`` holds them (no header)."""
    encode = ENCODERS[fmt]
    return [[encode(value, column) for column, value in row.items()] for row in rows]


def typed(value: Any) -> Any:
    """``value`` with the type of every part spelled out, so ``1 == 1.0 == True`` cannot pass."""
    if isinstance(value, list):
        return ["list", [typed(v) for v in value]]
    if isinstance(value, dict):
        return ["dict", [(k, typed(v)) for k, v in value.items()]]
    return [type(value).__name__, value]


# --- reading files back ---------------------------------------------------------------------------


def read_table(fmt: str, path: Path) -> tuple[list[str], list[list[Any]]]:
    """Header and rows of a written file, read back with json / csv / pyarrow."""
    if fmt in ("json", "jsonl"):
        text = path.read_text(encoding="utf-8")
        objects = json.loads(text) if fmt == "json" else [json.loads(x) for x in text.splitlines()]
        header = list(objects[0]) if objects else []
        assert all(list(obj) == header for obj in objects)
        return header, [list(obj.values()) for obj in objects]
    if fmt == "csv":
        with path.open(encoding="utf-8", newline="") as file:
            header, *rows = list(csv.reader(file))
        return header, rows
    if fmt == "parquet":
        table = pq.read_table(path)
        return table.column_names, [list(row.values()) for row in table.to_pylist()]
    raise AssertionError(f"no table reader for {fmt}; Excel has read_xlsx")


def read_xlsx(path: Path) -> dict[str, list[list[Any]]]:
    """Every sheet's rows, header first, read back with openpyxl."""
    workbook = openpyxl.load_workbook(path, read_only=True)
    sheets = {ws.title: [list(row) for row in ws.iter_rows(values_only=True)] for ws in workbook}
    workbook.close()
    # Empty cells are not stored: a row ending in empty cells reads back shorter than its header.
    for rows in sheets.values():
        for row in rows[1:]:
            row.extend([None] * (len(rows[0]) - len(row)))
    return sheets
