"""`batchnb run` tells a script and a person what happened: exit codes, a stop that leaves the
batch queued with what to run next, and results printed or written where asked."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner, Result
from sqlalchemy import create_engine, text

from batchnb.cli import main
from batchnb.cli.batches import EXIT_INCOMPLETE, EXIT_INTERRUPTED, EXIT_NOT_FINISHED
from tests.conftest import SAMPLES

PROMPT = "invoice number, date, total"
PLUGINS = Path(__file__).resolve().parents[1] / "plugins"
BROKEN = b"%PDF-1.7\n1 0 obj << /Type /Catalog >> garbage without xref"


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "home"
    monkeypatch.setenv("BATCHNB_HOME", str(path))
    monkeypatch.setenv("BATCHNB_HEARTBEAT_SECONDS", "0.5")
    return path


def invoke(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def _statuses(home: Path) -> dict[str, int]:
    engine = create_engine(f"sqlite:///{home / 'batchnb.db'}")
    with engine.connect() as connection:
        rows = connection.execute(
            text("SELECT status, count(*) FROM documents GROUP BY status")
        ).all()
    engine.dispose()
    return {status: count for status, count in rows}


def test_exit_code_is_zero_only_when_every_document_completed(home: Path, tmp_path: Path) -> None:
    good = invoke("run", str(SAMPLES / "maplewood-print-invoice.txt"), "--prompt", PROMPT)
    assert good.exit_code == 0
    broken = tmp_path / "broken.pdf"
    broken.write_bytes(BROKEN)
    mixed = invoke(
        "run", str(broken), str(SAMPLES / "ridgeback-bicycle-invoice.html"), "--prompt", PROMPT
    )
    assert mixed.exit_code == EXIT_INCOMPLETE
    assert "1 completed, 1 failed" in mixed.stderr
    assert "Exit status" in invoke("run", "--help").stdout


def test_a_timeout_leaves_the_batch_queued_and_says_what_to_run(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(str(PLUGINS))
    monkeypatch.setenv("BATCHNB_PLUGINS", "slow_extractor")
    monkeypatch.setenv("SLOW_EXTRACTOR_SECONDS", "0.6")
    result = invoke(
        "run", str(SAMPLES), "--prompt", PROMPT, "--extractor", "slow", "--timeout", "0.3"
    )
    assert result.exit_code == EXIT_NOT_FINISHED
    assert "Traceback" not in result.stderr
    assert "stopped waiting (--timeout): batch 1 has" in result.stderr
    assert "start `batchnb worker` to finish it" in result.stderr
    assert "`batchnb cancel 1`" in result.stderr
    statuses = _statuses(home)
    assert statuses.get("pending", 0) > 0, statuses  # still queued, for a worker
    assert "failed" not in statuses  # stopping failed nothing


@pytest.mark.slow
def test_ctrl_c_stops_gracefully_and_fails_nothing(home: Path) -> None:
    env = {
        **os.environ,
        "BATCHNB_PLUGINS": "slow_extractor",
        "SLOW_EXTRACTOR_SECONDS": "0.5",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(PLUGINS), os.environ.get("PYTHONPATH")])),
    }
    run = subprocess.Popen(
        [sys.executable, "-m", "batchnb", "run", str(SAMPLES), "-p", PROMPT, "--extractor", "slow"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # the test signals this command's group, as a terminal does
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and _statuses_or_empty(home).get("processing", 0) == 0:
        time.sleep(0.05)
    os.killpg(run.pid, signal.SIGINT)
    _, stderr = run.communicate(timeout=120)
    assert run.returncode == EXIT_INTERRUPTED, stderr
    assert "interrupted: batch 1 has" in stderr and "Traceback" not in stderr
    assert "failed" not in _statuses(home)


def _statuses_or_empty(home: Path) -> dict[str, int]:
    try:
        return _statuses(home)
    except Exception:  # the command has not created its database yet
        return {}


def test_tesseract_runs_out_of_reach_of_the_terminals_ctrl_c() -> None:
    pytest.importorskip("pytesseract")
    from batchnb.documents.ocr import TesseractEngine

    try:
        TesseractEngine()
    except Exception as exc:
        pytest.skip(f"tesseract is not usable here: {exc}")
    import pytesseract

    assert pytesseract.pytesseract.subprocess_args()["start_new_session"] is True


def test_dash_prints_the_results_to_standard_output(home: Path) -> None:
    document = str(SAMPLES / "maplewood-print-invoice.txt")
    result = invoke("run", document, "--prompt", PROMPT, "-o", "-", "--format", "csv")
    assert result.exit_code == 0, result.stderr
    assert not Path("-").exists()
    printed = pd.read_csv(io.StringIO(result.stdout))  # the CSV and nothing else
    assert printed["invoice_number"].tolist() == ["TXT-0042"]
    exported = invoke("export", "1", "--format", "json", "-o", "-")
    assert exported.exit_code == 0
    assert json.loads(exported.stdout)[0]["invoice_number"] == "TXT-0042"
    no_format = invoke("export", "1", "-o", "-")
    assert no_format.exit_code == 2 and "--format" in no_format.stderr


def test_a_missing_output_folder_is_refused_before_any_work(home: Path, tmp_path: Path) -> None:
    target = tmp_path / "no-such-folder" / "out.csv"
    document = str(SAMPLES / "maplewood-print-invoice.txt")
    result = invoke("run", document, "--prompt", PROMPT, "-o", str(target))
    assert result.exit_code == 2
    assert "does not exist" in result.stderr
    assert not target.parent.exists()
    assert not (home / "batchnb.db").exists() or _statuses(home) == {}
