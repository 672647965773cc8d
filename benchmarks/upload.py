"""Uploads through widgets: batchnb's ``Dropzone`` against ipywidgets' ``FileUpload``, same run.

Each case is one Voila page (a fresh kernel) in headless Chromium, driven over the raw DevTools
protocol (no Playwright in the data path: it mirrors websocket frames and slows large uploads
by about 40%)::

    .venv/bin/python benchmarks/upload.py [--sizes 8,200,1000] [--repeat 3] [--timeout 60]
                                          [--dir PARENT] [--smoke]

For every size (MB, 10^6 bytes) a real PDF padded with random bytes is chosen in the page's
file input, then:

1. ipywidgets ``FileUpload`` with default settings (baseline): the browser reads the whole file
   and sends it as one websocket message, which tornado refuses above 10 MiB (see BASELINES.md);
   a case that does not arrive within ``--timeout`` seconds is reported as such.
2. ``batchnb.ui.Dropzone``: chunks with acknowledgements, sha256 verified at the end.

Printed per case: wall seconds from choosing the file to the kernel's confirmation being shown,
MB/s, the kernel's peak RSS growth (``VmHWM`` of the kernel process after the upload, minus its
``VmRSS`` just before; the high-water mark is reset through ``/proc/PID/clear_refs``), and
whether the sha256 the kernel computed over what it received equals the file's. Aims (issue
11): at least 80 MB/s for 1 GB on loopback, kernel growth under window x chunk + 30 MB.

The shipped plans cap a file at 512 MiB (``local``), so the Dropzone's page uses a workspace
whose plan allows 2 GiB files. Everything runs in a temporary folder (``--dir``) removed at the
end. ``--smoke`` uploads one 1 MB file once with each widget (it checks the script; its figures
mean nothing) and exits 1 unless both arrive intact, or 0 with the reason when Chromium is
missing. Otherwise the exit code is always 0.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat
import websocket
from nbformat.v4 import new_code_cell, new_notebook

# The browser tests' server and file helpers: one way to start Voila and make PDFs.
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from tests.browser.files import padded_pdf, sha256_of  # noqa: E402
from tests.browser.servers import (  # noqa: E402
    CHROMIUM,
    CHROMIUM_ARGS,
    JupyterServer,
    free_port,
    isolated_env,
    start_voila,
)

MB = 1_000_000
MIB = 1024 * 1024
AIM_MB_S = 80.0
AIM_EXTRA_MB = 30.0

FILEUPLOAD_NOTEBOOK = """
import hashlib, time
import ipywidgets as widgets

upload = widgets.FileUpload(accept=".pdf", multiple=False)
status = widgets.Label("waiting")
status.add_class("bench-status")


def received(change):
    item = change["new"][0]
    digest = hashlib.sha256(item["content"]).hexdigest()
    status.value = f"received {item['size']} {digest}"


upload.observe(received, names="value")
widgets.VBox([upload, status])
"""

DROPZONE_NOTEBOOK = '''
import time
import ipywidgets as widgets
from batchnb.documents.plans import GIB, Plan
from batchnb.services.workspace import Workspace, default_workspace
from batchnb.ui.dropzone import Dropzone


class BenchmarkWorkspace(Workspace):
    """The process's workspace with a plan that takes a 1 GB file (local stops at 512 MiB)."""

    @property
    def plan(self):
        return Plan("benchmark", max_files=10, max_file_bytes=2 * GIB, max_batch_bytes=20 * GIB)


dropzone = Dropzone(workspace=BenchmarkWorkspace(default_workspace().settings))
status = widgets.Label("waiting")
status.add_class("bench-status")
began = {}


def changed(change):
    for row in change["new"]:
        if row["status"] == "uploading" and "t" not in began:
            began["t"] = time.monotonic()
        if row["status"] == "verified" and dropzone.ready_paths:
            seconds = time.monotonic() - began.get("t", time.monotonic())
            # The script hashes the file on disk itself, after the clock stops.
            status.value = f"received {row['size']} {dropzone.ready_paths[0]} kernel {seconds:.2f}"
        elif row["status"] in ("refused", "failed"):
            status.value = f"{row['status']}: {row['reason']}"


