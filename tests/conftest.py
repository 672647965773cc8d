"""Shared fixtures: a temporary workspace per test, and real PostgreSQL/Redis when configured."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from batchnb.config import Settings, load_settings

#: The labelled documents beside the repository (../shared/eval), or BATCHNB_EVAL_DIR.
EVAL_DIR = Path(
    os.environ.get("BATCHNB_EVAL_DIR", Path(__file__).resolve().parents[2] / "shared" / "eval")
)

POSTGRES_ENV = "BATCHNB_TEST_POSTGRES_URL"
REDIS_ENV = "BATCHNB_TEST_REDIS_URL"


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test reads the developer's own workspace or BATCHNB_* settings."""
    for name in list(os.environ):
        if name.startswith("BATCHNB_") and not name.startswith("BATCHNB_TEST_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("BATCHNB_HOME", str(tmp_path / "home"))


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings for a fresh workspace in a temporary folder (embedded SQLite defaults)."""
    return load_settings(home=str(tmp_path / "home"))


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """URL of a new, empty PostgreSQL database, dropped after the test."""
    base = os.environ.get(POSTGRES_ENV)
    if not base:
        pytest.skip(
            f"{POSTGRES_ENV} is not set (PostgreSQL tests run where it is, e.g. in .ci/run)"
        )
    name = f"batchnb_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(base).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def redis_url() -> str:
    """URL of the test Redis, using a key prefix unique to this test (see queue tests)."""
    url = os.environ.get(REDIS_ENV)
    if not url:
        pytest.skip(f"{REDIS_ENV} is not set (Redis tests run where it is, e.g. in .ci/run)")
    return url
