"""One built instance per extractor name for a workspace or a worker, closed when it stops.

Building an extractor can be costly (a plugin loads a model, the ``openai`` extractor opens a
pool of HTTP connections), so a worker must not build one per document. An
:class:`ExtractorPool` builds each name on first use from the settings it was given, under a
lock per name so concurrent worker threads build it once, and hands the same instance to every
thread afterwards: extractors must be safe to share between threads. :meth:`ExtractorPool.close`
calls each built instance's optional ``close()``.
"""

from __future__ import annotations

import dataclasses
import threading
from types import TracebackType

from batchnb.config import Settings
from batchnb.extract.base import Extractor
from batchnb.extract.registry import ExtractorInfo, ExtractorRegistry, default_registry


class ExtractorPool:
    """The extractors of one set of settings, each built once and reused.

    Parameters
    ----------
    settings:
        Handed to every factory; its ``plugins`` name the plugin modules this pool sees.
    registry:
        Where the factories come from; default: the process's :func:`default_registry`.
    """

    def __init__(self, settings: Settings, registry: ExtractorRegistry | None = None) -> None:
        self.settings = settings
        self.registry = default_registry() if registry is None else registry
        self._instances: dict[str, Extractor] = {}
        self._building: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"ExtractorPool(built={sorted(self._instances)!r}, registry={self.registry!r})"

    def __enter__(self) -> ExtractorPool:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def get(self, name: str) -> Extractor:
        """The extractor called ``name``, built on first use and the same one afterwards.

        Raises
        ------
        UnknownExtractorError
            The name is unknown, or its factory failed (nothing is kept; the next call
            tries again).
        """
        extractor = self._instances.get(name)
        if extractor is not None:
            return extractor
        with self._lock:
            building = self._building.setdefault(name, threading.Lock())
        with building:  # one build per name; other names are built meanwhile
            extractor = self._instances.get(name)
            if extractor is None:
                extractor = self.registry.build(name, self.settings)
                with self._lock:
                    self._instances[name] = extractor
        return extractor

    def check(self, name: str) -> None:
        """Raise :class:`~batchnb.errors.UnknownExtractorError` unless ``name`` is available.

        Builds nothing: submitting a batch checks the name without loading a model.
        """
        self.registry.check(name, self.settings)

    def names(self) -> tuple[str, ...]:
        """Names of the extractors these settings can use, sorted."""
        return self.registry.names(self.settings.plugins)

    def describe(self) -> list[ExtractorInfo]:
        """Every available extractor and every broken plugin, for ``batchnb extractors``.

        An extractor already built here shows its instance's version (which may add to the
        class's, e.g. the model of ``openai``).
        """
        rows = self.registry.describe(self.settings.plugins)
        built = dict(self._instances)
        return [
            dataclasses.replace(row, version=built[row.name].version)
            if row.name in built and not row.broken
            else row
            for row in rows
        ]

    def close(self) -> None:
        """Close every built extractor that has a ``close()``; a later :meth:`get` builds anew.

        Every instance is closed even when one fails; the first failure is raised afterwards.
        """
        with self._lock:
            instances, self._instances = self._instances, {}
        failure: Exception | None = None
        for extractor in instances.values():
            close = getattr(extractor, "close", None)
            if not callable(close):
                continue
            try:
                close()
            except Exception as exc:
                failure = failure or exc
        if failure is not None:
            raise failure
