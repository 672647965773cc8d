"""Extractors by name: built-ins and plugins registered through one path.

A plugin is a package declaring an entry point in the group ``batchnb.extractors``; the entry
point's object is a function ``register(register_extractor)`` that calls
``register_extractor(name, factory)`` for each extractor it provides. The built-ins are declared
the same way in batchnb's own ``pyproject.toml``. A plain module with a ``register`` function can
be named in the ``plugins`` setting (``BATCHNB_PLUGINS``) for extractors that are not packaged;
its names are seen only through settings that name the module, so the plugins of one workspace
do not show up in another's.

A factory is called with the :class:`~batchnb.config.Settings` of the workspace that uses it
when it takes a parameter (``factory(settings)``), and with nothing otherwise, so a class with a
no-argument constructor is a factory too (``register_extractor("x", MyExtractor)``). Extractors
read their configuration, their own ``extractor_options`` included, from those settings and
never from the process environment: a notebook's workspace pointed at a local server gets an
extractor talking to that server.

A plugin that cannot be imported, or whose ``register`` fails, disables only its own names: a
:class:`~batchnb.errors.PluginWarning` names it once, and it is listed in the error for an
unknown name and by :meth:`ExtractorRegistry.describe`. Plugins are loaded on first use, under
a lock, so worker threads may ask for extractors concurrently.

The registry builds instances; :class:`~batchnb.extract.pool.ExtractorPool` keeps one per name
for a workspace or worker, and closes them.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import inspect
import threading
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from batchnb.config import Settings, load_settings
from batchnb.errors import BatchnbError, ExtractorError, PluginWarning, UnknownExtractorError
from batchnb.extract.base import Extractor

ENTRY_POINT_GROUP = "batchnb.extractors"
BUILT_IN = "built in"
REGISTERED = "register_extractor() in this process"
_ENTRY_POINTS = ""  # the load key of the entry points: a module name is never empty

ExtractorFactory = Callable[..., Extractor]
"""Returns a ready extractor: called as ``factory(settings)``, or ``factory()`` when it takes
no parameter (often the extractor class itself)."""

RegisterExtractor = Callable[..., None]
"""What a plugin's ``register`` gets: ``register_extractor(name, factory, *, replace=False)``."""


@dataclass(frozen=True)
class ExtractorInfo:
    """One row of ``batchnb extractors``: an available extractor, or a plugin that failed.

    Parameters
    ----------
    name:
        The extractor's name; for a broken plugin, the plugin's (entry point or module) name.
    origin:
        Where it comes from: ``built in``, ``entry point of <distribution>==<version>``,
        ``module <name> (BATCHNB_PLUGINS)`` or ``register_extractor() in this process``.
    version:
        The extractor's ``version`` when it can be read without building it, else ``None``.
    needs:
        What it needs to work (its ``needs`` attribute), e.g. a server or an API key.
    error:
        Why a broken plugin failed to load; ``None`` for an available extractor.
    """

    name: str
    origin: str
    version: str | None = None
    needs: str | None = None
    error: str | None = None

    @property
    def broken(self) -> bool:
        """True for a plugin that failed to load."""
        return self.error is not None

    def as_dict(self) -> dict[str, Any]:
        """JSON-able form, for ``batchnb extractors --json``."""
        return dataclasses.asdict(self) | {"broken": self.broken}


@dataclass(frozen=True)
class _Entry:
    name: str
    factory: ExtractorFactory
    takes_settings: bool
    origin: str
    module: str | None = None
    """The BATCHNB_PLUGINS module it came from: only settings naming that module see it."""


@dataclass(frozen=True)
class _Plugin:
    """A plugin to load: how messages name it, and where its extractors come from."""

    label: str
    name: str
    origin: str
    load: Callable[[], Any]
    module: str | None = None


@dataclass(frozen=True)
class _Failure:
    plugin: _Plugin
    error: str


