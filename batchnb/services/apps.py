"""Serving the notebooks as apps: Voila with batchnb's template, and a worker beside it.

``batchnb app`` calls :func:`serve_apps`. The apps are the notebooks of the repository's
``notebooks/`` folder, shipped inside the wheel as ``batchnb/_notebooks`` (an editable install
reads the repository's); the Voila template and its ``voila.json`` are installed with the wheel
under ``share/jupyter/voila/templates/batchnb``, where Voila looks for templates.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import webbrowser
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from batchnb.errors import ConfigurationError, MissingDependencyError
from batchnb.services.health import live_workers
from batchnb.services.supervisor import die_with_parent
from batchnb.services.workspace import Workspace

_PACKAGE = Path(__file__).resolve().parents[1]

TEMPLATE = "batchnb"
"""The Voila template's name (``templates/batchnb`` in the repository)."""

FIRST_APP = "upload.ipynb"
"""The app ``batchnb app`` opens: the batch wizard."""

APPS = (
    {"file": "upload.ipynb", "title": "New batch"},
    {"file": "batches.ipynb", "title": "Batches"},
    {"file": "analytics.ipynb", "title": "Analytics"},
)
"""The apps the title bar links, in its order."""

READY_TIMEOUT = 60.0
"""Seconds Voila gets to answer before ``batchnb app`` gives up."""


def apps_dir() -> Path:
    """The folder of the app notebooks: the wheel's copy, else the repository's."""
    installed = _PACKAGE / "_notebooks"
    return installed if installed.is_dir() else _PACKAGE.parent / "notebooks"


def template_dir() -> Path:
    """Where the Voila template is installed (``make setup`` / ``pip install`` put it there).

    Raises
    ------
    ConfigurationError
        When no Jupyter data folder holds it (batchnb was not installed with pip).
    """
    from jupyter_core.paths import jupyter_path

    for folder in jupyter_path("voila", "templates", TEMPLATE):
        if (Path(folder) / "index.html.j2").is_file():
            return Path(folder)
    raise ConfigurationError(
        f"the Voila template {TEMPLATE!r} is not installed: install batchnb with pip "
        "(pip install -e '.[apps]' in a clone) so that it lands in share/jupyter/voila/templates"
    )


def voila_args(folder: Path, run_config: Path, *, host: str, port: int) -> list[str]:
    """The command line that serves ``folder`` with the template.

    Voila reads ``voila.json`` from each folder of ``config_file_paths``, the first with the
    highest priority: ``run_config`` (this run's title bar settings, see
    :func:`write_run_config`), the current folder and Jupyter's config folders (a site's own
    settings), then the template's (the defaults: sources stripped, tracebacks hidden, kernel
    culling, websocket messages large enough for the dropzone's chunks).
    """
    from jupyter_core.paths import jupyter_config_path

    config_paths = [str(run_config), os.getcwd(), *jupyter_config_path(), str(template_dir())]
    return [
        sys.executable,
        "-m",
        "voila",
        str(folder),
        "--no-browser",
        f"--Voila.ip={host}",
        f"--port={port}",
        "--Voila.port_retries=0",
        *(f"--Voila.config_file_paths={path}" for path in config_paths),
    ]


def write_run_config(folder: Path, *, user: str, docs_url: str | None = None) -> Path:
    """Write ``folder/voila.json`` with what the template's title bar shows: the apps, the
    user's name and where Help leads. Returns ``folder``."""
    settings: dict[str, object] = {"apps": list(APPS), "user": user}
    if docs_url:
        settings["docs_url"] = docs_url
    config = {"VoilaConfiguration": {"resources": {"batchnb": settings}}}
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "voila.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    return folder


@dataclass
class AppServer:
    """Voila serving the apps, and the worker started for them (if one was)."""

    url: str
    voila: subprocess.Popen[bytes]
    worker: subprocess.Popen[bytes] | None = None
    reused_worker: bool = False
    _stopped: bool = field(default=False, repr=False)

    def stop(self, timeout: float = 15.0) -> None:
        """Stop Voila (and its kernels), then the worker started for it: SIGTERM, then
        SIGKILL after ``timeout`` seconds."""
        if self._stopped:
            return
        self._stopped = True
        for process in (self.voila, self.worker):
            if process is not None:
                _stop(process, timeout)

    def wait(self) -> int:
        """Block until Voila exits; returns its exit code."""
        return self.voila.wait()


