"""Assertions shared by the parser tests."""

from __future__ import annotations

from batchnb.documents.parsed import Page, Table


def assert_table_grounded(page: Page, table: Table) -> None:
    """The table's text sits at its offsets, and its cells appear there in order."""
    span = page.text[table.start : table.end]
    assert span == table.text
    position = 0
    for cells in ((table.header,) if table.header else ()) + table.rows:
        for cell in cells:
            found = span.find(cell, position)
            assert found >= 0, cell
            position = found + len(cell)