class ExtractorRegistry:
    """A table of extractor factories by name, filled from plugins on first use.

    Parameters
    ----------
    group:
        Entry point group whose ``register`` functions are called.
    """

    def __init__(self, group: str = ENTRY_POINT_GROUP) -> None:
        self.group = group
        # Keyed by (name, plugin module or None): two workspaces' modules may both offer a name.
        self._entries: dict[tuple[str, str | None], _Entry] = {}
        self._failures: list[_Failure] = []
        # Plugin keys (a module's name, or _ENTRY_POINTS): started under the lock, loaded after.
        self._started: set[str] = set()
        self._loaded: set[str] = set()
        # Re-entrant: a plugin's register() may call register() while loading holds the lock.
        self._lock = threading.RLock()

    def __repr__(self) -> str:
        return f"ExtractorRegistry(group={self.group!r})"

    def register(self, name: str, factory: ExtractorFactory, *, replace: bool = False) -> None:
        """Make ``factory`` available as ``name`` to every user of this registry.

        Raises
        ------
        ExtractorError
            ``name`` is taken by another factory and ``replace`` is false, or the factory is
            not callable or needs more than one argument.
        """
        self._add([(_entry(name, factory, REGISTERED), replace)])

    def build(self, name: str, settings: Settings) -> Extractor:
        """A new instance of ``name``, its factory given ``settings``.

        The plugin modules named in ``settings.plugins`` are loaded first. Prefer an
        :class:`~batchnb.extract.pool.ExtractorPool`, which builds each name once and closes it.

        Raises
        ------
        UnknownExtractorError
            ``name`` is unknown to these settings (the message lists the known names and the
            plugins that failed to load), or its factory failed or returned something that is
            not an extractor.
        BatchnbError
            The factory raised one itself (e.g. a missing optional dependency).
        """
        entry = self._find(name, settings.plugins)
        try:
            extractor = entry.factory(settings) if entry.takes_settings else entry.factory()
        except BatchnbError:
            raise
        except Exception as exc:
            raise UnknownExtractorError(f"extractor {name!r} failed to start: {exc}") from exc
        if not isinstance(extractor, Extractor):
            raise UnknownExtractorError(
                f"the factory of extractor {name!r} returned {type(extractor).__name__}, which "
                "lacks name, version or extract(document, schema)"
            )
        return extractor

    def check(self, name: str, settings: Settings) -> None:
        """Raise unless ``name`` can work with ``settings``; builds nothing.

        The name must be known to these settings' plugins, and the extractor class's optional
        ``check_settings(settings)`` (a classmethod or staticmethod) must pass: it finds a
        missing key, server or model before any document is queued.

        Raises
        ------
        UnknownExtractorError
            The name is unknown.
        ConfigurationError
            ``check_settings`` found the settings unusable; its message says what to set.
        """
        entry = self._find(name, settings.plugins)
        check = _class_attribute(entry.factory, "check_settings")
        if callable(check):
            check(settings)

    def names(self, modules: Iterable[str] = ()) -> tuple[str, ...]:
        """Names available with these plugin modules, sorted."""
        modules = tuple(modules)
        self.load(modules)
        with self._lock:
            return tuple(sorted({name for name, module in self._entries if _seen(module, modules)}))

    def describe(self, modules: Iterable[str] = ()) -> list[ExtractorInfo]:
        """The available extractors, then the plugins that failed to load, by name."""
        modules = tuple(modules)
        entries = [self._lookup(name, modules) for name in self.names(modules)]
        rows = [
            ExtractorInfo(
                name=entry.name,
                origin=entry.origin,
                version=_attribute(entry.factory, "version"),
                needs=_attribute(entry.factory, "needs"),
            )
            for entry in entries
            if entry is not None
        ]
        broken = [
            ExtractorInfo(name=f.plugin.name, origin=f.plugin.origin, error=f.error)
            for f in self._failures_seen(modules)
        ]
        return rows + sorted(broken, key=lambda row: row.name)

    def failures(self, modules: Iterable[str] = ()) -> tuple[str, ...]:
        """The plugins that failed to load (entry points, and these modules), with the error."""
        return tuple(f"{f.plugin.label}: {f.error}" for f in self._failures_seen(tuple(modules)))

    def load(self, modules: Iterable[str] = ()) -> None:
        """Load the entry points and each plugin module once; later calls return at once.

        A plugin that fails is recorded and warned about (:class:`PluginWarning`) and not
        tried again; the others load as usual.
        """
        wanted = (_ENTRY_POINTS, *modules)
        if self._loaded.issuperset(wanted):
            return
        with self._lock:
            for key in wanted:
                if key in self._started:
                    continue  # loaded, or being loaded by this thread (a plugin asking back)
                self._started.add(key)
                try:
                    if key == _ENTRY_POINTS:
                        for point in entry_points(group=self.group):
                            self._load_plugin(_entry_point_plugin(point))
                    else:
                        self._load_plugin(_module_plugin(key))
                finally:
                    self._loaded.add(key)

    def _find(self, name: str, modules: tuple[str, ...]) -> _Entry:
        self.load(modules)
        entry = self._lookup(name, modules)
        if entry is not None:
            return entry
        known = ", ".join(self.names(modules)) or "none"
        message = (
            f"unknown extractor {name!r}; known extractors: {known}. Install the package "
            f"that provides it (entry point group {self.group!r}), name its module in "
            "BATCHNB_PLUGINS, or call register_extractor()"
        )
        with self._lock:
            elsewhere = sorted(
                str(module) for known_name, module in self._entries if known_name == name
            )
        if elsewhere:
            message += (
                f". {name!r} comes from plugin module {', '.join(elsewhere)}, which the plugins "
                "setting in use does not name"
            )
        broken = self.failures(modules)
        if broken:
            message += ". Plugins that failed to load: " + "; ".join(broken)
        raise UnknownExtractorError(message)

    def _failures_seen(self, modules: tuple[str, ...]) -> list[_Failure]:
        with self._lock:
            return [f for f in self._failures if _seen(f.plugin.module, modules)]

    def _lookup(self, name: str, modules: tuple[str, ...]) -> _Entry | None:
        """The entry these modules see for ``name``: their own first, in order, then global."""
        with self._lock:
            for module in (*modules, None):
                entry = self._entries.get((name, module))
                if entry is not None:
                    return entry
        return None

    def _add(self, entries: list[tuple[_Entry, bool]]) -> None:
        """Add all of ``entries`` or, when a name is taken, none of them.

        A name is taken by a different factory under the same key, or, for a plugin module's
        name, by a global one (built-ins cannot be shadowed by accident).
        """
        with self._lock:
            for entry, replace in entries:
                current = self._entries.get((entry.name, entry.module))
                if current is None and entry.module is not None:
                    current = self._entries.get((entry.name, None))
                if current is not None and current.factory != entry.factory and not replace:
                    raise ExtractorError(
                        f"an extractor named {entry.name!r} is already registered "
                        f"({_describe(current.factory)}, {current.origin}); pick another name "
                        "or pass replace=True"
                    )
            for entry, replace in entries:
                key = (entry.name, entry.module)
                if key not in self._entries or replace:
                    self._entries[key] = entry

    def _load_plugin(self, plugin: _Plugin) -> None:
        """Import one plugin and register its names, all or none; a failure is recorded."""
        staged: list[tuple[_Entry, bool]] = []

        def stage(name: str, factory: ExtractorFactory, *, replace: bool = False) -> None:
            staged.append((_entry(name, factory, plugin.origin, plugin.module), replace))

        try:
            register = plugin.load()
            register(stage)
            self._add(staged)
        except Exception as exc:
            verb = "register" if isinstance(exc, BatchnbError) else "load"
            error = str(exc) if isinstance(exc, BatchnbError) else f"{type(exc).__name__}: {exc}"
            self._failures.append(_Failure(plugin, f"failed to {verb}: {error}"))
            warnings.warn(
                f"extractor plugin {plugin.label} failed to {verb}: {error}. Its extractors "
                "are unavailable, the others work; fix, upgrade or uninstall it",
                PluginWarning,
                stacklevel=2,
            )


