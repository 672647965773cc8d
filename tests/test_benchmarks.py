"""Every script of ``benchmarks/`` runs in its ``--smoke`` mode, so that none can rot unseen.

A smoke run is the smallest run through every code path of a script (a few items, one repeat):
each test runs one script as a process, as a user would, and checks that it exits with status 0,
prints its report's key lines and removes what it created under ``--dir``. Nothing timed is
asserted: the figures of a smoke run mean nothing. The parts that need PostgreSQL take
``BATCHNB_TEST_POSTGRES_URL`` from the environment and are skipped with a printed reason
without it; ``upload.py`` drives Chromium and is marked ``browser``.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.browser.servers import BIN, CHROMIUM
from tests.conftest import POSTGRES_ENV

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
TIMEOUT_S = 240.0
"""Per script; a smoke run takes 1-25 s on 2 busy cores, a hang must not stall the suite."""

pytestmark = pytest.mark.slow  # every test starts a process of its own


@dataclass(frozen=True)
class Smoke:
    """One script's smoke run: whether it takes ``--dir``, and what its report must show
    (texts, or patterns searched line by line)."""

    script: str
    expected: tuple[str | re.Pattern[str], ...]
    takes_dir: bool = True
    postgres: tuple[str | re.Pattern[str], ...] = ()
    """Lines printed when PostgreSQL is configured (without it: "PostgreSQL skipped")."""


SMOKES = [
    Smoke(
        "queue_overhead.py",
        (
            "1. bare SqliteHuey, no-op tasks/s",  # the baseline
            "per-item overhead ratio (aim <= 3x), no-op",
            "per-item overhead ratio (aim <= 3x), full path",
            "4. submit() of 50 documents",
            "FROM documents",  # progress counts documents (services/batches.py)
            "5. batch_progress, 1,500-document batch (median / p95)",
            "-- cProfile: submit() of 50 documents",
        ),
    ),
    Smoke(
        "parse_extract.py",
        ("1. pypdfium2 get_text_range alone", "vs pypdfium2", "3. parse + schema + offline"),
        takes_dir=False,
    ),
    Smoke(
        "openai_extractor.py",
        ("1. before: new extractor per document", "2. after: one pooled extractor", "vs before"),
        takes_dir=False,
    ),
    Smoke(
        "export.py",
        (
            "pandas.to_csv",
            "pandas.to_parquet (pyarrow)",
            'pandas.to_excel("openpyxl")',
            "xlsxwriter constant_memory",
            "batchnb export() from SQLite",
            "x to_csv [",  # a ratio against the baseline
            "== memory flatness",
            "== aims",
            "-- cProfile:",
        ),
    ),
    Smoke(
        "list_and_analytics.py",
        (
            re.compile(r"^sqlite +\| list page \(filter\+search\+sort, page 2\) +\|", re.M),
            re.compile(r"^sqlite +\| analytics summary, whole history +\|", re.M),
            "plan of: SELECT",
            "version check alone",
            "plan of the version check",
        ),
        postgres=(re.compile(r"^postgresql \| analytics summary, whole history +\|", re.M),),
    ),
    Smoke(
        "batch_manager.py",
        ("== sqlite", "list_batches", "ratio", "all changes: median"),
        postgres=("== postgresql",),
    ),
    Smoke("cli_startup.py", ("python -c pass", "vs python", "batchnb --help", "batchnb status")),
    Smoke(
        "results_view.py",
        ("baseline: batch.results() alone", "x baseline", "next page", "open a document view"),
    ),
    Smoke(
        "ocr_engines.py",
        ("| engine | s/page |", "| tesseract-fallback |", "rapidocr"),
        takes_dir=False,
    ),
    Smoke(
        "scaling.py",
        ("x 1 process (baseline)", "pdf", "ocr", "openai", "PostgreSQL + Redis skipped"),
    ),
    Smoke(
        "faults.py",
        (
            "load average at start",
            "== sqlite",
            "baseline, no faults",
            "| SIGKILL |",
            "| SIGSTOP |",
            "| message loss |",
            "longest stall",
        ),
        postgres=("== postgres+redis", "FLUSHDB"),
    ),
    Smoke(
        "upload.py",
        ("FileUpload       1 MB", "Dropzone         1 MB", "FileUpload's rate", "sha256 ok"),
    ),
]
BROWSER_SCRIPTS = {"upload.py"}


def _browser_missing() -> str | None:
    """Why the browser benchmark cannot run here (as tests/browser/conftest.py decides)."""
    if not CHROMIUM.exists():
        return f"{CHROMIUM} is missing (make system-packages installs Chromium)"
    for module in ("playwright", "websocket"):
        if importlib.util.find_spec(module) is None:
            return f"{module} is missing (make setup installs it)"
    if not (BIN / "voila").exists():
        return f"{BIN / 'voila'} is missing (make setup installs it)"
    return None


def _params() -> list[object]:
    params: list[object] = []
    for smoke in SMOKES:
        marks: list[pytest.MarkDecorator] = []
        if smoke.script in BROWSER_SCRIPTS:
            marks.append(pytest.mark.browser)
            missing = _browser_missing()
            if missing:
                marks.append(pytest.mark.skip(reason=missing))
        params.append(pytest.param(smoke, id=smoke.script.removesuffix(".py"), marks=marks))
    return params


def test_every_script_has_a_smoke_run() -> None:
    assert sorted(path.name for path in BENCHMARKS.glob("*.py")) == sorted(
        smoke.script for smoke in SMOKES
    )


def _run(argv: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run ``argv``; on a timeout, SIGTERM first, so the script stops its servers itself."""
    process = subprocess.Popen(
        argv, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        stdout, stderr = process.communicate(timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.terminate()
        try:
            stdout, stderr = process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            stdout, stderr = process.communicate()
        pytest.fail(f"{argv[1]} --smoke took over {TIMEOUT_S:.0f} s:\n{stdout}\n{stderr}")
    return subprocess.CompletedProcess(argv, process.returncode, stdout, stderr)


@pytest.mark.parametrize("smoke", _params())
def test_smoke_run(smoke: Smoke, tmp_path: Path) -> None:
    parent, scratch = tmp_path / "dir", tmp_path / "tmp"
    parent.mkdir()
    scratch.mkdir()
    argv = [sys.executable, str(BENCHMARKS / smoke.script), "--smoke"]
    if smoke.takes_dir:
        argv += ["--dir", str(parent)]
    # os.environ as the suite left it: BATCHNB_HOME temporary, BATCHNB_TEST_* kept.
    env = {**os.environ, "TMPDIR": str(scratch), "PYTHONUNBUFFERED": "1"}
    done = _run(argv, env, BENCHMARKS.parent)
    report = f"--- stdout\n{done.stdout}\n--- stderr\n{done.stderr}"
    assert done.returncode == 0, report
    if smoke.script == "ocr_engines.py" and "skipped: no SROIE receipts" in done.stdout:
        pytest.skip(done.stdout.strip().splitlines()[-1])
    expected = smoke.expected
    if smoke.postgres:
        expected += smoke.postgres if os.environ.get(POSTGRES_ENV) else ("PostgreSQL skipped",)
    missing = [
        line
        for line in expected
        if (line not in done.stdout if isinstance(line, str) else not line.search(done.stdout))
    ]
    assert not missing, f"missing from the report: {missing}\n{report}"
    assert "Traceback" not in done.stdout + done.stderr, report
    assert not list(parent.iterdir()), f"left behind under --dir: {list(parent.iterdir())}"
