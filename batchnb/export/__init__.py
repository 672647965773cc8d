"""Exports: records of extracted documents streamed to JSON, JSON Lines, CSV, Excel, Parquet.

This layer does not touch the database: it takes :class:`ExportRecord` objects from any iterable
(the export service feeds it rows from a query) and writes them with constant memory.
"""

from batchnb.errors import ExportError
from batchnb.export.rows import ExportRecord, Mode, RowLayout, build_layout, iter_rows
from batchnb.export.writers import (
    EXCEL_MAX_ROWS,
    FORMATS,
    WRITERS,
    ExportSummary,
    Format,
    Writer,
    write,
)

__all__ = [
    "EXCEL_MAX_ROWS",
    "FORMATS",
    "WRITERS",
    "ExportError",
    "ExportRecord",
    "ExportSummary",
    "Format",
    "Mode",
    "RowLayout",
    "Writer",
    "build_layout",
    "iter_rows",
    "write",
]
