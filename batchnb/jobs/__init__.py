"""What a worker runs: the document pipeline and the export job, as queue job handlers.

The service layer creates the work (rows and queue items); the queue leases it and calls the
handler of its job type. Each job type's payload is a :class:`batchnb.queue.messages.Payload`
declared beside its handler.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from batchnb.db.engine import Database
from batchnb.documents.storage import Storage
from batchnb.extract import Extractor
from batchnb.jobs.documents import DocumentJobHandler, ProcessDocument
from batchnb.jobs.exports import ExportJobHandler, WriteExport
from batchnb.queue.runtime import JobHandler


def job_handlers(
    db: Database,
    storage: Storage,
    extractor_for: Callable[[str], Extractor],
    *,
    result_cache: bool,
    export_retention: timedelta,
) -> dict[str, JobHandler]:
    """The handler of every job type a workspace's workers run, by job type."""
    return {
        ProcessDocument.job_type: DocumentJobHandler(
            db, storage, extractor_for, result_cache=result_cache
        ),
        WriteExport.job_type: ExportJobHandler(db, export_retention),
    }


__all__ = ["ProcessDocument", "WriteExport", "job_handlers"]
