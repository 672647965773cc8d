"""``BatchManager``: find batches again and act on them, one at a time or many at once.

A table of the batches the user may see (:func:`batchnb.list_batches`: filtered, searched,
sorted and paged in the database), with live progress bars while any batch on the page runs,
per-row quick actions and an operations bar for a selection. Every change goes through a
dialog that says exactly what will happen (:mod:`batchnb.ui.confirm`) and then through the
service functions, which check ownership and state; a refusal is shown with the service's
reason and changes nothing. Exports have their own dialog (:mod:`batchnb.ui.export_dialog`)
that offers the file for download. "Open" shows the batch under the table.

The table's state is :class:`~batchnb.ui.batch_table.BatchTable`'s traitlets, so a notebook
can drive it as the browser does: ``manager.table.status = "failed"`` filters the list.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, date, datetime, timedelta
from typing import Any

import ipywidgets as widgets

import batchnb
from batchnb.errors import BatchnbError
from batchnb.formats import FORMATS
from batchnb.services.access import is_admin
from batchnb.services.listing import BatchPage, list_batches
from batchnb.services.manage import BULK_STATUSES
from batchnb.services.workspace import Workspace, default_workspace
from batchnb.ui.background import in_background
from batchnb.ui.batch_table import FILTER_NAMES, BatchTable
from batchnb.ui.confirm import ACTIONS, Operation, describe, perform, plural, read_facts
from batchnb.ui.export_dialog import ExportDialog

__all__ = ["LIVE_INTERVAL", "BatchManager"]

log = logging.getLogger(__name__)

LIVE_INTERVAL = 1.0
"""Seconds between two refreshes of a page showing running batches (the list's cache keeps
many viewers at one query a second between them)."""

STATUS_CHOICES = (
    "pending",
    "processing",
    "completed",
    "completed_with_errors",
    "failed",
    "cancelled",
)
_TITLES = {
    "retry": "Retry the failed documents of {}?",
    "cancel": "Cancel {}?",
    "delete": "Delete {}?",
    "set_status": "Set the status of {}?",
}
_CONFIRM_LABELS = {
    "retry": "Retry",
    "cancel": "Cancel {}",
    "delete": "Delete",
    "set_status": "Set status",
}


def _day(text: str, *, end: bool = False) -> datetime | None:
    """``YYYY-MM-DD`` as the start of that day in UTC (``end``: the start of the next day)."""
    if not text:
        return None
    start = datetime.combine(date.fromisoformat(text), datetime.min.time(), tzinfo=UTC)
    return start + timedelta(days=1) if end else start


class BatchManager(widgets.VBox):
    """The batches you may see, to filter, open, export, retry, cancel and delete.

    Parameters
    ----------
    workspace:
        Whose batches (default: :func:`batchnb.default_workspace`); the acting user is the
        workspace's user (``BATCHNB_USER``, ``JUPYTERHUB_USER`` or the OS user). An admin
        (``BATCHNB_ADMINS``) sees every batch and may filter by owner.
    page_size:
        Rows per page; pages are read from the database one at a time.

    Examples
    --------
    >>> manager = BatchManager(page_size=10)  # doctest: +SKIP
    >>> manager.table.search = "invoices"     # what typing in the search box does  # doctest: +SKIP
    """

    def __init__(self, *, workspace: Workspace | None = None, page_size: int = 25) -> None:
        self.workspace = workspace or default_workspace()
        self.actor = self.workspace.settings.user
        self.table = BatchTable(page_size=page_size)
        self.detail = widgets.VBox()
        self.detail.add_class("batchnb-manager-detail")
        self.exporting = ExportDialog(self.table, self.workspace)
        self._operation: Operation | None = None
        self._load_failed = False
        self._shown_query: dict[str, Any] | None = None
        self._task: asyncio.Task[None] | None = None
        self.table.options = {
            "statuses": list(STATUS_CHOICES),
            "bulk_statuses": list(BULK_STATUSES),
            "formats": list(FORMATS),
            "extractors": list(self.workspace.extractors.names()),
            "admin": is_admin(self.workspace.settings, self.actor),
            "user": self.actor,
        }
        super().__init__([self.table, self.detail])
        self.add_class("batchnb-manager")
        self.table.observe(self._filters_changed, names=[*FILTER_NAMES, "sort", "descending"])
        self.table.observe(self._page_changed, names=["page", "page_size"])
        self.table.on_msg(self._handle_message)
        self.reload()

    def __repr__(self) -> str:
        return (
            f"BatchManager(page {self.table.page} of {self.table.pages}, "
            f"{len(self.table.rows)} of {self.table.total} batches, "
            f"{len(self.table.selected)} selected)"
        )

    # -- reading the page -------------------------------------------------------------------

    def query(self) -> dict[str, Any]:
        """The :func:`batchnb.list_batches` arguments the table's state stands for."""
        table = self.table
        failures = {"yes": True, "no": False}.get(table.has_failures)
        return {
            "status": table.status or None,
            "search": table.search.strip() or None,
            "created_from": _day(table.created_from),
            "created_to": _day(table.created_to, end=True),
            "owner": table.owner.strip() or None,
            "has_failures": failures,
            "sort": table.sort,
            "descending": table.descending,
            "page": table.page,
            "page_size": table.page_size,
        }

    def read_page(self, query: dict[str, Any] | None = None) -> BatchPage:
        """The page ``query`` (default: the table's state) asks for, read now: one
        :func:`list_batches` call, i.e. its page query and one grouped count for the page."""
        arguments = self.query() if query is None else query
        return list_batches(workspace=self.workspace, actor=self.actor, **arguments)

    def reload(self) -> None:
        """Read the page again and show it; a refusal or a bad filter is shown, not raised."""
        try:
            page = self.read_page()
        except (BatchnbError, ValueError) as exc:
            self.table.say(str(exc), "error")
            self._load_failed = True
            self._shown_query = None
            return
        if self._load_failed:  # the filters work again: the complaint goes
            self.table.message = {}
            self._load_failed = False
        self._shown_query = self.query()
        self._show(page)

    def _show(self, page: BatchPage) -> None:
        if page.page > page.pages and page.total:
            self.table.page = page.pages  # past the end (batches deleted): the last page
            return
        self.table.show_page(page)
        self._keep_live()

    def _filters_changed(self, _change: dict[str, Any]) -> None:
        if self.table.page != 1:
            self.table.page = 1  # reloads through _page_changed
        else:
            self._reload_if_changed()

    def _page_changed(self, _change: dict[str, Any]) -> None:
        self._reload_if_changed()

    def _reload_if_changed(self) -> None:
        # The browser sends several traits in one update (a sort: column and direction); each
        # one's observer runs after all are set, so the second finds the page already read.
        if self.query() != self._shown_query:
            self.reload()

    # -- live progress ----------------------------------------------------------------------

    def _keep_live(self) -> None:
        """Follow the page while it shows running batches; stop when none is left."""
        if not self.table.running_shown() or (self._task is not None and not self._task.done()):
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # no loop (a script, a test): reload() refreshes when called
        self._task = loop.create_task(self._follow())

    async def _follow(self) -> None:
        while self.table.running_shown():
            await asyncio.sleep(LIVE_INTERVAL)
            asked = self.query()
            try:
                # The query runs on a thread: the kernel keeps answering meanwhile.
                page = await asyncio.to_thread(self.read_page, asked)
            except Exception as exc:  # the database is away: say so, try again
                self.table.say(f"refresh failed: {exc}", "error")
                continue
            if self.query() == asked:  # else the user moved on meanwhile: that page is shown
                self.table.show_page(page)

    def stop(self) -> None:
        """Stop refreshing the page and following an export."""
        if self._task is not None:
            self._task.cancel()
            self._task = None
        self.exporting.close()

    def close(self) -> None:
        """Stop refreshing and close the widget with its children."""
        self.stop()
        for child in self.detail.children:
            child.close()
        self.detail.close()
        self.table.close()
        super().close()

    # -- actions ----------------------------------------------------------------------------

    def _handle_message(self, _widget: Any, content: dict[str, Any], _buffers: list[Any]) -> None:
        kind = content.get("type")
        if kind == "action":
            ids = [int(i) for i in content.get("ids") or []]
            self.ask(str(content.get("action", "")), ids, content.get("choices") or {})
        elif kind == "confirm":
            self.confirm(content.get("choices") or {})
        elif kind == "close_dialog":
            self.close_dialog()
        elif kind == "download":
            self.exporting.download()
        elif kind == "refresh":
            self.reload()

    def ask(self, action: str, batch_ids: list[int], choices: dict[str, Any] | None = None) -> None:
        """What a button does: open a batch, or open the dialog of ``action`` on the batches.

        ``action``: ``open``, ``export``, or one of :data:`batchnb.ui.confirm.ACTIONS`.
        """
        if not batch_ids:
            self.table.say("Select at least one batch first.", "error")
            return
        if action == "open":
            self.open_batch(batch_ids[0])
        elif action == "export":
            self.exporting.open(batch_ids)
        elif action in ACTIONS:
            self._ask_to_confirm(Operation(action, tuple(batch_ids), dict(choices or {})))
        else:
            self.table.say(f"unknown action {action!r}", "error")

    def _ask_to_confirm(self, operation: Operation) -> None:
        facts = read_facts(operation.batch_ids, self.workspace)
        text, possible = describe(operation, facts)
        dialog: dict[str, Any] = {
            "kind": "confirm",
            "action": operation.action,
            "stage": "ask",
            "title": _TITLES[operation.action].format(plural(len(facts), "batch")),
            "text": text,
            "batches": [{"id": f.id, "name": f.name, "owner": f.owner} for f in facts[:10]],
            "more": max(0, len(facts) - 10),
            "can_confirm": possible,
            "danger": operation.action in ("delete", "cancel"),
            "confirm_label": _CONFIRM_LABELS[operation.action].format(
                "batch" if len(facts) == 1 else "batches"
            ),
        }
        if operation.action == "retry":
            dialog["choices"] = {
                "extractor": [["", "the extractor each document last used"]]
                + [[name, name] for name in self.table.options.get("extractors", [])]
            }
            dialog["values"] = {"extractor": ""}
        self._operation = operation
        self.table.dialog = dialog

    def confirm(self, choices: dict[str, Any] | None = None) -> None:
        """The confirm button: run the open dialog's operation (``choices`` from the dialog).

        The dialog shows a busy state while it runs, then the result or the service's reason
        for refusing; the page is read again.
        """
        dialog = self.table.dialog
        if dialog.get("kind") == "export" and dialog.get("stage") == "ask":
            self.exporting.start(choices or dialog.get("values", {}))
            return
        operation = self._operation
        if operation is None or dialog.get("stage") != "ask":
            return
        operation = Operation(
            operation.action, operation.batch_ids, {**operation.choices, **(choices or {})}
        )
        self.table.dialog = {**dialog, "stage": "busy"}
        in_background(
            lambda: perform(operation, self.workspace),
            lambda text: self._finished(operation, text, None),
            lambda error: self._finished(operation, "", error),
        )

    def _finished(self, operation: Operation, text: str, error: Exception | None) -> None:
        self._operation = None
        if error is not None:
            if not isinstance(error, BatchnbError):
                log.warning("batch operation %s failed", operation.action, exc_info=error)
            reason = str(error) or type(error).__name__
            self.table.dialog = {**self.table.dialog, "stage": "failed", "error": reason}
            self.table.say(f"Nothing changed: {reason}", "error")
        else:
            self.table.dialog = {**self.table.dialog, "stage": "done", "result": text}
            self.table.say(text, "success")
            if operation.action == "delete":
                gone = set(operation.batch_ids)
                self.table.selected = [i for i in self.table.selected if i not in gone]
                if self.table.opened in gone:
                    self._show_detail(0, [])
        self.reload()

    def close_dialog(self) -> None:
        """Close the open dialog (an export already running goes on)."""
        self._operation = None
        self.exporting.close()
        self.table.dialog = {}

    # -- the opened batch -------------------------------------------------------------------

    def open_batch(self, batch_id: int) -> None:
        """Show one batch under the table: its live progress and its results view."""
        try:
            batch = batchnb.get_batch(batch_id, workspace=self.workspace)
        except BatchnbError as exc:
            self.table.say(str(exc), "error")
            return
        self._show_detail(batch_id, _batch_view(batch, self.actor))

    def _show_detail(self, batch_id: int, shown: list[widgets.Widget]) -> None:
        old = self.detail.children
        self.detail.children = shown
        self.table.opened = batch_id
        for child in old:
            child.close()


def _batch_view(batch: batchnb.Batch, actor: str) -> list[widgets.Widget]:
    """What "open" shows: the batch's live progress, and its results to review and correct."""
    from batchnb.ui.progress import BatchProgress
    from batchnb.ui.results_view import ResultsView

    return [BatchProgress(batch), ResultsView(batch, actor=actor)]
