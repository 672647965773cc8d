"""batchnb: batch document extraction for people who live in Jupyter.

Submit files with a prompt, let a worker process them, read the results as a DataFrame::

    import batchnb
    worker = batchnb.start_worker()
    batch = batchnb.submit(["invoices/*.pdf"], prompt="invoice number, date, total")
    batch.wait()
    batch.results()
"""

from batchnb.config import Settings, load_settings
from batchnb.errors import (
    BatchnbError,
    BatchStateError,
    CancelledError,
    ConfigurationError,
    DocumentError,
    ExportError,
    ExtractorError,
    IntakeError,
    MissingDependencyError,
    NotFoundError,
    PermissionDeniedError,
    PluginWarning,
    QueueError,
    SchemaError,
    UnknownExtractorError,
)
from batchnb.jobs.export_records import Selection
from batchnb.services.analytics import AnalyticsSummary, analytics_summary
from batchnb.services.audit_trail import list_audit_events
from batchnb.services.batches import Batch, Progress, get_batch, latest_batch
from batchnb.services.exports import ExportHandle, cancel_export, export, list_exports
from batchnb.services.health import HealthReport, check_health
from batchnb.services.listing import BatchPage, BatchSummary, list_batches
from batchnb.services.manage import (
    DeleteSummary,
    bulk_update_status,
    cancel_batch,
    delete_batch,
    retry_failed,
)
from batchnb.services.submit import submit
from batchnb.services.workers import start_worker
from batchnb.services.workspace import Workspace, default_workspace, open_workspace

__version__ = "0.1.0"

__all__ = [
    "AnalyticsSummary",
    "Batch",
    "BatchPage",
    "BatchStateError",
    "BatchSummary",
    "BatchnbError",
    "CancelledError",
    "ConfigurationError",
    "DeleteSummary",
    "DocumentError",
    "ExportError",
    "ExportHandle",
    "ExtractorError",
    "HealthReport",
    "IntakeError",
    "MissingDependencyError",
    "NotFoundError",
    "PermissionDeniedError",
    "PluginWarning",
    "Progress",
    "QueueError",
    "SchemaError",
    "Selection",
    "Settings",
    "UnknownExtractorError",
    "Workspace",
    "analytics_summary",
    "bulk_update_status",
    "cancel_batch",
    "cancel_export",
    "check_health",
    "default_workspace",
    "delete_batch",
    "export",
    "get_batch",
    "latest_batch",
    "list_audit_events",
    "list_batches",
    "list_exports",
    "load_settings",
    "open_workspace",
    "retry_failed",
    "start_worker",
    "submit",
]
