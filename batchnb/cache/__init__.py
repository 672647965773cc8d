"""Cache of batch summaries, progress counts and analytics: memory, Redis, or none.

:class:`SummaryCache` is what the service layer uses (one per workspace); the backends it
stores values in are in :mod:`batchnb.cache.backends`.
"""

from batchnb.cache.freshness import DataVersion, Freshness, Stamped
from batchnb.cache.summary import (
    ANALYTICS,
    BATCHES,
    PROGRESS,
    PROGRESS_TTL_SECONDS,
    CacheStats,
    SummaryCache,
    open_cache,
)

__all__ = [
    "ANALYTICS",
    "BATCHES",
    "PROGRESS",
    "PROGRESS_TTL_SECONDS",
    "CacheStats",
    "DataVersion",
    "Freshness",
    "Stamped",
    "SummaryCache",
    "open_cache",
]