def _seen(module: str | None, modules: tuple[str, ...]) -> bool:
    """Whether settings with these plugin modules see an entry from ``module``."""
    return module is None or module in modules


def _entry(name: str, factory: ExtractorFactory, origin: str, module: str | None = None) -> _Entry:
    """A checked table entry; whether the factory takes the settings is decided here, once."""
    if not isinstance(name, str) or not name.strip():
        raise ExtractorError(f"an extractor name must be a non-empty string, got {name!r}")
    if not callable(factory):
        raise ExtractorError(
            f"the factory for extractor {name!r} must be callable (e.g. the extractor class)"
        )
    return _Entry(name, factory, _takes_settings(name, factory), origin, module)


def _takes_settings(name: str, factory: ExtractorFactory) -> bool:
    """Whether ``factory`` is called with the settings: it requires one parameter, or its only
    optional one is named ``settings``. More required parameters cannot be satisfied."""
    try:
        parameters = list(inspect.signature(factory).parameters.values())
    except (TypeError, ValueError):  # some builtins have no signature: call them bare
        return False
    positional = [p for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    required = [
        p
        for p in parameters
        if p.default is p.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    ]
    if len(required) > 1 or any(p.kind is p.KEYWORD_ONLY for p in required):
        raise ExtractorError(
            f"the factory of extractor {name!r} ({_describe(factory)}) must take no argument "
            f"or one (the settings); it needs {', '.join(p.name for p in required)}"
        )
    return bool(required) or (bool(positional) and positional[0].name == "settings")


def _entry_point_plugin(point: EntryPoint) -> _Plugin:
    dist = getattr(point, "dist", None)
    dist_name = str(dist.metadata["Name"]) if dist is not None else ""
    if dist_name.lower() == "batchnb" or (dist is None and point.value.startswith("batchnb.")):
        origin = BUILT_IN
    elif dist is not None:
        origin = f"entry point of {dist_name}=={dist.version}"
    else:
        origin = f"entry point {point.value}"
    label = f"entry point {point.name} = {point.value!r}"
    return _Plugin(label, point.name, origin, point.load)


def _module_plugin(module: str) -> _Plugin:
    origin = f"module {module} (BATCHNB_PLUGINS)"
    label = f"module {module!r} (BATCHNB_PLUGINS)"
    return _Plugin(label, module, origin, functools.partial(_module_register, module), module)


def _module_register(module: str) -> Any:
    register = getattr(importlib.import_module(module), "register", None)
    if not callable(register):
        raise ExtractorError("it has no register(register_extractor) function")
    return register


def _class_attribute(factory: ExtractorFactory, attribute: str) -> Any:
    """An attribute of the class the factory builds, read without building it.

    The factory itself (a class), or the class a bound classmethod belongs to
    (``MyExtractor.from_settings``); ``None`` for other callables.
    """
    for target in (factory, getattr(factory, "__self__", None)):
        if inspect.isclass(target) and getattr(target, attribute, None) is not None:
            return getattr(target, attribute)
    return None


def _attribute(factory: ExtractorFactory, attribute: str) -> str | None:
    """A non-empty string class attribute of what the factory builds (``version``, ``needs``)."""
    value = _class_attribute(factory, attribute)
    return value if isinstance(value, str) and value else None


def _describe(factory: ExtractorFactory) -> str:
    module = getattr(factory, "__module__", "?")
    return f"{module}.{getattr(factory, '__qualname__', repr(factory))}"


_DEFAULT = ExtractorRegistry()


def default_registry() -> ExtractorRegistry:
    """The process's registry: entry points, ``BATCHNB_PLUGINS`` modules, register_extractor()."""
    return _DEFAULT


def register_extractor(name: str, factory: ExtractorFactory, *, replace: bool = False) -> None:
    """Register an extractor factory in the default registry, for every workspace.

    ``factory`` is called as ``factory(settings)`` when it takes a parameter, else
    ``factory()``; plugins packaged with an entry point receive this function as their
    ``register`` argument.
    """
    _DEFAULT.register(name, factory, replace=replace)


def get_extractor(name: str, settings: Settings | None = None) -> Extractor:
    """A new instance of the extractor called ``name`` (e.g. ``"offline"``), for scripts.

    This is the convenience for use outside a workspace: without ``settings`` it reads
    :func:`~batchnb.config.load_settings` (environment and config file), and each call builds
    a new instance that nothing closes. A workspace and its workers use their
    :class:`~batchnb.extract.pool.ExtractorPool` instead, which builds each extractor once
    from the workspace's own settings and closes it when they stop.
    """
    return _DEFAULT.build(name, load_settings() if settings is None else settings)


def extractor_names(settings: Settings | None = None) -> tuple[str, ...]:
    """Names of the available extractors, plugins included, sorted.

    The plugin modules are those of ``settings`` (default: :func:`~batchnb.config.load_settings`).
    """
    settings = load_settings() if settings is None else settings
    return _DEFAULT.names(settings.plugins)
