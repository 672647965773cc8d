"""The package root re-exports the public API with a sorted ``__all__``."""

from __future__ import annotations

import subprocess
import sys

import batchnb


def test_all_is_sorted_and_importable() -> None:
    assert batchnb.__all__ == sorted(batchnb.__all__)
    for name in batchnb.__all__:
        assert getattr(batchnb, name) is not None


def test_python_dash_m_runs_the_cli() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "batchnb", "--help"], capture_output=True, text=True, check=True
    )
    for command in (
        "run",
        "submit",
        "status",
        "worker",
        "health",
        "db",
        "eval",
        "export",
        "exports",
        "list",
        "retry",
        "cancel",
        "delete",
        "audit",
        "analytics",
        "extractors",
    ):
        assert command in result.stdout
