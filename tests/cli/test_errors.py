"""Errors on the command line name the command's options, not the Python parameters."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from batchnb.cli import main
from batchnb.config import Settings
from batchnb.errors import ConfigurationError
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


def test_an_extractor_that_cannot_work_is_refused_at_submit(home: Path) -> None:
    # The default base URL is OpenAI's, and no key is set: every document would fail.
    result = invoke("run", str(SAMPLES), "--prompt", "total", "--extractor", "openai")
    assert result.exit_code == 1
    assert "needs an API key for api.openai.com" in result.stderr
    assert "BATCHNB_OPENAI_API_KEY" in result.stderr
    assert not (home / "files").exists() or not any((home / "files").rglob("*.*"))


def test_the_check_knows_a_local_server_needs_no_key(settings: Settings) -> None:
    from batchnb.extract import ExtractorPool

    local = dataclasses.replace(settings, openai_base_url="http://127.0.0.1:9/v1")
    ExtractorPool(local).check("openai")  # no key, no error: local servers take none
    with pytest.raises(ConfigurationError, match="needs an API key"):
        ExtractorPool(settings).check("openai")
    no_model = dataclasses.replace(local, openai_model="")
    with pytest.raises(ConfigurationError, match="BATCHNB_OPENAI_MODEL"):
        ExtractorPool(no_model).check("openai")
