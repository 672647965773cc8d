"""Settings: one table, read the same way by the notebook, the worker, the CLI and Voila."""

from batchnb.config.settings import (
    SETTINGS_TABLE,
    Setting,
    Settings,
    load_settings,
    render_settings_table,
)

__all__ = ["SETTINGS_TABLE", "Setting", "Settings", "load_settings", "render_settings_table"]
