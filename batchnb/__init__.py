"""batchnb: batch document extraction for people who live in Jupyter.

Submit files with a prompt, let a worker process them, read the results as a DataFrame::

    import batchnb
    worker = batchnb.start_worker()
    batch = batchnb.submit(["invoices/*.pdf"], prompt="invoice number, date, total")
    batch.wait()
    batch.results()
"""

import importlib
from typing import TYPE_CHECKING, Any

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
    NothingNewError,
    PermissionDeniedError,
    PluginWarning,
    QueueError,
    ScheduleError,
    SchemaError,
    UnknownExtractorError,
)

if TYPE_CHECKING:
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
    from batchnb.services.preview import Preview, preview_extraction
    from batchnb.services.review import Correction, correct_value, list_corrections, mark_reviewed
    from batchnb.services.review_ground_truth import GroundTruthSummary, export_ground_truth
    from batchnb.services.review_status import ReviewStatus, review_status
    from batchnb.services.schedule_info import ScheduleInfo, ScheduleRunInfo
    from batchnb.services.schedules import (
        add_schedule,
        list_schedules,
        pause_schedule,
        remove_schedule,
        resume_schedule,
        run_schedule,
        schedule_history,
    )
    from batchnb.services.submit import submit
    from batchnb.services.workers import start_worker
    from batchnb.services.workspace import Workspace, default_workspace, open_workspace

# The services pull in pandas, SQLAlchemy, Alembic and Huey (about a second on a small machine),
# so they are imported on first use (PEP 562): `batchnb --help` and `from batchnb import
# ConfigurationError` do not pay for them. The TYPE_CHECKING imports above say the same to mypy.
_LAZY = {
    "AnalyticsSummary": "batchnb.services.analytics",
    "Batch": "batchnb.services.batches",
    "BatchPage": "batchnb.services.listing",
    "BatchSummary": "batchnb.services.listing",
    "Correction": "batchnb.services.review",
    "DeleteSummary": "batchnb.services.manage",
    "ExportHandle": "batchnb.services.exports",
    "GroundTruthSummary": "batchnb.services.review_ground_truth",
    "HealthReport": "batchnb.services.health",
    "Preview": "batchnb.services.preview",
    "Progress": "batchnb.services.batches",
    "ReviewStatus": "batchnb.services.review_status",
    "ScheduleInfo": "batchnb.services.schedule_info",
    "ScheduleRunInfo": "batchnb.services.schedule_info",
    "Selection": "batchnb.jobs.export_records",
    "Workspace": "batchnb.services.workspace",
    "add_schedule": "batchnb.services.schedules",
    "analytics_summary": "batchnb.services.analytics",
    "bulk_update_status": "batchnb.services.manage",
    "cancel_batch": "batchnb.services.manage",
    "cancel_export": "batchnb.services.exports",
    "check_health": "batchnb.services.health",
    "correct_value": "batchnb.services.review",
    "default_workspace": "batchnb.services.workspace",
    "delete_batch": "batchnb.services.manage",
    "export": "batchnb.services.exports",
    "export_ground_truth": "batchnb.services.review_ground_truth",
    "get_batch": "batchnb.services.batches",
    "latest_batch": "batchnb.services.batches",
    "list_audit_events": "batchnb.services.audit_trail",
    "list_batches": "batchnb.services.listing",
    "list_corrections": "batchnb.services.review",
    "list_exports": "batchnb.services.exports",
    "list_schedules": "batchnb.services.schedules",
    "mark_reviewed": "batchnb.services.review",
    "open_workspace": "batchnb.services.workspace",
    "pause_schedule": "batchnb.services.schedules",
    "preview_extraction": "batchnb.services.preview",
    "remove_schedule": "batchnb.services.schedules",
    "resume_schedule": "batchnb.services.schedules",
    "retry_failed": "batchnb.services.manage",
    "review_status": "batchnb.services.review_status",
    "run_schedule": "batchnb.services.schedules",
    "schedule_history": "batchnb.services.schedules",
    "start_worker": "batchnb.services.workers",
    "submit": "batchnb.services.submit",
}


def __getattr__(name: str) -> Any:
    """Import a public service on first use and keep it as a module attribute."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'batchnb' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext batchnb``: register ``%batchnb`` and ``%%extract`` (docs/magics.md).

    The magics live with the other notebook code (``batchnb.ui.magics``), imported here by
    name only when the extension loads, like the services above.
    """
    importlib.import_module("batchnb.ui.magics").load_ipython_extension(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    """``%unload_ext batchnb``: remove the magics and stop a worker they started."""
    importlib.import_module("batchnb.ui.magics").unload_ipython_extension(ipython)


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
    "Correction",
    "DeleteSummary",
    "DocumentError",
    "ExportError",
    "ExportHandle",
    "ExtractorError",
    "GroundTruthSummary",
    "HealthReport",
    "IntakeError",
    "MissingDependencyError",
    "NotFoundError",
    "NothingNewError",
    "PermissionDeniedError",
    "PluginWarning",
    "Preview",
    "Progress",
    "QueueError",
    "ReviewStatus",
    "ScheduleError",
    "ScheduleInfo",
    "ScheduleRunInfo",
    "SchemaError",
    "Selection",
    "Settings",
    "UnknownExtractorError",
    "Workspace",
    "add_schedule",
    "analytics_summary",
    "bulk_update_status",
    "cancel_batch",
    "cancel_export",
    "check_health",
    "correct_value",
    "default_workspace",
    "delete_batch",
    "export",
    "export_ground_truth",
    "get_batch",
    "latest_batch",
    "list_audit_events",
    "list_batches",
    "list_corrections",
    "list_exports",
    "list_schedules",
    "load_settings",
    "mark_reviewed",
    "open_workspace",
    "pause_schedule",
    "preview_extraction",
    "remove_schedule",
    "resume_schedule",
    "retry_failed",
    "review_status",
    "run_schedule",
    "schedule_history",
    "start_worker",
    "submit",
]
