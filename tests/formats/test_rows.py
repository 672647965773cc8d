"""Row helpers of exports that the file read-backs do not show directly."""

from __future__ import annotations

import pytest

from batchnb.formats import ExportError, ExportRecord, build_layout, iter_rows
from batchnb.formats.rows import chunked
from tests.formats.expected import SCHEMA


def test_chunks_are_streamed_in_turn() -> None:
    assert [list(chunk) for chunk in chunked(range(7), 3)] == [[0, 1, 2], [3, 4, 5], [6]]
    assert list(chunked([], 3)) == []
    with pytest.raises(ExportError, match="chunk_size"):
        list(chunked(range(3), 0))


def test_a_chunk_left_unfinished_leaves_its_rows_to_the_next() -> None:
    chunks = chunked(range(6), 4)
    first = next(chunks)
    assert [next(first), next(first)] == [0, 1]
    assert list(next(chunks)) == [2, 3, 4, 5]
    assert list(chunks) == []


def test_rows_keep_the_column_order_whatever_the_order_of_the_values() -> None:
    layout = build_layout(SCHEMA, "multi-row", array_field="line_items", include_confidence=True)
    data = {"taxes": [], "line_items": [{"delivered": "2024-01-01", "description": "x"}], "paid": 1}
    record = ExportRecord(1, "a.pdf", 1, "completed", data=data, confidence=0.5)
    (row,) = iter_rows([record], layout)
    assert list(row) == layout.names
    assert row["line_items.description"] == "x" and row["paid"] == 1
    assert row["confidence"] == 0.5 and row["evidence"] is None
