"""Every notebook of ``notebooks/`` runs top to bottom: the interactive ones under nbval (lax:
their outputs are not compared, their cells must not fail), the scheduled run under papermill
with parameters, as cron or ``batchnb schedule`` runs it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = REPO / "notebooks"
SAMPLES = REPO / "samples" / "documents"
SCHEDULED = NOTEBOOKS / "scheduled_run.ipynb"
INTERACTIVE = sorted(path for path in NOTEBOOKS.glob("*.ipynb") if path != SCHEDULED)


def _env(home: Path) -> dict[str, str]:
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("BATCHNB_") or name.startswith("BATCHNB_TEST_")
    }
    env["BATCHNB_HOME"] = str(home)
    return env


def test_the_notebooks_are_the_ones_this_test_knows() -> None:
    names = {path.name for path in INTERACTIVE}
    assert {"quickstart.ipynb", "upload.ipynb", "batches.ipynb", "analytics.ipynb"} <= names


def test_every_interactive_notebook_runs_top_to_bottom(tmp_path: Path) -> None:
    # A pytest of its own: nbval collects notebooks, and this suite's conftest must not.
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "-c",
            os.devnull,
            f"--rootdir={NOTEBOOKS}",
            "--nbval-lax",
            "-q",
            *map(str, INTERACTIVE),
        ],
        cwd=NOTEBOOKS,
        env=_env(tmp_path / "home"),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    # nbval runs each code cell as an item: every notebook's cells ran.
    code_cells = sum(
        cell["cell_type"] == "code"
        for path in INTERACTIVE
        for cell in json.loads(path.read_text())["cells"]
    )
    assert f"{code_cells} passed" in run.stdout, run.stdout[-2000:]


def _papermill(home: Path, out: Path, **parameters: object) -> subprocess.CompletedProcess[str]:
    args = [sys.executable, "-m", "papermill", str(SCHEDULED), str(out), "--cwd", str(home)]
    for name, value in parameters.items():
        args += ["-p", name, str(value)]
    home.mkdir(parents=True, exist_ok=True)
    return subprocess.run(
        args, env=_env(home), capture_output=True, text=True, timeout=600, cwd=home
    )


def test_a_scheduled_run_processes_new_documents_once_and_fails_loudly_over_the_threshold(
    tmp_path: Path,
) -> None:
    home, inbox, output = tmp_path / "home", tmp_path / "inbox", tmp_path / "exports"
    inbox.mkdir()
    for name in ("bluefin-office-supplies-invoice.pdf", "maplewood-print-invoice.txt"):
        shutil.copy(SAMPLES / name, inbox / name)
    common = {
        "inputs": inbox,
        "output": output,
        "prompt": "invoice number, date, total",
        "formats": "csv,json",
        "modes": "normal",
        "name": "hourly",
    }

    first = _papermill(home, tmp_path / "run-1.ipynb", **common)
    assert first.returncode == 0, first.stderr[-3000:]
    summary = json.loads((output / "summary.json").read_text())
    assert (summary["submitted"], summary["completed"], summary["failed"]) == (2, 2, 0)
    assert summary["passed"] is True
    table = pd.read_csv(output / "hourly-normal.csv")
    assert sorted(table.file_name) == sorted(path.name for path in inbox.iterdir())
    assert table.total.notna().all() and table.invoice_number.notna().all()
    assert len(json.loads((output / "hourly-normal.json").read_text())) == 2
    assert (output / "summary.html").read_text().count("hourly") >= 1
    # The output notebook keeps the text progress bar.
    assert "2/2 (100%)" in (tmp_path / "run-1.ipynb").read_text()

    # The next run: only the file that arrived since is processed; nothing new is no failure.
    shutil.copy(SAMPLES / "pinecrest-garden-invoice.pdf", inbox)
    second = _papermill(home, tmp_path / "run-2.ipynb", **common)
    assert second.returncode == 0, second.stderr[-3000:]
    summary = json.loads((output / "summary.json").read_text())
    assert summary["submitted"] == 1
    assert {item["file_name"] for item in summary["skipped"]} == {
        "bluefin-office-supplies-invoice.pdf",
        "maplewood-print-invoice.txt",
    }
    assert all(
        item["reason"].startswith("processed before in batch") for item in summary["skipped"]
    )
    assert list(pd.read_csv(output / "hourly-normal.csv").file_name) == [
        "pinecrest-garden-invoice.pdf"
    ]
    third = _papermill(home, tmp_path / "run-3.ipynb", **common)
    assert third.returncode == 0, third.stderr[-3000:]
    assert json.loads((output / "summary.json").read_text())["batch_id"] is None

    # A corrupt PDF fails its document; over a threshold of 0 the run exits non-zero, saying why.
    (inbox / "broken-scan.pdf").write_bytes(b"%PDF-1.4\nthis is not a PDF body\n")
    failing = _papermill(home, tmp_path / "run-4.ipynb", **common, max_failure_rate=0.0)
    assert failing.returncode != 0
    assert "FailureRateError" in failing.stderr
    assert "1 of 1 documents failed (100%), over the allowed 0%" in failing.stderr
    summary = json.loads((output / "summary.json").read_text())
    assert summary["passed"] is False
    assert summary["failures"][0]["file_name"] == "broken-scan.pdf"


@pytest.mark.parametrize("notebook", [SCHEDULED])
def test_the_scheduled_notebook_has_a_papermill_parameters_cell(notebook: Path) -> None:
    import nbformat

    cells = nbformat.read(notebook, as_version=4).cells
    tagged = [cell for cell in cells if "parameters" in cell.metadata.get("tags", [])]
    assert len(tagged) == 1
    for name in ("inputs", "prompt", "schema_file", "strategy", "extractor", "output"):
        assert f"\n{name} = " in f"\n{tagged[0].source}"
    for name in ("formats", "modes", "max_failure_rate", "name"):
        assert f"\n{name} = " in f"\n{tagged[0].source}"
