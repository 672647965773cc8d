"""Service tests use the workspace fixtures of tests/conftest.py; tests that start real
``batchnb worker`` processes share :func:`slow_worker_env`."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.conftest import SAMPLES

__all__ = ["PLUGINS_DIR", "SAMPLES", "slow_worker_env"]

PLUGINS_DIR = Path(__file__).resolve().parents[1] / "plugins"
"""Holds ``slow_extractor``, an extractor that takes ``SLOW_EXTRACTOR_SECONDS`` a document."""


def slow_worker_env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *, lease_seconds: float, slow_seconds: float
) -> dict[str, str]:
    """Set this process's environment for a workspace in ``tmp_path`` with short leases and
    the slow extractor, and return it for worker processes (with the plugin importable)."""
    values = {
        "BATCHNB_HOME": str(tmp_path / "home"),
        "BATCHNB_LEASE_SECONDS": str(lease_seconds),
        "BATCHNB_HEARTBEAT_SECONDS": "0.5",
        "BATCHNB_PLUGINS": "slow_extractor",
        "SLOW_EXTRACTOR_SECONDS": str(slow_seconds),
    }
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    monkeypatch.syspath_prepend(str(PLUGINS_DIR))
    env = dict(os.environ)
    paths = [str(PLUGINS_DIR), env.get("PYTHONPATH")]
    env["PYTHONPATH"] = os.pathsep.join(path for path in paths if path)
    return env
