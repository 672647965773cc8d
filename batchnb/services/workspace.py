"""The workspace: settings resolved once into a database, a file store, extractors and a queue.

The notebook, the worker, the CLI and Voila all call :func:`open_workspace` (or
:func:`default_workspace`), so they resolve ``BATCHNB_HOME`` and every other setting the same
way; everything a workspace builds (its extractors included) is built from its one
:class:`~batchnb.config.Settings`. Opening a workspace upgrades its database to the newest
schema. Every service function takes ``workspace=`` and ``actor=`` and fills them in with
:func:`acting`.
"""

from __future__ import annotations

import threading
from datetime import timedelta
from functools import cached_property, partial
from typing import TYPE_CHECKING, Any

from batchnb.cache import SummaryCache, open_cache
from batchnb.config import Settings, load_settings
from batchnb.db.engine import Database
from batchnb.db.migrate import ensure_current
from batchnb.documents.plans import Plan, get_plan
from batchnb.documents.storage import Storage
from batchnb.services import display

if TYPE_CHECKING:
    from batchnb.extract import ExtractorPool
    from batchnb.queue.runtime import QueueRuntime


class Workspace:
    """One workspace. Cheap to open; the queue runtime and extractors are built on first use.

    Cheap to import too: the queue (Huey), the job handlers and the extractors are imported
    when first used, so a command that only reads (``batchnb status``) does not load them.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        settings.home.mkdir(parents=True, exist_ok=True)
        settings.temp_dir.mkdir(parents=True, exist_ok=True)
        self.db = Database(
            settings.database_url,
            sqlite_busy_timeout_ms=settings.sqlite_busy_timeout_ms,
            slow_query_ms=settings.slow_query_ms,
            pool_size=settings.db_pool_size,
            max_overflow=settings.db_max_overflow,
            pool_timeout=settings.db_pool_timeout_seconds,
            pool_recycle=settings.db_pool_recycle_seconds,
            lock_timeout=settings.db_lock_timeout_seconds,
            idle_in_transaction_timeout=settings.db_idle_in_transaction_seconds,
        )
        ensure_current(self.db, lock_path=settings.home / ".migrate.lock")
        self.storage = Storage(settings.storage_url)

    def __repr__(self) -> str:
        settings = self.settings
        return (
            f"Workspace(home={str(settings.home)!r}, user={settings.user!r}, "
            f"plan={settings.plan!r}, database={display.mask_url(settings.database_url)!r})"
        )

    def _repr_html_(self) -> str:
        settings = self.settings
        facts = [
            ("home", settings.home),
            ("user", settings.user),
            ("plan", settings.plan),
            ("database", display.mask_url(settings.database_url)),
            ("queue", display.mask_url(settings.queue_url)),
            ("files", display.mask_url(settings.storage_url)),
        ]
        return display.card("Workspace", facts)

    @cached_property
    def extractors(self) -> ExtractorPool:
        """The workspace's extractors: each built once from these settings, reused, closed
        when a worker of this workspace or the workspace itself stops."""
        from batchnb.extract import ExtractorPool

        return ExtractorPool(self.settings)

    @property
    def plan(self) -> Plan:
        return get_plan(self.settings.plan)

    @cached_property
    def cache(self) -> SummaryCache:
        """Cache of batch summaries, progress counts and analytics (``BATCHNB_CACHE_URL``)."""
        return open_cache(self.settings)

    @cached_property
    def runtime(self) -> QueueRuntime:
        """Database + Huey + job handlers; the Huey tasks are registered here."""
        from batchnb.jobs import job_handlers
        from batchnb.jobs.batch_status import close_settled_batches
        from batchnb.queue.runtime import QueueRuntime
        from batchnb.queue.tasks import register_tasks
        from batchnb.queue.transport import create_huey

        settings = self.settings
        runtime = QueueRuntime(
            db=self.db,
            huey=create_huey(settings.queue_url, busy_timeout_ms=settings.sqlite_busy_timeout_ms),
            lease_seconds=settings.lease_seconds,
            handlers=job_handlers(
                self.db,
                self.storage,
                self.extractors.get,
                result_cache=settings.result_cache,
                export_retention=timedelta(hours=settings.export_retention_hours),
            ),
        )
        runtime.on_stop.append(self.extractors.close)
        runtime.sweeps.append(partial(close_settled_batches, self.db))
        temp_dirs = [settings.temp_dir]
        if self.storage.local_temp_dir is not None:
            temp_dirs.append(self.storage.local_temp_dir)
        register_tasks(
            runtime,
            temp_dirs,
            settings.temp_max_age_hours,
            cleanups=[self.remove_expired_exports, self.remove_stale_uploads],
        )
        return runtime

    def remove_expired_exports(self) -> int:
        """Delete the files of exports past their expiry (run by the hourly cleanup task)."""
        from batchnb.jobs.exports import remove_expired_exports

        return remove_expired_exports(self.db)

    def remove_stale_uploads(self) -> int:
        """Delete widget uploads (partial or verified) older than ``temp_max_age_hours``
        (run by the hourly cleanup task); a partial being received is kept."""
        from batchnb.documents.uploads import UploadArea

        area = UploadArea.for_settings(self.settings)
        return area.remove_stale(self.settings.temp_max_age_hours)

    def close(self) -> None:
        """Close the extractors, the queue's storage connection and the database connections."""
        if "extractors" in self.__dict__:
            self.extractors.close()
        if "runtime" in self.__dict__:
            storage = self.runtime.huey.storage
            if hasattr(storage, "close"):
                storage.close()
        if "cache" in self.__dict__:
            self.cache.close()
        self.db.dispose()


_default_lock = threading.Lock()
_default: Workspace | None = None


def open_workspace(settings: Settings | None = None, **overrides: Any) -> Workspace:
    """Open the workspace described by ``settings`` (default: environment + config file).

    Keyword arguments override single settings, e.g. ``open_workspace(openai_base_url=
    "http://localhost:11434/v1", plugins=["my_extractors"])``.
    """
    return Workspace(settings or load_settings(**overrides))


def default_workspace() -> Workspace:
    """The process's workspace from the environment, opened once and shared."""
    global _default
    with _default_lock:
        if _default is None:
            _default = open_workspace()
        return _default


def acting(workspace: Workspace | None, actor: str | None) -> tuple[Workspace, str]:
    """The workspace and acting user of a service call: the ones given, else the defaults.

    The default workspace is the process's (:func:`default_workspace`); the default actor is
    the workspace's ``user`` setting (``BATCHNB_USER``, ``JUPYTERHUB_USER`` or the OS user).
    """
    workspace = workspace or default_workspace()
    return workspace, actor or workspace.settings.user
