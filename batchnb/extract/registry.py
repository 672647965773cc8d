"""Extractors by name: built-ins and plugins registered through one path.

A plugin is a package declaring an entry point in the group ``batchnb.extractors``; the entry
point's object is a function ``register(register_extractor)`` that calls
``register_extractor(name, factory)`` for each extractor it provides. The built-in ``offline``
extractor is declared the same way in batchnb's own ``pyproject.toml``. A plain module with a
``register`` function can also be named in the ``plugins`` setting (``BATCHNB_PLUGINS``), for
extractors that are not packaged. Plugins are loaded on first use, under a lock, so worker
threads may ask for extractors concurrently; plugin modules named later are picked up when an
unknown name is asked for.
"""

from __future__ import annotations

import functools
import importlib
import threading
from collections.abc import Callable, Sequence
from importlib.metadata import entry_points
from typing import Any

from batchnb.config import load_settings
from batchnb.errors import BatchnbError, ExtractorError
from batchnb.extract.base import Extractor

ENTRY_POINT_GROUP = "batchnb.extractors"

ExtractorFactory = Callable[[], Extractor]
"""A zero-argument callable returning a ready extractor (often the extractor class itself)."""


class ExtractorRegistry:
    """A table of extractor factories by name, filled from plugins on first use.

    Parameters
    ----------
    group:
        Entry point group whose ``register`` functions are called.
    modules:
        Returns names of plugin modules with a ``register`` function (the default registry
        reads the ``plugins`` setting); ``None`` for entry points only.
    """

    def __init__(
        self,
        group: str = ENTRY_POINT_GROUP,
        modules: Callable[[], Sequence[str]] | None = None,
    ) -> None:
        self.group = group
        self._modules = modules
        self._factories: dict[str, ExtractorFactory] = {}
        self._loaded_plugins: set[str] = set()
        self._loaded = False
        # Re-entrant: a plugin's register() calls register() while loading holds the lock.
        self._lock = threading.RLock()

    def register(self, name: str, factory: ExtractorFactory, *, replace: bool = False) -> None:
        """Make ``factory`` available as ``name``.

        Raises
        ------
        ExtractorError
            ``name`` is taken by another factory and ``replace`` is false.
        """
        if not isinstance(name, str) or not name.strip():
            raise ExtractorError(f"an extractor name must be a non-empty string, got {name!r}")
        if not callable(factory):
            raise ExtractorError(
                f"the factory for extractor {name!r} must be callable (e.g. the extractor class)"
            )
        with self._lock:
            current = self._factories.get(name)
            if current is not None and current is not factory and not replace:
                raise ExtractorError(
                    f"an extractor named {name!r} is already registered ({_describe(current)}); "
                    "pick another name or pass replace=True"
                )
            self._factories[name] = factory

    def get(self, name: str) -> Extractor:
        """A new extractor instance for ``name``.

        Raises
        ------
        ExtractorError
            ``name`` is unknown (the message lists the known names), a plugin failed to load,
            or the factory failed or returned something that is not an extractor.
        """
        self.load_plugins()
        with self._lock:
            factory = self._factories.get(name)
        if factory is None:
            self._load_modules()  # a plugin module may have been configured since first use
            with self._lock:
                factory = self._factories.get(name)
        if factory is None:
            known = ", ".join(self.names()) or "none"
            raise ExtractorError(
                f"unknown extractor {name!r}; known extractors: {known}. Install the package "
                f"that provides it (entry point group {self.group!r}), name its module in "
                "BATCHNB_PLUGINS, or call register_extractor()"
            )
        try:
            extractor = factory()
        except BatchnbError:
            raise
        except Exception as exc:
            raise ExtractorError(f"extractor {name!r} failed to start: {exc}") from exc
        if not isinstance(extractor, Extractor):
            raise ExtractorError(
                f"the factory of extractor {name!r} returned {type(extractor).__name__}, which "
                "lacks name, version or extract(document, schema)"
            )
        return extractor

    def names(self) -> tuple[str, ...]:
        """Names of the registered extractors, sorted."""
        self.load_plugins()
        with self._lock:
            return tuple(sorted(self._factories))

    def load_plugins(self) -> None:
        """Run every plugin's ``register`` once; later calls return at once.

        Raises
        ------
        ExtractorError
            A plugin cannot be imported or its ``register`` fails; the message names it.
            Plugins loaded before it stay registered, and the next call retries the rest.
        """
        if self._loaded:
            return
        with self._lock:
            if self._loaded:
                return
            for entry_point in entry_points(group=self.group):
                key = f"entry point {entry_point.name} = {entry_point.value!r}"
                self._load_once(key, entry_point.load)
            self._load_modules()
            self._loaded = True

    def _load_modules(self) -> None:
        if self._modules is None:
            return
        with self._lock:
            for module in self._modules():
                key = f"module {module!r} (BATCHNB_PLUGINS)"
                self._load_once(key, functools.partial(_module_register, module))

    def _load_once(self, key: str, load: Callable[[], Any]) -> None:
        """Import one plugin and call its ``register``; failures name the plugin."""
        if key in self._loaded_plugins:
            return
        try:
            register = load()
            register(self.register)
        except BatchnbError as exc:
            raise ExtractorError(f"extractor plugin {key} failed to register: {exc}") from exc
        except Exception as exc:
            raise ExtractorError(
                f"extractor plugin {key} failed to load: {type(exc).__name__}: {exc}. "
                "Fix, upgrade or uninstall it"
            ) from exc
        self._loaded_plugins.add(key)


def _module_register(module: str) -> Any:
    register = getattr(importlib.import_module(module), "register", None)
    if not callable(register):
        raise ExtractorError("it has no register(register_extractor) function")
    return register


def _configured_modules() -> list[str]:
    """Plugin modules named in the ``plugins`` setting (comma-separated)."""
    return list(load_settings().plugins)


def _describe(factory: ExtractorFactory) -> str:
    module = getattr(factory, "__module__", "?")
    return f"{module}.{getattr(factory, '__qualname__', repr(factory))}"


_DEFAULT = ExtractorRegistry(modules=_configured_modules)


def register_extractor(name: str, factory: ExtractorFactory, *, replace: bool = False) -> None:
    """Register an extractor factory in the default registry (plugins receive this function)."""
    _DEFAULT.register(name, factory, replace=replace)


def get_extractor(name: str) -> Extractor:
    """A new instance of the extractor called ``name`` (e.g. ``"offline"``)."""
    return _DEFAULT.get(name)


def extractor_names() -> tuple[str, ...]:
    """Names of all available extractors, plugins included, sorted."""
    return _DEFAULT.names()
