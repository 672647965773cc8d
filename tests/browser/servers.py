"""Jupyter servers (JupyterLab, Voila) and ``batchnb worker`` processes for the browser tests.

Each process is started from the project's virtualenv with an environment of its own (a
temporary ``BATCHNB_HOME``, Jupyter config, runtime and IPython folders), so a test run never
reads or writes the developer's settings. Jupyter's data path is left alone: the installed
labextensions (anywidget, the widgets manager) are found there. Readiness is polled over HTTP.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

BIN = Path(sys.executable).parent
"""The virtualenv's scripts: ``jupyter``, ``voila``, ``batchnb``."""

CHROMIUM = Path("/usr/bin/chromium")
"""Debian's Chromium (``make system-packages``); Playwright's own browsers are not used."""

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    # Without these Chromium calls Google's services at start; this closed network refuses
    # the connections and the refusals would show up as noise, or stalls.
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

START_TIMEOUT = 90.0
"""Seconds a server gets to answer HTTP; JupyterLab takes 5-15 s on 2 busy cores."""


def free_port() -> int:
    """A TCP port on the loopback interface that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def isolated_env(home: Path, state: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of a server or worker: ``BATCHNB_HOME`` = ``home``, Jupyter state in
    ``state``, no ``BATCHNB_*`` setting inherited from the caller (test settings excepted)."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("BATCHNB_") or name.startswith("BATCHNB_TEST_")
    }
    for name in ("JUPYTER_CONFIG_DIR", "JUPYTER_RUNTIME_DIR", "IPYTHONDIR"):
        path = state / name.lower()
        path.mkdir(parents=True, exist_ok=True)
        env[name] = str(path)
    env["BATCHNB_HOME"] = str(home)
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


@dataclass
class Process:
    """A started process whose output goes to a log file, stopped by :meth:`stop`."""

    name: str
    args: list[str]
    env: dict[str, str]
    log_path: Path
    cwd: Path | None = None
    stop_signal: int = signal.SIGTERM
    popen: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("wb")
        self.popen = subprocess.Popen(
            self.args,
            env=self.env,
            cwd=self.cwd,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        log.close()

    @property
    def pid(self) -> int:
        assert self.popen is not None, f"{self.name} was not started"
        return self.popen.pid

    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def log(self) -> str:
        """Everything the process wrote so far."""
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def stop(self, timeout: float = 15.0) -> None:
        """``stop_signal``, then SIGKILL after ``timeout`` seconds.

        The whole process group goes: a Jupyter server's kernels are its children.
        """
        if self.popen is None or self.popen.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, self.stop_signal)
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait(5)
        # Kernels the server could not shut down are in its process group too.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGKILL)


@dataclass
class JupyterServer(Process):
    """A JupyterLab or Voila server on ``127.0.0.1:port``."""

    port: int = 0
    ready_path: str = "/"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_ready(self, timeout: float = START_TIMEOUT) -> None:
        """Poll ``ready_path`` until it answers 200; fail with the log if the process dies."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.running():
                raise RuntimeError(f"{self.name} exited at start:\n{self.log()}")
            try:
                with urllib.request.urlopen(self.url + self.ready_path, timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.1)  # polling interval, not a wait for state
        raise RuntimeError(f"{self.name} did not answer within {timeout:.0f} s:\n{self.log()}")

    def stop(self, timeout: float = 15.0) -> None:
        """Stop the server, then any kernel it left behind (kernels have sessions of their own)."""
        kernels = self.kernel_pids() if self.running() else []
        super().stop(timeout)
        for pid in kernels:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def close_sessions(self) -> None:
        """Shut down every notebook session (and its kernel) through the REST API."""
        with urllib.request.urlopen(f"{self.url}/api/sessions", timeout=10) as response:
            sessions = json.load(response)
        for session in sessions:
            request = urllib.request.Request(
                f"{self.url}/api/sessions/{session['id']}", method="DELETE"
            )
            urllib.request.urlopen(request, timeout=30).close()

    def kernel_pids(self) -> list[int]:
        """Process ids of the kernels this server started (its children running ipykernel)."""
        return [pid for pid in _children(self.pid) if b"ipykernel" in _cmdline(pid)]