def start_apps(
    workspace: Workspace,
    *,
    folder: Path | None = None,
    host: str = "127.0.0.1",
    port: int = 8866,
    worker: bool = True,
    docs_url: str | None = None,
    log: Callable[[str], None] = lambda line: None,
) -> AppServer:
    """Start Voila on the apps (and a ``batchnb worker`` unless one runs) and wait until it
    answers. The caller stops both with :meth:`AppServer.stop`.

    Raises
    ------
    MissingDependencyError
        Voila is not installed.
    ConfigurationError
        The template is missing, or Voila did not start (its last lines say why).
    """
    if importlib.util.find_spec("voila") is None:
        raise MissingDependencyError("voila", "apps", "batchnb app")
    folder = (folder or apps_dir()).resolve()
    if not folder.is_dir():
        raise ConfigurationError(f"no app folder at {folder}")
    settings = workspace.settings
    docs_url = docs_url or settings.docs_url or None
    env = dict(os.environ, BATCHNB_HOME=str(settings.home))
    if docs_url:
        # The apps' kernels link their help panels to the same site.
        env["BATCHNB_DOCS_URL"] = docs_url
    run_config = write_run_config(settings.home / "app", user=settings.user, docs_url=docs_url)
    args = voila_args(folder, run_config, host=host, port=port)
    started_worker = None
    reused = bool(live_workers(workspace))
    if worker and not reused:
        started_worker = _spawn([sys.executable, "-m", "batchnb", "worker"], env)
        log(f"worker started (pid {started_worker.pid})")
    elif reused:
        log("a worker is already running: using it")
    voila = _spawn(args, env, cwd=folder)
    server = AppServer(
        url=f"http://{_browsable(host)}:{port}/voila/render/{FIRST_APP}",
        voila=voila,
        worker=started_worker,
        reused_worker=reused,
    )
    try:
        _wait_ready(server)
    except BaseException:
        server.stop()
        raise
    return server


def serve_apps(
    workspace: Workspace,
    *,
    folder: Path | None = None,
    host: str = "127.0.0.1",
    port: int = 8866,
    worker: bool = True,
    docs_url: str | None = None,
    open_browser: bool = True,
    log: Callable[[str], None] = print,
) -> int:
    """:func:`start_apps` (same options), print the URL, open it, and serve until Ctrl-C or
    SIGTERM; then stop Voila and the worker. Returns Voila's exit code (0 after Ctrl-C)."""
    server = start_apps(
        workspace, folder=folder, host=host, port=port, worker=worker, docs_url=docs_url, log=log
    )
    log(f"batchnb apps: {server.url}")
    log("Ctrl-C stops the apps" + ("" if server.worker is None else " and the worker"))
    if open_browser:
        webbrowser.open(server.url)
    with _terminate_as_interrupt():
        try:
            code = server.wait()
        except KeyboardInterrupt:
            code = 0
        finally:
            server.stop()
    return code


def _spawn(
    args: list[str], env: dict[str, str], cwd: Path | None = None
) -> subprocess.Popen[bytes]:
    # A session of its own: Ctrl-C in the terminal reaches batchnb app, which stops both in
    # order, instead of every process at once. On Linux they also stop if batchnb app is
    # killed outright (preexec_fn only makes one system call, see die_with_parent).
    linux = sys.platform.startswith("linux")
    return subprocess.Popen(
        args,
        env=env,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
        preexec_fn=die_with_parent if linux else None,
    )


def _browsable(host: str) -> str:
    """The address a browser on this machine uses for a server listening on ``host``."""
    return "127.0.0.1" if host in ("", "0.0.0.0") else f"[{host}]" if ":" in host else host


def _wait_ready(server: AppServer) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if server.voila.poll() is not None:
            raise ConfigurationError(f"Voila exited at start (code {server.voila.returncode})")
        try:
            with urllib.request.urlopen(server.url, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.2)  # polling interval while Voila starts
    raise ConfigurationError(f"Voila did not answer at {server.url} within {READY_TIMEOUT:.0f} s")


def _stop(process: subprocess.Popen[bytes], timeout: float) -> None:
    if process.poll() is not None:
        return
    # Voila shuts its kernels down on SIGTERM; a worker finishes or releases its items.
    process.terminate()
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5)


@contextlib.contextmanager
def _terminate_as_interrupt() -> Iterator[None]:
    """SIGTERM (systemd, docker stop) stops the apps the way Ctrl-C does."""

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
