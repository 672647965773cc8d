"""The settings: declared once, as the fields of :class:`Settings`, and resolved by one function.

Each field carries its default and its help text (:func:`setting`); the type comes from the
annotation. Values come from, in increasing precedence: the defaults, the config file (TOML,
``$BATCHNB_HOME/batchnb.toml`` or the path in ``BATCHNB_CONFIG``), ``BATCHNB_<NAME>``
environment variables, and keyword overrides given to :func:`load_settings`. Values are parsed
here, once: lists become tuples, booleans accept only true/false words, JSON tables become dicts.
The README's settings table is rendered from the same fields, and a test keeps them equal.
"""

from __future__ import annotations

import dataclasses
import getpass
import json
import os
import tomllib
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from batchnb.errors import ConfigurationError

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


def setting(default: Any, help: str, *, secret: bool = False) -> Any:
    """Declare one setting: its default and its help text (shown in the README and CLI).

    ``secret`` settings are left out of ``repr`` and shown masked by :meth:`Settings.describe`.
    """
    metadata = {"help": help, "secret": secret}
    if isinstance(default, dict):
        frozen = dict(default)
        return dataclasses.field(default_factory=lambda: dict(frozen), metadata=metadata)
    return dataclasses.field(default=default, repr=not secret, metadata=metadata)


@dataclass(frozen=True)
class Settings:
    """Resolved settings. Build with :func:`load_settings`, never by hand."""

    home: Path = setting(
        Path("~/.batchnb"), "Workspace folder: database, queue and stored files live here."
    )
    config: str = setting("", "Config file (TOML). Default: batchnb.toml in the workspace.")
    database_url: str = setting(
        "",
        "SQLAlchemy URL. Default: SQLite file batchnb.db in the workspace (WAL, busy timeout).",
    )
    queue_url: str = setting(
        "",
        "Huey storage. Default: SqliteHuey file queue.db in the workspace; redis://... selects "
        "a Redis-backed Huey with priorities.",
    )
    storage_url: str = setting(
        "",
        "Where document bytes are stored, content-addressed. Default: folder files/ in the "
        "workspace; any fsspec URL.",
    )
    plan: str = setting("local", "Intake limits preset: starter, plus, growth or local.")
    lease_seconds: float = setting(
        60.0, "How long a worker's lease on an item lasts unless extended."
    )
    worker_threads: int = setting(2, "Threads per worker process (one document each at a time).")
    heartbeat_seconds: float = setting(
        5.0,
        "How often a worker records that it is alive; a worker silent for 3 heartbeats is gone.",
    )
    recovery_seconds: float = setting(
        5.0,
        "How often each worker tries to run the recovery round (requeue items whose lease "
        "expired, re-send lost queue messages, repair sweeps), at most a third of the lease; "
        "one worker at a time runs it.",
    )
    sqlite_busy_timeout_ms: int = setting(30000, "How long SQLite waits for a lock before failing.")
    temp_max_age_hours: float = setting(
        24.0, "Temporary files older than this are removed by cleanup."
    )
    plugins: tuple[str, ...] = setting(
        (),
        "Comma-separated Python modules with a register(register_extractor) function, loaded "
        "besides the batchnb.extractors entry points (see docs/plugins.md).",
    )
    extractor_options: dict[str, Any] = setting(
        {},
        "Options per extractor, handed to its factory: a JSON object (a TOML table in the "
        'config file) such as {"mymodel": {"model_path": "/models/x.gguf"}}.',
    )
    result_cache: bool = setting(
        True,
        "Reuse the stored result of the same bytes, parser, schema and extractor version; "
        "false (or --no-cache) extracts again, e.g. while developing an extractor.",
    )
    ocr_engine: str = setting(
        "auto",
        "OCR for images and scanned PDF pages: tesseract; rapidocr (pip install "
        "'batchnb[rapidocr]': more accurate on receipts, several times slower); fallback: "
        "Tesseract, rapidocr again for pages lacking an amount or read with low confidence; "
        "auto: rapidocr when installed, else tesseract.",
    )
    user: str = setting("", "Acting user. Default: JUPYTERHUB_USER when set, else the OS user.")
    docs_url: str = setting(
        "",
        "Base URL of batchnb's documentation site (built from docs/ with mkdocs), where the "
        "apps' Help and the help panels link. Empty: help panels name the docs page without a "
        "link, and the apps' Help opens the help app.",
    )
    health_max_failure_rate: float = setting(
        0.5, "batchnb health fails when the share of failed items in the last hour is above this."
    )
    health_max_pending_age_seconds: float = setting(
        3600.0, "batchnb health fails when the oldest ready item has waited longer than this."
    )
    health_stall_seconds: float = setting(
        30.0,
        "batchnb health reports a stall when items have been due this long, live consumers have "
        "free threads and no item was leased in this time.",
    )
    openai_base_url: str = setting(
        "https://api.openai.com/v1",
        "Base URL of the OpenAI-compatible server used by the openai extractor (OpenAI, Azure, "
        "Ollama http://localhost:11434/v1, vLLM, llama.cpp server).",
    )
    openai_api_key: str = setting(
        "",
        "API key for the openai extractor; read from the environment or config file only, "
        "never stored in the database. Local servers usually need none.",
        secret=True,
    )
    openai_model: str = setting("gpt-4o-mini", "Model name sent to the OpenAI-compatible server.")
    openai_timeout_seconds: float = setting(
        60.0, "How long the openai extractor waits for one reply before retrying."
    )
    openai_concurrency: int = setting(
        4, "Most requests in flight at once to the OpenAI-compatible server, per process."
    )
    admins: frozenset[str] = setting(
        frozenset(),
        "Comma-separated users with the admin role: they may act on every user's batches.",
    )
    export_retention_hours: float = setting(
        168.0,
        "Exports written to the workspace's exports/ folder are removed this long after they "
        "finish (files written to a path you name are yours and are kept).",
    )
    export_background_documents: int = setting(
        5000,
        "Exports of more documents than this run on the exports queue (with progress) unless "
        "background= says otherwise.",
    )
    cache_url: str = setting(
        "",
        "Cache for batch summaries, progress counts and analytics: memory:// (default, per "
        "process), redis://host:port/db (shared), or none.",
    )
    cache_ttl_seconds: float = setting(
        300.0,
        "How long cached summaries and analytics live; service functions that change the "
        "rows invalidate them sooner.",
    )
    slow_query_ms: float = setting(
        500.0,
        "SQL statements slower than this are logged (logger batchnb.db.slow) with their "
        "duration; 0 turns the log off.",
    )
    db_pool_size: int = setting(5, "PostgreSQL: connections kept open per process.")
    db_max_overflow: int = setting(
        10, "PostgreSQL: extra connections opened under load beyond db_pool_size."
    )
    db_pool_timeout_seconds: float = setting(
        30.0, "PostgreSQL: how long to wait for a free pooled connection before failing."
    )
    db_pool_recycle_seconds: float = setting(
        1800.0, "PostgreSQL: pooled connections older than this are replaced (-1 never)."
    )
    db_lock_timeout_seconds: float = setting(
        10.0,
        "PostgreSQL: a statement waiting this long for a row lock fails instead of waiting on "
        "(a worker then tries the same step again shortly; 0 waits for ever).",
    )
    db_idle_in_transaction_seconds: float = setting(
        30.0,
        "PostgreSQL: a session idle this long inside a transaction (its process frozen or "
        "gone) is ended by the server, which releases its locks (0 never).",
    )

    @property
    def exports_dir(self) -> Path:
        """Workspace folder for exports written without a path; expired files are removed."""
        return self.home / "exports"

    @property
    def temp_dir(self) -> Path:
        """Workspace folder for temporary files; cleaned by the periodic cleanup task."""
        return self.home / "tmp"

    def options_for(self, extractor: str) -> dict[str, Any]:
        """The ``extractor_options`` entry of one extractor (empty when it has none)."""
        options = self.extractor_options.get(extractor, {})
        return dict(options) if isinstance(options, Mapping) else {}

    def describe(self) -> dict[str, Any]:
        """Every setting by name, JSON-able, with secrets masked (for ``batchnb config``)."""
        shown: dict[str, Any] = {}
        for declared in SETTINGS_TABLE:
            value = getattr(self, declared.name)
            if declared.secret:
                value = "***" if value else ""
            elif isinstance(value, Path):
                value = str(value)
            elif isinstance(value, tuple | frozenset):
                value = sorted(value) if isinstance(value, frozenset) else list(value)
            shown[declared.name] = value
        return shown


