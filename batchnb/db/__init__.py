"""The database layer: models (``models``), engine (``engine``) and migrations (``migrate``).

Import from the modules themselves: this package imports nothing, so a module that needs only
the status names (``batchnb.db.statuses``) does not load SQLAlchemy.
"""
