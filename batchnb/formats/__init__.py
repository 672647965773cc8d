"""Export file formats: records of extracted documents streamed to JSON, JSON Lines, CSV, Excel,
Parquet.

This layer does not touch the database: it takes :class:`ExportRecord` objects from any iterable
(the export service feeds it rows from a query) and writes them with constant memory.

Modes (:data:`MODES`): ``normal`` gives one row per document, ``multi-row`` one row per item of
an array field, and ``sheets`` (Excel only) a ``Documents`` sheet plus one sheet per array field,
linked by ``document_id``.
"""

from batchnb.errors import ExportError
from batchnb.formats.rows import MODES, ExportRecord, Mode, RowLayout, build_layout, iter_rows
from batchnb.formats.writers import (
    EXCEL_MAX_ROWS,
    FORMATS,
    WRITERS,
    ExportSummary,
    Format,
    Writer,
    write,
    writer_for,
)

__all__ = [
    "EXCEL_MAX_ROWS",
    "FORMATS",
    "MODES",
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
    "writer_for",
]
