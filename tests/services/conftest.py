"""Service tests use the workspace fixtures of tests/conftest.py."""

from tests.conftest import SAMPLES

__all__ = ["SAMPLES"]