@dataclass(frozen=True)
class Setting:
    """One row of the settings table, read off a field of :class:`Settings`."""

    name: str
    type: Any
    default: Any
    help: str
    secret: bool = False

    @property
    def env_var(self) -> str:
        return f"BATCHNB_{self.name.upper()}"


def _table() -> tuple[Setting, ...]:
    hints = typing.get_type_hints(Settings)
    rows = []
    for spec in dataclasses.fields(Settings):
        factory = spec.default_factory
        default = factory() if callable(factory) else spec.default
        rows.append(
            Setting(
                spec.name, hints[spec.name], default, spec.metadata["help"], spec.metadata["secret"]
            )
        )
    return tuple(rows)


SETTINGS_TABLE: tuple[Setting, ...] = _table()
"""Every setting, in declaration order (the order of the README's table)."""

_BY_NAME = {declared.name: declared for declared in SETTINGS_TABLE}


def _items(value: Any, declared: Setting, source: str) -> list[str]:
    """The entries of a list setting: comma-separated text or a list of strings."""
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    if isinstance(value, list | tuple | set | frozenset):
        return [str(part).strip() for part in value if str(part).strip()]
    raise ConfigurationError(
        f"{declared.env_var} from {source} must be comma-separated names, got {value!r}"
    )


def _convert(declared: Setting, value: Any, source: str) -> Any:
    """``value`` as the setting's type; a clear error naming the setting otherwise."""
    kind = declared.type
    origin = typing.get_origin(kind)
    if kind is bool:
        if isinstance(value, bool):
            return value
        word = str(value).strip().lower()
        if word in _TRUE | _FALSE:
            return word in _TRUE
        raise ConfigurationError(
            f"{declared.env_var} from {source} must be true or false, got {value!r}"
        )
    if origin is tuple:
        return tuple(_items(value, declared, source))
    if origin is frozenset:
        return frozenset(_items(value, declared, source))
    if origin is dict:
        if isinstance(value, str):
            try:
                value = json.loads(value) if value.strip() else {}
            except ValueError as exc:
                raise ConfigurationError(
                    f"{declared.env_var} from {source} must be a JSON object: {exc}"
                ) from None
        if not isinstance(value, Mapping):
            raise ConfigurationError(
                f"{declared.env_var} from {source} must be a JSON object (a table), got {value!r}"
            )
        return dict(value)
    if kind is str:
        return str(value)
    if kind is Path:
        return Path(str(value))
    if isinstance(value, bool):  # int(True) == 1: a boolean is no number of seconds
        raise ConfigurationError(
            f"{declared.env_var} from {source} must be {kind.__name__}, got {value!r}"
        )
    try:
        return kind(value)
    except (TypeError, ValueError):
        raise ConfigurationError(
            f"{declared.env_var} from {source} must be {kind.__name__}, got {value!r}"
        ) from None


