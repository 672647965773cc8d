"""Results as DataFrames: the rows an export would write, typed for pandas.

There is one way values become columns, :mod:`batchnb.formats.rows` (money as an amount and a
currency, dates as dates, arrays whole or one row per item); :func:`export_dataframe` and a
batch's :func:`batch_results` both read it, so a notebook, ``batchnb run`` and an export file
show the same columns with the same types.
"""

from __future__ import annotations

from typing import Any, get_args

import pandas as pd
from sqlalchemy import select

from batchnb.db.models import ExtractedData, ExtractionBatch
from batchnb.errors import ExportError, NotFoundError
from batchnb.formats import Mode, build_layout, iter_rows
from batchnb.formats.rows import Column
from batchnb.jobs.documents import DOCUMENT_INFO_KEY
from batchnb.jobs.export_records import (
    Selection,
    combined_schema,
    iter_export_records,
    selected_batch_ids,
)
from batchnb.services.access import authorize
from batchnb.services.exports import SelectionInput, to_selection, with_originals
from batchnb.services.review import review_marks
from batchnb.services.workspace import Workspace, acting

REVIEW_COLUMNS = ("reviewed", "corrected")
"""Columns :func:`batch_results` puts before ``confidence``: the review marks a grid shows."""
TYPE_COLUMNS = ("document_type", "type_confidence")
"""Columns a batch of the "auto" strategy adds after ``error``: what each document was
recognised as, and how sure the classifier was."""


def export_dataframe(
    selection: SelectionInput,
    mode: Mode = "normal",
    *,
    array_field: str | None = None,
    include_failed: bool = False,
    include_confidence: bool = False,
    originals: bool = False,
    workspace: Workspace | None = None,
    actor: str | None = None,
) -> pd.DataFrame:
    """The rows an export would write, as a DataFrame with typed columns.

    Columns and modes are those of :func:`batchnb.export` (``sheets`` is for Excel files
    only). Date columns become ``datetime64`` when every value is a date; arrays stay lists
    of dicts in normal mode. Corrected values replace the extracted ones unless
    ``originals``.
    """
    if mode not in get_args(Mode) or mode == "sheets":
        raise ExportError(f"to_dataframe takes mode 'normal' or 'multi-row', not {mode!r}")
    workspace, actor = acting(workspace, actor)
    return _frame(
        workspace,
        actor,
        with_originals(to_selection(selection), originals),
        mode,
        array_field=array_field,
        include_failed=include_failed,
        include_confidence=include_confidence,
    )


def batch_results(
    batch_id: int,
    workspace: Workspace | None = None,
    actor: str | None = None,
    *,
    originals: bool = False,
) -> pd.DataFrame:
    """Every document of a batch, whatever its status, as :func:`export_dataframe` types it.

    An "auto" batch adds :data:`TYPE_COLUMNS` after ``error``; the document's mean
    ``confidence`` comes last (its evidence is in ``to_dataframe(include_confidence=True)``),
    right after :data:`REVIEW_COLUMNS`: ``reviewed`` (whether someone marked the document as
    checked) and ``corrected`` (the paths of its corrected fields, e.g. ``["total",
    "line_items.0.amount"]``). Values are corrected unless ``originals``.
    """
    workspace, actor = acting(workspace, actor)
    with workspace.db.connect() as connection:
        strategy = connection.scalar(
            select(ExtractionBatch.strategy).where(ExtractionBatch.id == batch_id)
        )
    if strategy is None:
        raise NotFoundError(f"batch {batch_id} does not exist")
    frame = _frame(
        workspace,
        actor,
        Selection(batch_ids=(batch_id,), originals=originals),
        "normal",
        include_failed=True,
        include_confidence=True,
        with_evidence=False,
        include_open=True,
    ).drop(columns=["evidence"])  # the confidence is enough here, and evidence costs a read
    if strategy == "auto":
        found = _document_types(workspace, batch_id)
        at = list(frame.columns).index("error") + 1
        for offset, column in enumerate(TYPE_COLUMNS):
            values = [found.get(document_id, {}).get(column) for document_id in frame.document_id]
            frame.insert(at + offset, column, values)
    corrected, reviewed = review_marks(workspace, batch_id)
    at = list(frame.columns).index("confidence")
    frame.insert(at, "reviewed", [document_id in reviewed for document_id in frame.document_id])
    frame.insert(
        at + 1, "corrected", [corrected.get(document_id, []) for document_id in frame.document_id]
    )
    return frame


def _frame(
    workspace: Workspace,
    actor: str,
    selection: Selection,
    mode: Mode,
    *,
    array_field: str | None = None,
    include_failed: bool = False,
    include_confidence: bool = False,
    with_evidence: bool | None = None,
    include_open: bool = False,
) -> pd.DataFrame:
    """The rows of ``selection`` for ``mode``, typed; evidence is read with the confidence
    unless ``with_evidence`` says otherwise."""
    with workspace.db.connect() as connection:
        batch_ids = selected_batch_ids(connection, selection)
    authorize(workspace, actor, "export", batch_ids)
    with workspace.db.connect() as connection:
        schema = combined_schema(connection, selection)
    layout = build_layout(schema, mode, array_field, include_confidence)
    records = iter_export_records(
        workspace.db,
        selection,
        include_failed,
        include_open=include_open,
        with_evidence=include_confidence if with_evidence is None else with_evidence,
    )
    frame = pd.DataFrame.from_records(list(iter_rows(records, layout)), columns=layout.names)
    for column in layout.columns:
        _type_column(frame, column)
    return frame


def _type_column(frame: pd.DataFrame, column: Column) -> None:
    values = frame[column.name].dropna()
    if column.kind == "date" and len(values) and all(hasattr(v, "isoformat") for v in values):
        frame[column.name] = pd.to_datetime(frame[column.name])
    elif column.kind == "integer" and not frame[column.name].isna().any():
        frame[column.name] = frame[column.name].astype("int64")


def _document_types(workspace: Workspace, batch_id: int) -> dict[int, dict[str, Any]]:
    """What each document of an "auto" batch was classified as (its newest result's)."""
    info = ExtractedData.evidence[DOCUMENT_INFO_KEY]
    with workspace.db.connect() as connection:
        rows = connection.execute(
            select(ExtractedData.document_id, info)
            .where(ExtractedData.batch_id == batch_id)
            .order_by(ExtractedData.id)
        ).all()
    found: dict[int, dict[str, Any]] = {}
    for document_id, classified in rows:
        if isinstance(classified, dict):
            found[document_id] = {
                "document_type": classified.get("type"),
                "type_confidence": classified.get("confidence"),
            }
    return found
