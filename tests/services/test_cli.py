"""The `batchnb` command, through click's runner (stdout and stderr kept apart)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner, Result

from batchnb.cli import main
from batchnb.db.migrate import head_revision

from .conftest import SAMPLES

PROMPT = "invoice number, date, total"


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "cli-home"
    monkeypatch.setenv("BATCHNB_HOME", str(path))
    monkeypatch.setenv("BATCHNB_HEARTBEAT_SECONDS", "0.5")
    return path


def invoke(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_submit_prints_only_the_batch_id(home: Path) -> None:
    result = invoke("submit", str(SAMPLES), "--prompt", PROMPT)
    assert result.exit_code == 0
    assert result.stdout.strip().isdigit()
    assert "queued 7 documents" in result.stderr


def test_submit_reports_refused_files_on_stderr(home: Path, tmp_path: Path) -> None:
    bad = tmp_path / "empty.pdf"
    bad.write_bytes(b"")
    result = invoke(
        "submit", str(SAMPLES / "maplewood-print-invoice.txt"), str(bad), "--prompt", PROMPT
    )
    assert result.exit_code == 0
    assert result.stdout.strip().isdigit()
    assert "refused empty.pdf: empty file" in result.stderr


def test_status_json_has_the_documented_keys(home: Path) -> None:
    batch_id = invoke("submit", str(SAMPLES), "--prompt", PROMPT).stdout.strip()
    result = invoke("status", batch_id, "--json")
    payload = json.loads(result.stdout)
    for key in ("pending", "processing", "completed", "failed", "cancelled"):
        assert key in payload
    assert payload["pending"] == 7 and payload["total"] == 7


def test_health_is_unhealthy_with_work_and_no_consumer(home: Path) -> None:
    assert invoke("health").exit_code == 0
    invoke("submit", str(SAMPLES), "--prompt", PROMPT)
    result = invoke("health", "--json")
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["healthy"] is False
    assert report["queue_depth"] == {"batch_processing": 7}
    assert "no consumer" in report["problems"][0]
    text = invoke("health").stdout
    assert "queue depth:     7 (batch_processing 7)" in text
    assert "{" not in text and "'" not in text  # no Python reprs for a person to decode


@pytest.mark.parametrize("suffix", [".csv", ".json", ".xlsx"])
def test_run_processes_and_writes_results(home: Path, tmp_path: Path, suffix: str) -> None:
    output = tmp_path / f"results{suffix}"
    result = invoke("run", str(SAMPLES), "--prompt", PROMPT, "--output", str(output))
    assert result.exit_code == 0, result.stderr
    assert "bluefin-office-supplies-invoice.pdf" in result.stdout
    assert "BOS-2024-0117" in result.stdout
    assert "2024-03-15" in result.stdout and "00:00:00" not in result.stdout  # dates as dates
    readers = {".csv": pd.read_csv, ".json": pd.read_json, ".xlsx": pd.read_excel}
    frame = readers[suffix](output)
    assert len(frame) == 7
    assert set(frame["status"]) == {"completed"}
    assert "7 completed, 0 failed" in result.stderr
    assert invoke("health").exit_code == 0


def test_run_rejects_unknown_output_format(home: Path) -> None:
    result = CliRunner().invoke(main, ["run", str(SAMPLES), "-p", PROMPT, "-o", "out.docx"])
    assert result.exit_code == 2
    assert "name the file after its format: .csv, .json" in result.stderr


def test_domain_errors_are_one_clean_line(home: Path) -> None:
    result = CliRunner().invoke(main, ["submit", "/nonexistent/*.pdf", "--prompt", PROMPT])
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: nothing to process")
    assert "Traceback" not in result.stderr


def test_db_commands(home: Path) -> None:
    assert "database at revision" in invoke("db", "upgrade").stdout
    assert "revision None" in invoke("db", "downgrade", "base").stdout
    current = invoke("db", "current").stdout
    assert "revision None" in current
    assert f"revision {head_revision()}" in invoke("db", "upgrade").stdout


def test_schema_file_rules_file_and_auto_strategy(home: Path, tmp_path: Path) -> None:
    schema = tmp_path / "schema.json"
    schema.write_text(
        json.dumps({"fields": [{"name": "invoice_number"}, {"name": "total", "type": "money"}]})
    )
    rules = tmp_path / "rules.json"
    rules.write_text(json.dumps([{"required": ["invoice_number"]}]))
    result = invoke(
        "run",
        str(SAMPLES / "maplewood-print-invoice.txt"),
        "--schema",
        str(schema),
        "--rules",
        str(rules),
    )
    assert result.exit_code == 0, result.stderr
    assert "TXT-0042" in result.stdout
    auto = invoke("run", str(SAMPLES), "--strategy", "auto")
    assert auto.exit_code == 0, auto.stderr
    assert "document_type" in auto.stdout and "invoice" in auto.stdout


def test_a_prompt_or_a_schema_is_needed(home: Path) -> None:
    result = CliRunner().invoke(main, ["submit", str(SAMPLES)])
    assert result.exit_code == 1
    assert "prompt" in result.stderr and "schema" in result.stderr


def _parsers(home: Path) -> list[str]:
    from sqlalchemy import create_engine, text

    engine = create_engine(f"sqlite:///{home / 'batchnb.db'}")
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT parser FROM extraction_jobs ORDER BY id")).all()
    engine.dispose()
    return [row[0] for row in rows]


def test_no_cache_extracts_again(home: Path) -> None:
    document = str(SAMPLES / "maplewood-print-invoice.txt")
    assert invoke("run", document, "--prompt", PROMPT).exit_code == 0
    assert invoke("run", document, "--prompt", PROMPT).exit_code == 0
    assert invoke("run", document, "--prompt", PROMPT, "--no-cache").exit_code == 0
    first, cached, fresh = _parsers(home)
    assert not first.startswith("cached:")
    assert cached.startswith("cached:")
    assert fresh == first


def test_status_lists_failures_with_their_kind_and_traceback(home: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken.pdf"
    broken.write_bytes(b"%PDF-1.7\n1 0 obj << /Type /Catalog >> garbage without xref")
    assert invoke("run", str(broken), "--prompt", PROMPT).exit_code == 3  # a document failed
    listed = invoke("status", "--failures")
    assert "failed broken.pdf [corrupt]: not a readable PDF" in listed.stdout
    payload = json.loads(invoke("status", "--failures", "--traceback", "--json").stdout)
    (failure,) = payload["failures"]
    assert failure["error_kind"] == "corrupt"
    assert "DocumentError" in failure["traceback"]
