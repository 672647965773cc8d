"""Peak memory of an export does not grow with the number of documents (architecture, 7).

tracemalloc sees every Python allocation. Small chunks keep the flat part of the peak small
(about 0.5 MB), so keeping as little as ~120 bytes per document would cross the 1.5 ratio
between 1,000 and 4,000 documents. (It does not see the C buffers of lxml and zlib, which
openpyxl flushes to a temporary file per sheet as it goes.)
"""

from __future__ import annotations

import gc
import tracemalloc
from pathlib import Path

import pytest

from batchnb.formats import write
from tests.formats.expected import generated_records


def peak_bytes(path: Path, fmt: str, mode: str, count: int) -> int:
    """The traced peak of writing ``count`` generated documents."""
    gc.collect()
    tracemalloc.start()
    try:
        summary = write(
            generated_records(count),
            fmt,
            path,
            mode=mode,  # type: ignore[arg-type]
            array_field="line_items",
            chunk_size=100,
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert summary.rows >= count
    return peak


@pytest.mark.parametrize(
    ("fmt", "mode"), [("xlsx", "sheets"), ("csv", "normal"), ("csv", "multi-row")]
)
def test_peak_memory_is_flat_in_the_number_of_documents(
    tmp_path: Path, fmt: str, mode: str
) -> None:
    path = tmp_path / f"out.{fmt}"
    peak_bytes(path, fmt, mode, 50)  # imports and caches of the first run are not the export's
    small = peak_bytes(path, fmt, mode, 1_000)
    large = peak_bytes(path, fmt, mode, 4_000)
    assert large / small < 1.5, f"peak {small:,} B for 1,000 documents, {large:,} B for 4,000"
