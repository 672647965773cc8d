"""The columns a batch listing counts and sorts on.

Apart from :mod:`batchnb.services.listing` and its queries, so that ``batchnb list --help`` can
offer them as choices without loading SQLAlchemy or pandas.
"""

from __future__ import annotations

COUNT_COLUMNS = ("pending", "processing", "completed", "failed", "cancelled")
"""Documents of a batch per status, as listed (and sortable) on every summary."""
SORT_COLUMNS = (
    "id",
    "name",
    "owner",
    "status",
    "strategy",
    "extractor",
    "created_at",
    "updated_at",
    "completed_at",
    "document_count",
    *COUNT_COLUMNS,
)
