"""The command starts fast: ``--help`` loads none of the heavy libraries, ``status`` no pandas.

Each check runs the command in a process of its own and lists, on exit, which of the slow
imports it made (timings are for ``benchmarks/cli_startup.py``; tests only look at imports).
"""

from __future__ import annotations

import json
import subprocess
import sys

from batchnb.services.submit import submit
from batchnb.services.workspace import Workspace
from tests.conftest import SAMPLES

# Libraries that take 0.1-0.4 s each to import on a small machine, and batchnb's own heavy part.
HEAVY = (
    "alembic",
    "batchnb.extract",
    "dogpile",
    "fsspec",
    "huey",
    "numpy",
    "openpyxl",
    "pandas",
    "pyarrow",
    "sqlalchemy",
    "tqdm",
)
# What `status` may not load: it needs SQLAlchemy and the workspace, nothing else slow.
NOT_FOR_STATUS = ("alembic", "batchnb.extract", "huey", "numpy", "openpyxl", "pandas", "pyarrow")

_CHILD = """
import atexit, json, sys
watched = json.loads(sys.argv[1])
atexit.register(lambda: print(json.dumps(sorted(set(watched) & set(sys.modules)))))
from batchnb.cli import main
for args in json.loads(sys.argv[2]):
    main.main(args, prog_name="batchnb", standalone_mode=False)
"""


def run_loading(commands: list[list[str]], watched: tuple[str, ...]) -> tuple[str, list[str]]:
    """Run ``commands`` in one new process; its output and which ``watched`` modules it loaded."""
    result = subprocess.run(
        [sys.executable, "-c", _CHILD, json.dumps(watched), json.dumps(commands)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    output, _, loaded = result.stdout.rstrip().rpartition("\n")
    return output, json.loads(loaded)


def test_help_loads_none_of_the_heavy_libraries() -> None:
    from batchnb.cli import main

    commands = [["--help"], *([name, "--help"] for name in sorted(main.commands))]
    commands += [["db", name, "--help"] for name in ("upgrade", "downgrade", "current")]
    output, loaded = run_loading(commands, HEAVY)
    assert "Usage: batchnb [OPTIONS] COMMAND" in output
    assert "Usage: batchnb list [OPTIONS]" in output
    assert loaded == []


def test_status_loads_neither_pandas_nor_alembic(workspace: Workspace) -> None:
    submit([str(SAMPLES / "maplewood-print-invoice.txt")], "invoice number", workspace=workspace)
    output, loaded = run_loading([["status"]], NOT_FOR_STATUS)
    assert "batch 1 (maplewood-print-invoice.txt): pending" in output
    assert loaded == []