dropzone.observe(changed, names="files")
widgets.VBox([dropzone, status])
'''


class DevTools:
    """Headless Chromium driven over its DevTools protocol, one page, synchronous calls."""

    def __init__(self, profile: Path) -> None:
        port = free_port()
        self.process = subprocess.Popen(
            [
                str(CHROMIUM),
                "--headless",
                f"--remote-debugging-port={port}",
                "--remote-allow-origins=*",
                f"--user-data-dir={profile}",
                *CHROMIUM_ARGS,
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=2) as r:
                    pages = [t for t in json.load(r) if t["type"] == "page"]
                if pages:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("Chromium's DevTools endpoint did not answer")
            time.sleep(0.1)
        self.ws = websocket.create_connection(
            pages[0]["webSocketDebuggerUrl"], suppress_origin=True, timeout=600
        )
        self._id = 0
        self.events: list[dict[str, Any]] = []
        self.call("Page.enable")
        self.call("Runtime.enable")

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        self._id += 1
        self.ws.send(json.dumps({"id": self._id, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv())
            if message.get("id") == self._id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})
            self.events.append(message)

    def evaluate(self, expression: str, *, gesture: bool = False) -> Any:
        """The value of ``expression``; ``gesture``: as if the user did it (a file chooser
        opens only on a user's gesture)."""
        result = self.call(
            "Runtime.evaluate", expression=expression, returnByValue=True, userGesture=gesture
        )
        return result.get("result", {}).get("value")

    def wait_for(self, expression: str, timeout: float) -> Any:
        """Poll ``expression`` in the page until it is truthy; None after ``timeout`` s."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = self.evaluate(expression)
            if value:
                return value
            time.sleep(0.05)
        return None

    def navigate(self, url: str) -> None:
        self.call("Page.navigate", url=url)

    def choose_file(self, selector: str, path: Path) -> None:
        """Set ``path`` on the file input matching ``selector`` (in the DOM)."""
        root = self.call("DOM.getDocument", depth=0)["root"]["nodeId"]
        node = self.call("DOM.querySelector", nodeId=root, selector=selector)["nodeId"]
        if not node:
            raise RuntimeError(f"no element matches {selector!r}")
        self.call("DOM.setFileInputFiles", files=[str(path)], nodeId=node)

    def choose_file_in_chooser(self, click_expression: str, path: Path) -> None:
        """Click what opens a file chooser (an input kept out of the DOM) and answer it."""
        self.call("Page.setInterceptFileChooserDialog", enabled=True)
        self.evaluate(click_expression, gesture=True)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            opened = [e for e in self.events if e.get("method") == "Page.fileChooserOpened"]
            if opened:
                self.events.clear()
                node = opened[0]["params"]["backendNodeId"]
                self.call("DOM.setFileInputFiles", files=[str(path)], backendNodeId=node)
                return
            self.evaluate("1")  # read events that arrived meanwhile
            time.sleep(0.05)
        raise RuntimeError("no file chooser opened")

    def close(self) -> None:
        self.ws.close()
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()


@dataclass
class Result:
    widget: str
    size: int
    seconds: float | None
    kernel_seconds: float | None
    growth_mb: float | None
    verified: bool
    note: str

    @property
    def mb_s(self) -> float | None:
        return self.size / MB / self.seconds if self.seconds else None


def _status(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} for {pid}")


def run_case(
    browser: DevTools,
    voila: JupyterServer,
    notebook: str,
    widget: str,
    path: Path,
    digest: str,
    timeout: float,
) -> Result:
    size = path.stat().st_size
    before = set(voila.kernel_pids())
    browser.navigate(f"{voila.url}/voila/render/{notebook}")
    if not browser.wait_for("!!document.querySelector('.bench-status')", 120):
        return Result(widget, size, None, None, None, False, "page did not render")
    kernels = [pid for pid in voila.kernel_pids() if pid not in before]
    if len(kernels) != 1:
        return Result(widget, size, None, None, None, False, f"kernels started: {kernels}")
    kernel = kernels[0]
    Path(f"/proc/{kernel}/clear_refs").write_text("5")  # reset the peak to the current RSS
    rss_before = _status(kernel, "VmRSS")
    started = time.perf_counter()
    if widget == "FileUpload":
        browser.choose_file_in_chooser(
            "document.querySelector('.jupyter-widgets.widget-upload').click()", path
        )
    else:
        browser.choose_file("[data-testid=file-input]", path)
    shown = browser.wait_for(
        "(() => { const s = document.querySelector('.bench-status');"
        " return s && s.textContent !== 'waiting' ? s.textContent : null })()",
        timeout,
    )
    seconds = time.perf_counter() - started
    growth = (_status(kernel, "VmHWM") - rss_before) / 1024
    if not shown:
        return Result(
            widget, size, None, None, growth, False, f"nothing arrived in {timeout:.0f} s"
        )
    words = shown.split()
    if words[0] != "received":
        return Result(widget, size, None, None, growth, False, shown[:80])
    kernel_seconds = float(words[4]) if len(words) > 4 else None
    received = words[2]
    if received.startswith("/"):  # the Dropzone's verified file
        received = sha256_of(Path(received))
    ok = words[1] == str(size) and received == digest
    return Result(widget, size, seconds, kernel_seconds, growth, ok, "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="8,200,1000", help="file sizes in MB (10^6 bytes)")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per case")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each case (median)")
    parser.add_argument("--dir", type=Path, default=None, help="parent of the temporary folder")
    parser.add_argument(
        "--smoke", action="store_true", help="one 1 MB upload per widget: checks the script itself"
    )
    args = parser.parse_args()
    if args.smoke:
        args.sizes, args.repeat, args.timeout = "1", 1, 30.0
        if not CHROMIUM.exists():
            print(f"skipped: {CHROMIUM} is missing (make system-packages installs Chromium)")
            return
    sizes = [int(float(s) * MB) for s in args.sizes.split(",")]
    # Stopped by SIGTERM (a timeout): still stop Voila and Chromium and remove the files.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    root = Path(tempfile.mkdtemp(prefix="batchnb-bench-upload-", dir=args.dir))
    voila: JupyterServer | None = None
    browser: DevTools | None = None
    try:
        notebooks = root / "notebooks"
        notebooks.mkdir()
        for name, source in (("fileupload", FILEUPLOAD_NOTEBOOK), ("dropzone", DROPZONE_NOTEBOOK)):
            nb = new_notebook(cells=[new_code_cell(source.strip())])
            nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
            nbformat.write(nb, notebooks / f"{name}.ipynb")
        home = root / "home"
        env = isolated_env(home, root / "state")
        voila = start_voila(notebooks, env, root / "voila.log")
        browser = DevTools(root / "chromium")
        from batchnb.ui.dropzone import Dropzone

        traits = Dropzone.class_traits()
        chunk = traits["chunk_bytes"].default_value
        window = traits["window"].default_value
        print(
            f"{os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.2f}; "
            f"Chromium over DevTools; Dropzone chunk {chunk // MIB} MiB x {window} in flight"
        )
        results: list[Result] = []
        for size in sizes:
            path = padded_pdf(root / f"file-{size // MB}MB.pdf", size)
            digest = sha256_of(path)
            failed: set[str] = set()
            for _ in range(args.repeat):  # in turns, so a busy moment bills both alike
                for notebook, widget in (
                    ("fileupload.ipynb", "FileUpload"),
                    ("dropzone.ipynb", "Dropzone"),
                ):
                    if widget in failed:
                        continue  # it failed at this size: once is enough to say so
                    shutil.rmtree(home / "uploads", ignore_errors=True)  # not "already there"
                    result = run_case(browser, voila, notebook, widget, path, digest, args.timeout)
                    results.append(result)
                    _print_row(result)
                    if not result.verified:
                        failed.add(widget)
            path.unlink()
        print(f"load average at the end {os.getloadavg()[0]:.2f}")
        _summary(results, window * chunk / MIB + AIM_EXTRA_MB)
        if args.smoke and not all(result.verified for result in results):
            raise SystemExit("smoke run: an upload did not arrive intact (see above)")
    finally:
        if browser is not None:
            browser.close()
        if voila is not None:
            voila.stop()
        shutil.rmtree(root, ignore_errors=True)


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def _print_row(r: Result) -> None:
    print(
        f"{r.widget:<11} {r.size / MB:>6.0f} MB  wall {_fmt(r.seconds, '7.2f')} s  "
        f"{_fmt(r.mb_s, '6.1f')} MB/s  kernel {_fmt(r.kernel_seconds, '6.2f')} s  "
        f"peak +{_fmt(r.growth_mb, '.1f')} MB  sha256 {'ok' if r.verified else 'NO'}"
        f"{'  (' + r.note + ')' if r.note else ''}",
        flush=True,
    )


def _median(runs: list[Result] | None) -> Result | None:
    """The run of median wall time (a failed run stands for the case: it is not repeated)."""
    if not runs:
        return None
    if not all(r.verified for r in runs):
        return next(r for r in runs if not r.verified)
    return sorted(runs, key=lambda r: r.seconds or 0.0)[len(runs) // 2]


def _summary(results: list[Result], memory_aim_mb: float) -> None:
    print("\nsummary (medians)")
    by_size: dict[int, dict[str, list[Result]]] = {}
    for r in results:
        by_size.setdefault(r.size, {}).setdefault(r.widget, []).append(r)
    for size, cases in by_size.items():
        drop, base = _median(cases.get("Dropzone")), _median(cases.get("FileUpload"))
        if drop is None or base is None:
            continue
        if base.mb_s and drop.mb_s and base.verified:
            versus = f"{drop.mb_s / base.mb_s:.2f}x FileUpload's rate"
        else:
            versus = f"FileUpload: {base.note or 'not verified'}"
        print(f"  {size / MB:.0f} MB: Dropzone {_fmt(drop.mb_s, '.1f')} MB/s, {versus}")
        growths = [r.growth_mb for r in cases.get("Dropzone", []) if r.growth_mb is not None]
        if growths:
            met = "met" if max(growths) < memory_aim_mb else "not met"
            print(
                f"    kernel peak +{max(growths):.1f} MB at most over {len(growths)} runs "
                f"(aim < {memory_aim_mb:.0f} MB: {met})"
            )
        if size >= 1000 * MB:
            met = "met" if drop.mb_s and drop.mb_s >= AIM_MB_S and drop.verified else "not met"
            print(f"    rate aim >= {AIM_MB_S:.0f} MB/s for 1 GB: {met}")


if __name__ == "__main__":
    main()
