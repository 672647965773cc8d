"""A guided batch: Files → Prompts → Review → Submit, then the batch's live progress.

:class:`BatchWizard` composes the :class:`~batchnb.ui.dropzone.Dropzone` (files in) and the
:class:`~batchnb.ui.prompt_editor.PromptEditor` (what to extract), shows what will be
submitted with an estimate of how long it takes, and submits through :func:`batchnb.submit`.
Next is enabled only when the step is complete, with the reason shown when it is not; a
service error is a message in place, never a traceback. Once submitted, the wizard shows the
:class:`~batchnb.ui.progress.BatchProgress` of the new batch.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets
import traitlets

import batchnb
from batchnb.errors import BatchnbError
from batchnb.services import display
from batchnb.ui.dropzone import Dropzone
from batchnb.ui.progress import BatchProgress, format_duration
from batchnb.ui.prompt_editor import PromptEditor

if TYPE_CHECKING:
    from batchnb.services.batches import Batch
    from batchnb.services.workspace import Workspace

__all__ = ["STEPS", "THROUGHPUT_DAYS", "BatchWizard", "Estimate", "estimate_duration"]

log = logging.getLogger(__name__)

STEPS = ("Files", "Prompts", "Review", "Submit")
THROUGHPUT_DAYS = 7
"""How far back the estimate looks for the extractor's processing times."""
BUSY_STATUSES = ("queued", "uploading")
MAX_FILES_LISTED = 20
NO_THROUGHPUT = "no recent throughput to estimate from"
_EDITOR_TRAITS = ["strategy", "prompt", "document_prompts", "templates"]


@dataclass(frozen=True)
class Estimate:
    """How long a number of documents should take (``None``: no basis), and from what."""

    seconds: float | None
    explanation: str

    def __str__(self) -> str:
        if self.seconds is None:
            return self.explanation
        return f"about {format_duration(self.seconds)} ({self.explanation})"


def estimate_duration(
    documents: int, extractor: str, workspace: Workspace | None = None
) -> Estimate:
    """Estimate the time ``documents`` take with ``extractor`` from recent processing times.

    Uses the mean time per job of that extractor in the analytics of the last
    :data:`THROUGHPUT_DAYS` days, divided among the live workers' threads (one when none runs).
    """
    workspace = workspace or batchnb.default_workspace()
    since = datetime.now(UTC) - timedelta(days=THROUGHPUT_DAYS)
    timing = batchnb.analytics_summary(start=since, workspace=workspace).timing
    rows = timing[(timing["dimension"] == "extractor") & (timing["value"] == extractor)]
    if rows.empty or not int(rows["jobs"].sum()):
        return Estimate(None, f"{NO_THROUGHPUT} ({extractor}, last {THROUGHPUT_DAYS} days)")
    jobs = int(rows["jobs"].sum())
    mean_seconds = float((rows["mean_ms"] * rows["jobs"]).sum()) / jobs / 1000
    consumers = batchnb.check_health(workspace).consumers
    threads = sum(int(consumer["threads"]) for consumer in consumers)
    workers = (
        f"{threads} worker thread{'s' if threads > 1 else ''}"
        if threads
        else "no worker running yet"
    )
    explanation = (
        f"{mean_seconds:.2f}s per document with {extractor} over {jobs} recent jobs, {workers}"
    )
    return Estimate(documents * mean_seconds / max(threads, 1), explanation)


