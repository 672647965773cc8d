"""Live progress of one batch: counts, percent, rate, ETA, failures and a cancel button.

:class:`BatchProgress` follows a batch from the kernel's event loop (ipykernel and Voila run an
asyncio loop): an asyncio task reads the counts off the loop's thread, one cached aggregate
query at most every :data:`MIN_INTERVAL` seconds, applies them on the loop, and stops once every
document is final. A cell can run while it updates. Everything shown lives in child widgets'
synced state, so a reloaded page shows the current state. Where no widget can show (a
terminal, plain Python, papermill), :meth:`BatchProgress.watch` draws the text bar of
:meth:`batchnb.Batch.wait` instead.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets
import traitlets

import batchnb
from batchnb.errors import BatchnbError, NotFoundError
from batchnb.services import display

if TYPE_CHECKING:
    import pandas as pd

    from batchnb.services.batches import Batch, Progress

__all__ = ["MIN_INTERVAL", "BatchProgress", "Throughput", "format_duration", "widget_frontend"]

log = logging.getLogger(__name__)

MIN_INTERVAL = 0.5
"""Shortest time between two refreshes: at most two updates a second, however it is asked."""
RATE_WINDOW = 60.0
"""Seconds of observations the rate is measured over: recent enough to follow a change of pace."""
MAX_FAILURES_SHOWN = 25
"""Failed documents listed in the widget; ``batch.failures()`` has them all."""


def widget_frontend() -> bool:
    """Whether a widget can show and keep itself up to date here.

    True inside a Jupyter kernel (JupyterLab, Notebook, Voila) whose event loop is running;
    False in a terminal IPython, plain Python, or a script.
    """
    ipython = sys.modules.get("IPython")
    get_ipython = getattr(ipython, "get_ipython", None)
    shell = get_ipython() if get_ipython is not None else None
    if shell is None or getattr(shell, "kernel", None) is None:
        return False
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def format_duration(seconds: float) -> str:
    """``4s``, ``1m 05s``, ``2h 03m``: a duration as people read it."""
    whole = max(0, round(seconds))
    if whole < 60:
        return f"{whole}s"
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


class Throughput:
    """Documents per second from (time, documents done) observations, and the time left.

    The rate is measured over the last :data:`RATE_WINDOW` seconds of observations; before two
    observations differ it is the batch's average since it was created (when that is given).
    """

    def __init__(self, window: float = RATE_WINDOW) -> None:
        self.window = window
        self._samples: deque[tuple[float, int]] = deque()
        self._since_created: float | None = None

    def add(self, moment: float, done: int, *, age: float | None = None) -> None:
        """Observe ``done`` documents at ``moment`` (seconds); ``age``: the batch's age then."""
        self._samples.append((moment, done))
        # Keep one sample older than the window, so the window is always spanned.
        while len(self._samples) > 2 and self._samples[1][0] <= moment - self.window:
            self._samples.popleft()
        if age is not None and age > 0 and done:
            self._since_created = done / age

    def rate(self) -> float | None:
        """Documents per second, or None while nothing has been seen to finish."""
        if len(self._samples) >= 2:
            (start, first), (end, last) = self._samples[0], self._samples[-1]
            if end > start and last > first:
                return (last - first) / (end - start)
        return self._since_created

    def eta(self, remaining: int) -> float | None:
        """Seconds until ``remaining`` more documents are done at the current rate."""
        if remaining <= 0:
            return 0.0
        rate = self.rate()
        return None if not rate else remaining / rate


@dataclass(frozen=True)
class _Reading:
    """What one refresh read (off the event loop), applied to the widgets on it."""

    progress: Progress
    moment: float
    failures: pd.DataFrame | None = None
    info: Any = None  # the batch's row, read when it starts and when it ends
    error: str | None = None
    gone: bool = False


