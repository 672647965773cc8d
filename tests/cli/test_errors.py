"""Errors on the command line name the command's options, not the Python parameters."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from batchnb.cli import main
from tests.conftest import SAMPLES

TWO_ARRAYS = {
    "fields": [
        {"name": "invoice_number", "type": "string"},
        {"name": "items", "type": "array", "fields": [{"name": "description", "type": "string"}]},
        {"name": "taxes", "type": "array", "fields": [{"name": "rate", "type": "number"}]},
    ]
}


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("BATCHNB_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def invoke(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_export_errors_name_the_export_options(tmp_path: Path) -> None:
    schema = tmp_path / "schema.json"
    schema.write_text(json.dumps(TWO_ARRAYS), encoding="utf-8")
    document = str(SAMPLES / "maplewood-print-invoice.txt")
    assert invoke("run", document, "--schema", str(schema)).exit_code == 0
    result = invoke("export", "1", "--mode", "multi-row", "-o", str(tmp_path / "x.csv"))
    assert result.exit_code == 1
    assert "--array-field (items, taxes)" in result.stderr
    assert "array_field=" not in result.stderr
    sheets = invoke("export", "1", "--mode", "sheets", "-o", str(tmp_path / "x.csv"))
    assert "--mode multi-row with --array-field" in sheets.stderr
    assert "mode=" not in sheets.stderr


def test_submit_errors_name_the_submit_options(tmp_path: Path) -> None:
    schema = tmp_path / "schema.json"
    schema.write_text(json.dumps(TWO_ARRAYS), encoding="utf-8")
    result = invoke("submit", str(SAMPLES), "--strategy", "auto", "--schema", str(schema))
    assert result.exit_code == 1
    assert "--strategy auto picks a prompt per document type, so it takes no --schema" in (
        result.stderr
    )
    assert "strategy='" not in result.stderr and "schema=" not in result.stderr
