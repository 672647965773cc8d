"""The settings table and the one function that resolves it.

Every setting is a row of :data:`SETTINGS_TABLE` (name, type, default, help). Values come from,
in increasing precedence: the defaults below, the config file (TOML, ``$BATCHNB_HOME/batchnb.toml``
or the path in ``BATCHNB_CONFIG``), ``BATCHNB_<NAME>`` environment variables, and keyword
overrides given to :func:`load_settings`. The README's settings table is generated from the same
rows, and a test proves every setting is documented there.
"""

from __future__ import annotations

import dataclasses
import getpass
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from batchnb.errors import ConfigurationError


@dataclass(frozen=True)
class Setting:
    """One row of the settings table."""

    name: str
    type: type
    default: Any
    help: str

    @property
    def env_var(self) -> str:
        return f"BATCHNB_{self.name.upper()}"


SETTINGS_TABLE: tuple[Setting, ...] = (
    Setting(
        "home", str, "~/.batchnb", "Workspace folder: database, queue and stored files live here."
    ),
    Setting("config", str, "", "Config file (TOML). Default: batchnb.toml in the workspace."),
    Setting(
        "database_url",
        str,
        "",
        "SQLAlchemy URL. Default: SQLite file batchnb.db in the workspace (WAL, busy timeout).",
    ),
    Setting(
        "queue_url",
        str,
        "",
        "Huey storage. Default: SqliteHuey file queue.db in the workspace; redis://... selects "
        "a Redis-backed Huey with priorities.",
    ),
    Setting(
        "storage_url",
        str,
        "",
        "Where document bytes are stored, content-addressed. Default: folder files/ in the "
        "workspace; any fsspec URL.",
    ),
    Setting("plan", str, "local", "Intake limits preset: starter, plus, growth or local."),
    Setting(
        "lease_seconds", float, 60.0, "How long a worker's lease on an item lasts unless extended."
    ),
    Setting("worker_threads", int, 2, "Threads per worker process (one document each at a time)."),
    Setting(
        "heartbeat_seconds",
        float,
        5.0,
        "How often a worker records that it is alive; a worker silent for 3 heartbeats is gone.",
    ),
    Setting(
        "sqlite_busy_timeout_ms", int, 30000, "How long SQLite waits for a lock before failing."
    ),
    Setting(
        "temp_max_age_hours", float, 24.0, "Temporary files older than this are removed by cleanup."
    ),
    Setting(
        "plugins",
        str,
        "",
        "Comma-separated Python modules with a register(register_extractor) function, loaded "
        "besides the batchnb.extractors entry points.",
    ),
    Setting("user", str, "", "Acting user. Default: JUPYTERHUB_USER when set, else the OS user."),
    Setting(
        "health_max_failure_rate",
        float,
        0.5,
        "batchnb health fails when the share of failed items in the last hour is above this.",
    ),
    Setting(
        "health_max_pending_age_seconds",
        float,
        3600.0,
        "batchnb health fails when the oldest ready item has waited longer than this.",
    ),
    Setting(
        "openai_base_url",
        str,
        "https://api.openai.com/v1",
        "Base URL of the OpenAI-compatible server used by the openai extractor (OpenAI, Azure, "
        "Ollama http://localhost:11434/v1, vLLM, llama.cpp server).",
    ),
    Setting(
        "openai_api_key",
        str,
        "",
        "API key for the openai extractor; read from the environment or config file only, "
        "never stored in the database. Local servers usually need none.",
    ),
    Setting("openai_model", str, "gpt-4o-mini", "Model name sent to the OpenAI-compatible server."),
    Setting(
        "openai_timeout_seconds",
        float,
        60.0,
        "How long the openai extractor waits for one reply before retrying.",
    ),
    Setting(
        "openai_concurrency",
        int,
        4,
        "Most requests in flight at once to the OpenAI-compatible server, per process.",
    ),
    Setting(
        "admins",
        str,
        "",
        "Comma-separated users with the admin role: they may act on every user's batches.",
    ),
    Setting(
        "export_retention_hours",
        float,
        168.0,
        "Exports written to the workspace's exports/ folder are removed this long after they "
        "finish (files written to a path you name are yours and are kept).",
    ),
    Setting(
        "export_background_documents",
        int,
        5000,
        "Exports of more documents than this run on the exports queue (with progress) unless "
        "background= says otherwise.",
    ),
    Setting(
        "cache_url",
        str,
        "",
        "Cache for batch summaries, progress counts and analytics: memory:// (default, per "
        "process), redis://host:port/db (shared), or none.",
    ),
    Setting(
        "cache_ttl_seconds",
        float,
        300.0,
        "How long cached summaries and analytics live; service functions that change the "
        "rows invalidate them sooner.",
    ),
    Setting(
        "slow_query_ms",
        float,
        500.0,
        "SQL statements slower than this are logged (logger batchnb.db.slow) with their "
        "duration; 0 turns the log off.",
    ),
    Setting("db_pool_size", int, 5, "PostgreSQL: connections kept open per process."),
    Setting(
        "db_max_overflow",
        int,
        10,
        "PostgreSQL: extra connections opened under load beyond db_pool_size.",
    ),
    Setting(
        "db_pool_timeout_seconds",
        float,
        30.0,
        "PostgreSQL: how long to wait for a free pooled connection before failing.",
    ),
    Setting(
        "db_pool_recycle_seconds",
        float,
        1800.0,
        "PostgreSQL: pooled connections older than this are replaced (-1 never).",
    ),
)

