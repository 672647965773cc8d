"""A test plugin: an extractor that takes its time, loaded through BATCHNB_PLUGINS.

Worker subprocesses in the crash tests load it the way a user's own plugin module is loaded,
so a SIGKILL reliably lands while documents are being processed.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

from batchnb.extract import ExtractionResult, OfflineExtractor


class SlowExtractor:
    name = "slow"
    version = "1"

    def __init__(self) -> None:
        self._inner = OfflineExtractor()

    def extract(self, document: Any, schema: Any) -> ExtractionResult:
        time.sleep(float(os.environ.get("SLOW_EXTRACTOR_SECONDS", "0.4")))
        return self._inner.extract(document, schema)


def register(register_extractor: Callable[..., None]) -> None:
    register_extractor("slow", SlowExtractor)
