"""The notebook face: widgets for getting documents in and a batch running.

Each widget is a class you ``display()``; they call only batchnb's public service functions and
hold no database session. Custom front ends are anywidget ES modules from ``widgets/``
(see :mod:`batchnb.ui.assets`). Names are imported on first use, so ``import batchnb.ui`` is cheap.
"""

import importlib
from typing import Any

_LAZY: dict[str, str] = {
    "AnalyticsDashboard": "batchnb.ui.analytics_dashboard",
    "HelpPanel": "batchnb.ui.help",
    "BatchManager": "batchnb.ui.batch_manager",
    "BatchProgress": "batchnb.ui.progress",
    "BatchWizard": "batchnb.ui.wizard",
    "Dropzone": "batchnb.ui.dropzone",
    "DocumentView": "batchnb.ui.document_view",
    "PromptEditor": "batchnb.ui.prompt_editor",
    "ResultsView": "batchnb.ui.results_view",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    """Import a widget class on first use and keep it as a module attribute."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'batchnb.ui' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