_BY_NAME = {setting.name: setting for setting in SETTINGS_TABLE}


@dataclass(frozen=True)
class Settings:
    """Resolved settings. Build with :func:`load_settings`, never by hand."""

    home: Path
    config: str
    database_url: str
    queue_url: str
    storage_url: str
    plan: str
    lease_seconds: float
    worker_threads: int
    heartbeat_seconds: float
    sqlite_busy_timeout_ms: int
    temp_max_age_hours: float
    plugins: str
    user: str
    health_max_failure_rate: float
    health_max_pending_age_seconds: float
    openai_base_url: str
    openai_api_key: str = dataclasses.field(repr=False)  # keep the key out of logs
    openai_model: str
    openai_timeout_seconds: float
    openai_concurrency: int
    admins: str
    export_retention_hours: float
    export_background_documents: int
    cache_url: str
    cache_ttl_seconds: float
    slow_query_ms: float
    db_pool_size: int
    db_max_overflow: int
    db_pool_timeout_seconds: float
    db_pool_recycle_seconds: float

    @property
    def admin_users(self) -> frozenset[str]:
        """The users named in ``admins``."""
        return frozenset(name.strip() for name in self.admins.split(",") if name.strip())

    @property
    def exports_dir(self) -> Path:
        """Workspace folder for exports written without a path; expired files are removed."""
        return self.home / "exports"

    @property
    def temp_dir(self) -> Path:
        """Workspace folder for temporary files; cleaned by the periodic cleanup task."""
        return self.home / "tmp"

    def with_overrides(self, **overrides: Any) -> Settings:
        """A copy with some settings replaced (derived defaults are not recomputed)."""
        return dataclasses.replace(self, **overrides)


def _convert(setting: Setting, value: Any, source: str) -> Any:
    if setting.type is str:
        return str(value)
    try:
        return setting.type(value)
    except (TypeError, ValueError):
        raise ConfigurationError(
            f"{setting.env_var} from {source} must be {setting.type.__name__}, got {value!r}"
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
    for setting in SETTINGS_TABLE:
        if setting.name in overrides:
            raw, source = overrides[setting.name], "arguments"
        elif from_env(setting.name) is not None:
            raw, source = from_env(setting.name), setting.env_var
        elif setting.name in file_values:
            raw, source = file_values[setting.name], str(config_path)
        else:
            raw, source = setting.default, "defaults"
        values[setting.name] = _convert(setting, raw, source)

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
    if values["worker_threads"] < 1:
        raise ConfigurationError("BATCHNB_WORKER_THREADS must be at least 1")
    return Settings(**values)


def render_settings_table() -> str:
    """The settings table in Markdown, as it appears in the README (a test keeps them equal)."""
    lines = ["| variable | default | what it does |", "| --- | --- | --- |"]
    for setting in SETTINGS_TABLE:
        default = "(see text)" if setting.default == "" else f"`{setting.default}`"
        lines.append(f"| `{setting.env_var}` | {default} | {setting.help} |")
    return "\n".join(lines)