class BatchWizard(widgets.VBox):
    """Files → Prompts → Review → Submit, then the new batch's live progress.

    Parameters
    ----------
    workspace:
        Where the batch is created (default: the process's workspace).
    extractor:
        The extractor the batch uses (``"offline"`` needs no model or key).
    """

    step = traitlets.Int(0, help="The step shown: an index into STEPS.")
    batch_id = traitlets.Int(None, allow_none=True, help="The batch submitted, once it is.")

    def __init__(self, workspace: Workspace | None = None, extractor: str = "offline") -> None:
        self.workspace = workspace
        self.extractor = extractor
        self.batch: Batch | None = None
        self.progress: BatchProgress | None = None
        self.dropzone = Dropzone(workspace=workspace)
        # The editor previews with the extractor the batch will use.
        self.editor = PromptEditor(workspace=workspace, extractor=extractor)
        self._steps = widgets.HTML()
        self._review = widgets.HTML()
        self._name = widgets.Text(
            description="Name", placeholder="optional: named after the files when left empty"
        )
        self._body = widgets.Box(layout=widgets.Layout(flex_flow="column"))
        self._reason = widgets.HTML()
        self._error = widgets.HTML()
        self._back = widgets.Button(description="Back", icon="arrow-left")
        self._next = widgets.Button(description="Next", icon="arrow-right", button_style="primary")
        self._submit = widgets.Button(description="Submit", icon="play", button_style="success")
        for child, name in (
            (self._steps, "steps"),
            (self._review, "review"),
            (self._name, "name"),
            (self._reason, "reason"),
            (self._error, "error"),
            (self._back, "back"),
            (self._next, "next"),
            (self._submit, "submit"),
        ):
            child.add_class(f"batchnb-wizard-{name}")
        self._back.on_click(lambda _: self.back())
        self._next.on_click(lambda _: self.next())
        self._submit.on_click(lambda _: self.submit())
        self.dropzone.observe(lambda _: self._update(), names=["files"])
        self.editor.observe(lambda _: self._update(), names=_EDITOR_TRAITS)
        nav = widgets.HBox([self._back, self._next, self._submit, self._reason])
        super().__init__([self._steps, self._body, self._error, nav])
        self.add_class("batchnb-wizard")
        self._show_step()

    def __repr__(self) -> str:
        if self.batch_id is not None:
            return f"BatchWizard(submitted batch {self.batch_id})"
        return f"BatchWizard(step {self.step + 1} of {len(STEPS)}: {STEPS[self.step]})"

    # -- validation ------------------------------------------------------------------------

    def problems(self, step: int | None = None) -> list[str]:
        """Why ``step`` (default: the one shown) is not complete; empty when it is."""
        step = self.step if step is None else step
        if step == 0:
            busy = sum(1 for f in self.dropzone.files if f.get("status") in BUSY_STATUSES)
            if busy:
                return [f"wait for {busy} file{'s' if busy > 1 else ''} still being checked"]
            if not self.dropzone.ready_paths:
                return ["add at least one file: drop files or add a path pattern"]
            return []
        if step == 1:
            return list(self.editor.problems())
        return []

    # -- moving ----------------------------------------------------------------------------

    def next(self) -> bool:
        """Go to the next step if this one is complete; False (reason shown) if not."""
        found = self.problems()
        if found:
            self._reason.value = _reasons(found)
            return False
        if self.step < len(STEPS) - 1:
            self.step += 1
            self._show_step()
        return True

    def back(self) -> None:
        """Go back one step (nothing entered is lost)."""
        if self.step > 0 and self.batch_id is None:
            self.step -= 1
            self._show_step()

    def _show_step(self) -> None:
        self._error.value = ""
        if self.step == 1:
            self.editor.set_files(self.dropzone.ready_paths)
        if self.step == 2:
            self._review.value = self._review_html()
        self._body.children = [
            [self.dropzone],
            [self.editor],
            [self._review],
            [self._review, self._name],
        ][self.step]
        self._steps.value = _indicator(self.step)
        self._update()

    def _update(self) -> None:
        """Enable the buttons this step allows, saying why Next is not."""
        if self.batch_id is not None:
            return
        last = self.step == len(STEPS) - 1
        found = self.problems()
        self._back.disabled = self.step == 0
        self._next.disabled = bool(found)
        self._next.layout.display = "none" if last else ""
        self._submit.layout.display = "" if last else "none"
        self._reason.value = _reasons(found)

    # -- review ----------------------------------------------------------------------------

    def _verified(self) -> list[dict[str, Any]]:
        return [f for f in self.dropzone.files if f.get("status") == "verified"]

    def review(self) -> dict[str, Any]:
        """What will be submitted: files, total size, pages, strategy, extractor, estimate."""
        files = self._verified()
        counted = [f["pages"] for f in files if isinstance(f.get("pages"), int)]
        try:
            estimate = str(estimate_duration(len(files), self.extractor, self.workspace))
        except BatchnbError as exc:
            estimate = f"no estimate: {exc}"
        return {
            "files": [f["name"] for f in files],
            "size": sum(int(f.get("size") or 0) for f in files),
            "pages": sum(counted),
            "pages_unknown": len(files) - len(counted),
            "strategy": self.editor.strategy,
            "extractor": self.extractor,
            "estimate": estimate,
        }

    def _review_html(self) -> display.Html:
        figures = self.review()
        pages = str(figures["pages"])
        unknown = figures["pages_unknown"]
        if unknown:
            pages += f" (not counted: {unknown} file{'s' if unknown > 1 else ''} without pages)"
        files = self._verified()
        rows = [(f["name"], _size(int(f.get("size") or 0)), f.get("pages")) for f in files]
        more = len(rows) - MAX_FILES_LISTED
        listing = display.table(
            ("file", "size", "pages"),
            rows[:MAX_FILES_LISTED],
            footer=f"and {more} more" if more > 0 else "",
        )
        facts = [
            ("files", len(files)),
            ("total size", _size(figures["size"])),
            ("pages", pages),
            ("strategy", figures["strategy"]),
            ("extractor", figures["extractor"]),
            ("estimated time", figures["estimate"]),
        ]
        return display.card("Review", facts, after=display.section("files", listing))

    # -- submitting ------------------------------------------------------------------------

    def submit(self) -> Batch | None:
        """Submit the batch; on success the wizard turns into its progress panel.

        A refusal by the service (no file accepted, a bad prompt, the plan's limits...) is
        shown as a message and the wizard stays where it is; returns None then.
        """
        for step in range(len(STEPS)):
            found = self.problems(step)
            if found:
                self._error.value = _message(f"{STEPS[step]}: {'; '.join(found)}")
                return None
        self._submit.disabled = True
        try:
            options = dict(self.editor.submit_options())
            if self._name.value.strip() and "name" not in options:
                options["name"] = self._name.value.strip()
            batch = batchnb.submit(
                self.dropzone.ready_paths,
                extractor=self.extractor,
                workspace=self.workspace,
                **options,
            )
        except BatchnbError as exc:
            self._error.value = _message(str(exc))
            return None
        except Exception as exc:  # a bug: a message here, the traceback in the log
            log.exception("submitting the wizard's batch failed")
            self._error.value = _message(f"unexpected error ({type(exc).__name__}): {exc}")
            return None
        finally:
            self._submit.disabled = False
        self._become_progress(batch)
        return batch

    def _become_progress(self, batch: Batch) -> None:
        self.batch = batch
        self.batch_id = batch.id
        self.progress = BatchProgress(batch)
        parts: list[widgets.Widget] = [self.progress]
        if batch.refused:
            refused = widgets.HTML(
                display.join(
                    display.note(f"{len(batch.refused)} files refused at intake:"),
                    display.table(
                        ("file", "reason"), [(r.file_name, r.reason) for r in batch.refused]
                    ),
                )
            )
            refused.add_class("batchnb-wizard-refused")
            parts.append(refused)
        self._steps.value = _indicator(len(STEPS))
        self.children = [self._steps, *parts]


def _indicator(current: int) -> display.Html:
    """The steps in a row, the current one marked (``current == len(STEPS)``: all done)."""
    parts = []
    for index, name in enumerate(STEPS):
        label = display.text(f"{index + 1} {name}")
        if index == current:
            parts.append(f"<b aria-current='step' class='batchnb-step-current'>{label}</b>")
        elif index < current:
            parts.append(f"<span class='batchnb-step-done'>✓ {label}</span>")
        else:
            parts.append(f"<span style='opacity:0.6'>{label}</span>")
    return display.Html(" &rsaquo; ".join(parts))


def _reasons(found: list[str]) -> display.Html:
    return display.note("; ".join(found)) if found else display.Html("")


def _message(text: str) -> display.Html:
    style = "padding:0.3em 0.6em;border-left:3px solid rgba(218,54,51,0.85)"
    return display.Html(f"<div role='alert' style='{style}'>{display.text(text)}</div>")


def _size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"
