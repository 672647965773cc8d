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
    CancelledError,
    ConfigurationError,
    DocumentError,
    ExtractorError,
    IntakeError,
    MissingDependencyError,
    NotFoundError,
    QueueError,
    SchemaError,
)
from batchnb.services.batches import (
    Batch,
    Progress,
    cancel_batch,
    get_batch,
    latest_batch,
    submit,
)
from batchnb.services.health import HealthReport, check_health
from batchnb.services.workers import start_worker
from batchnb.services.workspace import Workspace, default_workspace, open_workspace

__version__ = "0.1.0"

__all__ = [
    "Batch",
    "BatchnbError",
    "CancelledError",
    "ConfigurationError",
    "DocumentError",
    "ExtractorError",
    "HealthReport",
    "IntakeError",
    "MissingDependencyError",
    "NotFoundError",
    "Progress",
    "QueueError",
    "SchemaError",
    "Settings",
    "Workspace",
    "cancel_batch",
    "check_health",
    "default_workspace",
    "get_batch",
    "latest_batch",
    "load_settings",
    "open_workspace",
    "start_worker",
    "submit",
]
