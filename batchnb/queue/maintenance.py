"""Housekeeping that is not about queue items: expired temporary files."""

from __future__ import annotations

import time
from pathlib import Path


def remove_expired_temp_files(temp_dir: Path, max_age_hours: float) -> int:
    """Delete files under ``temp_dir`` older than ``max_age_hours``; returns how many."""
    if not temp_dir.is_dir():
        return 0
    cutoff = time.time() - max_age_hours * 3600
    removed = 0
    for path in sorted(temp_dir.rglob("*"), reverse=True):
        try:
            if path.is_file() and path.stat().st_mtime < cutoff:
                path.unlink()
                removed += 1
            elif path.is_dir() and path.stat().st_mtime < cutoff and not any(path.iterdir()):
                path.rmdir()
        except FileNotFoundError:
            continue
    return removed
