"""docs/plugins.md's example plugin works as printed: installed, listed, run, contract-checked."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from batchnb.config import Settings
from batchnb.extract import ExtractorPool, ExtractorRegistry
from batchnb.testing import check_extractor

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "plugins.md"
SAMPLE = ROOT / "samples" / "documents" / "maplewood-print-invoice.txt"
BLOCK = re.compile(r'^```\w+ title="(?P<path>[^"]+)"\n(?P<body>.*?)^```$', re.M | re.S)
OPTIONS = '{"labels": {"confidence": 0.55}}'  # a confidence only the plugin can give

pytestmark = pytest.mark.slow  # pip builds the package; a batch runs in a subprocess


def doc_files() -> dict[str, str]:
    """The files of the example package: each code block with a ``title="path"``."""
    return {match["path"]: match["body"] for match in BLOCK.finditer(DOC.read_text("utf-8"))}


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example package built from the doc and installed into its own folder."""
    root = tmp_path_factory.mktemp("plugin_doc")
    package = root / "pkg"
    for path, body in doc_files().items():
        (package / path).parent.mkdir(parents=True, exist_ok=True)
        (package / path).write_text(body, encoding="utf-8")
    target = root / "site"
    pip = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run(
        [*pip, "--no-deps", "--no-build-isolation", "--no-index", "--target", str(target), package],
        check=True,
        capture_output=True,
        text=True,
        timeout=240,
    )
    return target


@pytest.fixture
def environment(site: Path, tmp_path: Path) -> dict[str, str]:
    """A subprocess environment seeing the installed example, with a fresh workspace."""
    paths = [str(site), *filter(None, [os.environ.get("PYTHONPATH")])]
    return os.environ | {
        "PYTHONPATH": os.pathsep.join(paths),
        "BATCHNB_HOME": str(tmp_path / "home"),
        "BATCHNB_EXTRACTOR_OPTIONS": OPTIONS,
    }


def batchnb(environment: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "batchnb", *args],
        env=environment,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )


def test_the_doc_holds_a_whole_package() -> None:
    files = doc_files()
    assert set(files) == {"pyproject.toml", "batchnb_labels/__init__.py"}
    assert 'labels = "batchnb_labels:register"' in files["pyproject.toml"]
    assert len(files["batchnb_labels/__init__.py"].splitlines()) <= 45


def test_a_batch_runs_through_the_installed_plugin(
    environment: dict[str, str], tmp_path: Path
) -> None:
    output = tmp_path / "results.json"
    run = batchnb(
        environment,
        *("run", str(SAMPLE), "--prompt", "invoice number, date, total"),
        *("--extractor", "labels", "--output", str(output)),
    )
    assert run.returncode == 0, run.stderr
    assert "1 completed, 0 failed" in run.stderr
    table = run.stdout.splitlines()
    # the values, and the confidence set in the plugin's options: no other extractor gives it
    assert all(word in table[1].split() for word in ("TXT-0042", "2024-03-22", "0.55"))
    [written] = json.loads(output.read_text(encoding="utf-8"))
    assert (written["invoice_number"], written["date"]) == ("TXT-0042", "2024-03-22")


def test_batchnb_extractors_lists_it_with_its_distribution(environment: dict[str, str]) -> None:
    listed = batchnb(environment, "extractors", "--json")
    assert listed.returncode == 0, listed.stderr
    rows = {row["name"]: row for row in json.loads(listed.stdout)}
    assert rows["labels"] == {
        "name": "labels",
        "origin": "entry point of batchnb-labels==0.1.0",
        "version": "1",
        "needs": "nothing",
        "error": None,
        "broken": False,
    }


@pytest.fixture
def installed(site: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The example importable in this process (and its entry point visible)."""
    monkeypatch.syspath_prepend(str(site))
    yield
    sys.modules.pop("batchnb_labels", None)


def test_the_installed_plugin_keeps_the_contract(installed: None, settings: Settings) -> None:
    # A fresh registry scans the entry points again, now including the example's.
    with ExtractorPool(settings, ExtractorRegistry()) as pool:
        results = check_extractor(pool.get("labels"))
    assert results[0].data()["invoice_number"] == "INV-2024-0042"
    assert results[0].data()["total"] == {"amount": 138.0, "currency": "USD"}
