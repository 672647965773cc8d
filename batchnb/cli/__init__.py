"""The ``batchnb`` command: one click group, each command a thin call into the services.

Commands live in one module per subject and register themselves on :data:`main` when imported.
"""

from batchnb.cli import analytics, app, batches, evaluation, exports, manage, review, system
from batchnb.cli import extractors as extractors
from batchnb.cli import schedule as schedule
from batchnb.cli import schema as schema
from batchnb.cli.group import main

__all__ = [
    "analytics",
    "app",
    "batches",
    "evaluation",
    "exports",
    "main",
    "manage",
    "review",
    "system",
]