class BatchProgress(widgets.VBox):
    """A live progress panel for one batch; ``display()`` it, or let the cell show it.

    Parameters
    ----------
    batch:
        The batch to follow (``batchnb.submit(...)``, ``batchnb.get_batch(id)``).
    interval:
        Seconds between refreshes, at least :data:`MIN_INTERVAL`.
    start:
        Follow the batch at once when an event loop is running (a notebook, Voila); without one
        the panel shows the state at creation and :meth:`refresh` updates it.
    """

    batch_id = traitlets.Int(help="The batch followed.")
    counts = traitlets.Dict(help="Documents per status at the last refresh.")
    percent = traitlets.Float(0.0, help="Documents final (completed, failed, cancelled), in %.")
    rate = traitlets.Float(None, allow_none=True, help="Documents per second, once measured.")
    eta = traitlets.Float(None, allow_none=True, help="Seconds left at that rate, if known.")
    status = traitlets.Unicode(help="The batch's status (its row's once it is final).")
    finished = traitlets.Bool(False, help="Every document is final: updates have stopped.")
    updating = traitlets.Bool(False, help="The event-loop task is following the batch.")
    refreshes = traitlets.Int(0, help="Refreshes applied so far (each one progress query).")

    def __init__(self, batch: Batch, *, interval: float = 1.0, start: bool = True) -> None:
        self.batch = batch
        self.interval = max(float(interval), MIN_INTERVAL)
        self._throughput = Throughput()
        self._task: asyncio.Task[None] | None = None
        self._failed_shown = -1
        self._unavailable = False
        self._showing_outage = False
        self._name = ""
        self._created_at: datetime | None = None
        self._title = widgets.HTML()
        self._bar = widgets.HTML()
        self._counts = widgets.HTML()
        self._percent = widgets.Label()
        self._rate = widgets.Label()
        self._eta = widgets.Label()
        self._failures = widgets.Accordion()
        self._failures_note = widgets.HTML()
        self._cancel = widgets.Button(description="Cancel batch", icon="stop", button_style="")
        self._confirm = widgets.Button(description="Yes, cancel it", button_style="danger")
        self._keep = widgets.Button(description="Keep running")
        self._message = widgets.HTML()
        for child, name in (
            (self._title, "title"),
            (self._bar, "bar"),
            (self._counts, "counts"),
            (self._percent, "percent"),
            (self._rate, "rate"),
            (self._eta, "eta"),
            (self._failures, "failures"),
            (self._failures_note, "failures-note"),
            (self._cancel, "cancel"),
            (self._confirm, "cancel-confirm"),
            (self._keep, "cancel-keep"),
            (self._message, "message"),
        ):
            child.add_class(f"batchnb-progress-{name}")
        self._cancel.on_click(lambda _: self._ask_to_cancel())
        self._confirm.on_click(lambda _: self.cancel())
        self._keep.on_click(lambda _: self._show_confirmation(False))
        self._show_confirmation(False)
        self._failures.layout.display = "none"
        for stat in (self._counts, self._percent, self._rate, self._eta):
            stat.layout.margin = "0 1.2em 0 0"
        stats = widgets.HBox(
            [self._counts, self._percent, self._rate, self._eta],
            layout=widgets.Layout(align_items="baseline", flex_flow="row wrap"),
        )
        actions = widgets.HBox([self._cancel, self._confirm, self._keep])
        super().__init__(
            [
                self._title,
                self._bar,
                stats,
                self._failures_note,
                self._failures,
                actions,
                self._message,
            ],
            batch_id=batch.id,
        )
        self.add_class("batchnb-progress")
        self._apply(self._read(cached=False, with_info=True))
        if start:
            self.start()

    @classmethod
    def watch(
        cls,
        batch: Batch,
        *,
        interval: float = 1.0,
        timeout: float | None = None,
        frontend: bool | None = None,
    ) -> BatchProgress | Progress:
        """Show the batch's progress the best way this session can.

        In a notebook or Voila: displays a live :class:`BatchProgress` and returns it at once.
        Elsewhere (``frontend=False``, a terminal, plain Python, papermill when asked): draws
        the text bar of :meth:`batchnb.Batch.wait` until the batch ends and returns its final
        counts (``timeout`` as in ``wait``).
        """
        if frontend is None:
            frontend = widget_frontend()
        if not frontend:
            return batch.wait(timeout=timeout, progress=True)
        from IPython.display import display as show

        panel = cls(batch, interval=interval)
        show(panel)
        return panel

    def __repr__(self) -> str:
        text = display.progress_text(self.counts)
        return f"BatchProgress(batch={self.batch_id}, {text}, finished={self.finished})"

    # -- following -------------------------------------------------------------------------

    def start(self) -> bool:
        """Follow the batch from the running event loop; False when no loop runs (or it ended)."""
        if self.finished:
            return False
        if self._task is not None and not self._task.done():
            return True
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return False
        self._task = loop.create_task(self._follow())
        self.updating = True
        return True

    def stop(self) -> None:
        """Stop following (the panel keeps what it shows)."""
        if self._task is not None:
            self._task.cancel()
            self._task = None
        self.updating = False

    def close(self) -> None:
        """Stop following and close the widget and its children."""
        self.stop()
        for child in self._widgets():
            child.close()
        super().close()

    async def wait_finished(self) -> None:
        """Await the end of the following task (a test or an async cell can await the batch)."""
        if self._task is not None:
            await asyncio.shield(self._task)

    def refresh(self, *, cached: bool = True) -> None:
        """Read the counts now and show them (on the caller's thread)."""
        self._apply(self._read(cached=cached))

    async def _follow(self) -> None:
        try:
            while not self.finished:
                # The query runs on a thread: the loop (and so the kernel) never waits on it.
                reading = await asyncio.to_thread(self._read)
                self._apply(reading)
                if self.finished or reading.gone:
                    break
                await asyncio.sleep(self.interval)
        finally:
            self.updating = False

    def _read(self, *, cached: bool = True, with_info: bool = False) -> _Reading:
        moment = time.monotonic()
        try:
            progress = self.batch.progress(cached=cached)
            if progress.finished and cached:
                progress = self.batch.progress(cached=False)  # the final figures, exactly
            failures = None
            if progress.failed != self._failed_shown:
                failures = self.batch.failures()
            info = self.batch.info() if (with_info or progress.finished) else None
        except NotFoundError as exc:
            return _Reading(self._last_progress(), moment, error=str(exc), gone=True)
        except Exception as exc:  # the database is away: say so, try again next time
            if not self._unavailable:  # logged once per outage, not at every refresh
                log.warning("batch %s progress unavailable", self.batch_id, exc_info=True)
            self._unavailable = True
            return _Reading(self._last_progress(), moment, error=f"{type(exc).__name__}: {exc}")
        self._unavailable = False
        return _Reading(progress, moment, failures=failures, info=info)

    def _last_progress(self) -> Progress:
        from batchnb.services.batches import Progress

        return Progress(**self.counts)

    # -- showing ---------------------------------------------------------------------------

    def _apply(self, reading: _Reading) -> None:
        if reading.error is not None:
            self._message.value = display.note(f"progress unavailable: {reading.error}")
            self._showing_outage = True
            if reading.gone:
                self._finish()
            return
        if self._showing_outage:  # it is back: the note goes
            self._message.value = ""
            self._showing_outage = False
        progress = reading.progress
        counts = progress.as_dict()
        info = reading.info
        if info is not None:
            self._name = info.name
            self._created_at = info.created_at
        self.refreshes += 1
        self.counts = counts
        self.percent = 100.0 * progress.done / progress.total if progress.total else 100.0
        age = self._age(info)
        self._throughput.add(reading.moment, progress.done, age=age)
        self.rate = self._throughput.rate()
        if progress.finished and age and progress.done:
            self.rate = progress.done / age  # the batch's own average, start to end
        self.eta = self._throughput.eta(progress.total - progress.done)
        if progress.finished:
            self.status = info.status if info is not None else "completed"
        else:
            self.status = "processing" if progress.processing or progress.done else "pending"
        self._show(counts, progress.finished)
        if reading.failures is not None:
            self._show_failures(reading.failures)
            self._failed_shown = progress.failed
        if progress.finished:
            self._finish()

    def _age(self, info: Any) -> float | None:
        """Seconds from the batch's creation to its end (or to now, while it runs)."""
        if self._created_at is None:
            return None
        end = getattr(info, "completed_at", None) or datetime.now(UTC)
        return (_utc(end) - _utc(self._created_at)).total_seconds()

    def _show(self, counts: Mapping[str, int], finished: bool) -> None:
        self._title.value = display.join(
            display.Html("<b>"),
            f"Batch {self.batch_id} · {self._name}",
            display.Html("</b> "),
            display.badge(self.status),
        )
        self._bar.value = display.status_bar(counts, width="100%")
        self._counts.value = display.join(
            display.progress_text(counts), " · ", display.legend(counts)
        )
        self._percent.value = f"{self.percent:.0f}%"
        self._rate.value = "- docs/s" if self.rate is None else f"{self.rate:.2f} docs/s"
        if finished:
            self._eta.value = "done"
        else:
            self._eta.value = "ETA -" if self.eta is None else f"ETA {format_duration(self.eta)}"

    def _show_failures(self, failures: pd.DataFrame) -> None:
        shown = failures.head(MAX_FAILURES_SHOWN)
        panels = []
        titles = []
        for row in shown.to_dict("records"):
            kind = str(row["error_kind"] or "error")
            body = display.join(
                display.Html("<div><b>"),
                kind,
                display.Html("</b>: "),
                row["error"] or "",
                display.Html("</div>"),
            )
            if row["traceback"]:
                body = display.join(
                    body,
                    display.Html("<pre style='white-space:pre-wrap;font-size:0.85em'>"),
                    row["traceback"],
                    display.Html("</pre>"),
                )
            panel = widgets.HTML(body)
            panel.add_class("batchnb-progress-failure")
            panels.append(panel)
            titles.append(f"{row['file_name']} ({kind})")
        old = self._failures.children
        self._failures.children = panels
        self._failures.titles = tuple(titles)
        for child in old:
            child.close()
        self._failures.layout.display = "" if panels else "none"
        more = len(failures) - len(shown)
        note = f"{len(failures)} failed" if len(failures) else ""
        if more:
            note += f" (the first {len(shown)} shown; batch.failures() has them all)"
        self._failures_note.value = display.text(note)

    def _finish(self) -> None:
        self.finished = True
        self._eta.value = "done"
        self._cancel.disabled = True
        self._show_confirmation(False)

    # -- cancelling ------------------------------------------------------------------------

    def _show_confirmation(self, visible: bool) -> None:
        self._confirm.layout.display = "" if visible else "none"
        self._keep.layout.display = "" if visible else "none"
        self._cancel.layout.display = "none" if visible or self.finished else ""

    def _ask_to_cancel(self) -> None:
        open_documents = self.counts.get("pending", 0) + self.counts.get("processing", 0)
        self._message.value = display.text(
            f"Cancel batch {self.batch_id}? {open_documents} documents not final: waiting ones "
            "never start, running ones stop at their next checkpoint."
        )
        self._show_confirmation(True)

    def cancel(self) -> int | None:
        """Cancel the batch now (what the confirm button does); the stopped items, or None.

        The result, or the reason it failed, is shown under the buttons.
        """
        self._show_confirmation(False)
        try:
            stopped = batchnb.cancel_batch(self.batch_id, workspace=self.batch.workspace)
        except BatchnbError as exc:
            self._message.value = display.text(f"Could not cancel batch {self.batch_id}: {exc}")
            return None
        if stopped:
            text = f"Batch {self.batch_id} cancelled: {stopped} queue items stopped."
        else:
            text = f"Batch {self.batch_id} had nothing left to cancel."
        self._message.value = display.text(text)
        self._apply(self._read(cached=False, with_info=True))
        return stopped

    def _widgets(self) -> list[widgets.Widget]:
        return [
            self._title,
            self._bar,
            self._counts,
            self._percent,
            self._rate,
            self._eta,
            *self._failures.children,
            self._failures,
            self._failures_note,
            self._cancel,
            self._confirm,
            self._keep,
            self._message,
        ]
