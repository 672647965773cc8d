"""Terminal tables: short cells, the terminal's width kept, and a count of what is left out."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from batchnb.cli import main
from batchnb.cli.batches import RUN_TABLE_ROWS
from batchnb.cli.tables import cell_text, render
from tests.conftest import SAMPLES


def test_cells_are_short_single_lines() -> None:
    items = [{"description": "Recycled copy paper, A4, box of 5", "amount": 462.0}] * 4
    assert cell_text(items) == "4 items"
    assert cell_text(np.array([{"a": 1}])) == "1 item"
    assert cell_text([]) == "0 items"
    assert cell_text(datetime(2024, 3, 15)) == "2024-03-15"
    assert cell_text(pd.Timestamp("2024-03-15")) == "2024-03-15"
    moment = datetime(2026, 12, 5, 2, 10, 55, 123456, tzinfo=UTC)
    assert cell_text(moment) == "2026-12-05 02:10:55"
    assert cell_text(date(2024, 1, 2)) == "2024-01-02"
    assert cell_text(None) == "" and cell_text(float("nan")) == ""
    assert cell_text(pd.NaT) == "" and cell_text(pd.NA) == ""
    assert cell_text("line one\nline two") == "line one line two"
    long = cell_text("x" * 300)
    assert len(long) == 40 and long.endswith("…")
    assert cell_text(1234.5) == "1234.5"


def test_a_wide_table_fits_the_width_and_names_the_columns_left_out() -> None:
    frame = pd.DataFrame(
        {
            "file_name": ["a-very-long-file-name-of-an-invoice-from-march.pdf"],
            "status": ["completed"],
            "invoice_number": ["BOS-2024-0117"],
            "supplier_address": ["12 Long Road, Springfield, Somewhere Far Away 12345"],
            "notes": ["n" * 80],
            "total": [1234.5],
        }
    )
    text = render(frame, width=60)
    lines = text.splitlines()
    assert all(len(line) <= 60 for line in lines[:-1])
    assert lines[0].split() == ["file_name", "status", "invoice_number"]
    assert lines[-1] == (
        "(3 more columns: supplier_address, notes, total; use --json for every value)"
    )
    wide = render(frame, width=400)
    assert "more columns" not in wide
    assert wide.splitlines()[1].endswith("1234.5")  # numbers right-aligned, last column


def test_long_tables_are_cut_with_a_count() -> None:
    frame = pd.DataFrame({"n": range(45)})
    text = render(frame, max_rows=30, see_all="-o FILE writes them all")
    lines = text.splitlines()
    assert len(lines) == 1 + 30 + 1
    assert lines[-1] == "(15 more rows; -o FILE writes them all)"
    assert render(frame, max_rows=44).splitlines()[-1] == "(1 more row; use --json for every value)"
    assert "more rows" not in render(frame)


def test_run_prints_line_items_as_a_count_within_the_terminal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BATCHNB_HOME", str(tmp_path / "home"))
    folder = tmp_path / "many"
    folder.mkdir()
    invoice = SAMPLES / "bluefin-office-supplies-invoice.pdf"
    for number in range(RUN_TABLE_ROWS + 3):  # distinct bytes: one document each
        copy = invoice.read_bytes() + f"\n% copy {number}\n".encode()
        (folder / f"invoice-{number:02}.pdf").write_bytes(copy)
    result = CliRunner(env={"COLUMNS": "100"}).invoke(
        main,
        ["run", str(folder), "-p", "invoice number, date, total, line items"],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert all(len(line) <= 100 for line in lines[:-1])
    assert "4 items" in lines[1] and "{" not in result.stdout
    assert "2024-03-15" in lines[1] and "00:00:00" not in result.stdout
    assert len(lines) == 1 + RUN_TABLE_ROWS + 1
    assert lines[-1].endswith("; 3 more rows; -o FILE writes them all)")