def _read_config_file(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            data = tomllib.load(handle)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(f"config file {path} is not valid TOML: {exc}") from None
    section = data.get("batchnb", data)
    unknown = sorted(set(section) - set(_BY_NAME))
    if unknown:
        raise ConfigurationError(
            f"config file {path} has unknown settings {unknown}; known: {sorted(_BY_NAME)}"
        )
    return dict(section)


def _default_user() -> str:
    hub_user = os.environ.get("JUPYTERHUB_USER")
    if hub_user:
        return hub_user
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def load_settings(environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
    """Resolve every setting from defaults, config file, environment and ``overrides``.

    Parameters
    ----------
    environ:
        The environment to read ``BATCHNB_*`` variables from; ``os.environ`` by default.
    overrides:
        Setting names mapped to values that win over everything else.
    """
    env = os.environ if environ is None else environ
    unknown = sorted(set(overrides) - set(_BY_NAME))
    if unknown:
        raise ConfigurationError(f"unknown settings {unknown}; known: {sorted(_BY_NAME)}")

    def from_env(name: str) -> str | None:
        value = env.get(_BY_NAME[name].env_var)
        return value if value not in (None, "") else None

    home_raw = overrides.get("home") or from_env("home") or _BY_NAME["home"].default
    home = Path(str(home_raw)).expanduser().resolve()
    config_raw = overrides.get("config") or from_env("config")
    config_path = Path(config_raw).expanduser() if config_raw else home / "batchnb.toml"
    if config_raw and not config_path.is_file():
        raise ConfigurationError(f"BATCHNB_CONFIG names {config_path}, which does not exist")
    file_values = _read_config_file(config_path) if config_path.is_file() else {}

    values: dict[str, Any] = {}
    for declared in SETTINGS_TABLE:
        if declared.name in overrides:
            raw, source = overrides[declared.name], "arguments"
        elif from_env(declared.name) is not None:
            raw, source = from_env(declared.name), declared.env_var
        elif declared.name in file_values:
            raw, source = file_values[declared.name], str(config_path)
        else:
            raw, source = declared.default, "defaults"
        values[declared.name] = _convert(declared, raw, source)

    values["home"] = home
    values["config"] = str(config_path)
    if not values["database_url"]:
        values["database_url"] = f"sqlite:///{home / 'batchnb.db'}"
    if not values["queue_url"]:
        values["queue_url"] = f"sqlite:///{home / 'queue.db'}"
    if not values["storage_url"]:
        values["storage_url"] = str(home / "files")
    if not values["user"]:
        values["user"] = _default_user()
    if values["lease_seconds"] <= 0:
        raise ConfigurationError("BATCHNB_LEASE_SECONDS must be positive")
    if values["recovery_seconds"] <= 0:
        raise ConfigurationError("BATCHNB_RECOVERY_SECONDS must be positive")
    if values["worker_threads"] < 1:
        raise ConfigurationError("BATCHNB_WORKER_THREADS must be at least 1")
    return Settings(**values)


def render_settings_table() -> str:
    """The settings table in Markdown, as it appears in the README (a test keeps them equal)."""
    lines = ["| variable | default | what it does |", "| --- | --- | --- |"]
    for declared in SETTINGS_TABLE:
        lines.append(f"| `{declared.env_var}` | {_shown_default(declared)} | {declared.help} |")
    return "\n".join(lines)


def _shown_default(declared: Setting) -> str:
    default = declared.default
    if default in ("", (), frozenset(), {}):
        return "(see text)" if declared.type is str else "(none)"
    if isinstance(default, bool):
        return f"`{str(default).lower()}`"
    return f"`{default}`"