def start_lab(
    root: Path, env: dict[str, str], log_path: Path, *, app: str = "lab"
) -> JupyterServer:
    """JupyterLab (or, with ``app="notebook"``, Jupyter Notebook 7) serving ``root``: no token
    (nor password: the config folder is empty), no XSRF check, no update or news checks."""
    _write_lab_settings(Path(env["JUPYTER_CONFIG_DIR"]))
    port = free_port()
    server = JupyterServer(
        name="jupyterlab" if app == "lab" else "notebook7",
        args=[
            str(BIN / "jupyter"),
            app,
            "--no-browser",
            f"--port={port}",
            "--ServerApp.ip=127.0.0.1",
            "--ServerApp.port_retries=0",
            "--IdentityProvider.token=",
            "--ServerApp.disable_check_xsrf=True",
            f"--ServerApp.root_dir={root}",
            _notary(env),
            # The machine has no internet: no news feed, no PyPI update check.
            "--LabApp.news_url=",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
            # CI containers run as root; Jupyter refuses that unless told.
            *(["--allow-root"] if os.geteuid() == 0 else []),
        ],
        env=env,
        log_path=log_path,
        cwd=root,
        port=port,
        ready_path="/api/status",
    )
    server.start()
    server.wait_ready()
    return server


def _notary(env: dict[str, str]) -> str:
    """Notebook signatures kept with the server's state, not in the user's Jupyter data folder
    (which stays the search path for labextensions)."""
    return f"--NotebookNotary.data_dir={env['JUPYTER_RUNTIME_DIR']}"


def _write_lab_settings(config_dir: Path) -> None:
    """User settings of the test JupyterLab: no "get notified about Jupyter news?" toast over
    the notebook (the machine has no internet to fetch news from anyway)."""
    folder = config_dir / "lab" / "user-settings" / "@jupyterlab" / "apputils-extension"
    folder.mkdir(parents=True, exist_ok=True)
    settings = {"fetchNews": "false", "checkForUpdates": False}
    (folder / "notification.jupyterlab-settings").write_text(json.dumps(settings))


def start_voila(root: Path, env: dict[str, str], log_path: Path) -> JupyterServer:
    """Voila serving the notebooks of ``root`` at ``/voila/render/NAME.ipynb``."""
    port = free_port()
    server = JupyterServer(
        name="voila",
        args=[
            str(BIN / "voila"),
            str(root),
            "--no-browser",
            f"--port={port}",
            "--Voila.ip=127.0.0.1",
            "--Voila.port_retries=0",
            _notary(env),
            # A closed page's kernel lives on (Voila's shutdown request on unload is refused
            # for want of an _xsrf token): cull kernels idle and unconnected for 2 minutes, so
            # a session of tests does not pile them up.
            "--MappingKernelManager.cull_idle_timeout=120",
            "--MappingKernelManager.cull_interval=30",
            # Notebook 7's JupyterLab extension ("Open in Notebook" buttons) needs JupyterLab's
            # document registry, which a Voila page does not share: loaded there it only throws
            # a module federation error. batchnb's Voila setup leaves it out the same way.
            "--VoilaConfiguration.extension_denylist=@jupyter-notebook/lab-extension",
        ],
        env=env,
        log_path=log_path,
        cwd=root,
        port=port,
        ready_path="/",
    )
    server.start()
    server.wait_ready()
    return server


def start_worker(env: dict[str, str], log_path: Path) -> Process:
    """A real ``batchnb worker`` on the workspace of ``env``."""
    worker = Process(
        name="worker", args=[str(BIN / "batchnb"), "worker"], env=env, log_path=log_path
    )
    worker.start()
    deadline = time.monotonic() + START_TIMEOUT
    # The worker prints "worker ID on HOME" once its consumer is built.
    while "worker " not in worker.log():
        if not worker.running():
            raise RuntimeError(f"batchnb worker exited at start:\n{worker.log()}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"batchnb worker did not start:\n{worker.log()}")
        time.sleep(0.1)
    return worker


def _children(pid: int) -> list[int]:
    """Every descendant of ``pid`` (from ``/proc/*/stat``)."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        parents.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def vm_hwm_kib(pid: int) -> int:
    """Peak resident memory (``VmHWM``) of ``pid`` in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmHWM for process {pid}")
