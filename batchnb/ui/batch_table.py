"""``BatchTable``: the browser side of the batch manager, as synced state and messages.

The front end (``widgets/batch_manager.js``) draws the filters, the table of batches with its
status badges and progress bars, the operations bar and the dialogs from the traitlets below,
and writes the filters back when the user changes them. Everything it asks for goes to the
kernel as a message; :class:`batchnb.ui.BatchManager` decides and answers by setting state.

Messages from the browser (``content["type"]``):

``action`` ``{action, ids, choices?}``
    A row's quick action or the operations bar's: ``open``, ``export``, ``retry``, ``cancel``,
    ``delete``, ``set_status`` (``choices.status``).
``confirm`` ``{choices}``
    The open dialog's confirm button (``choices``: extractor, format, mode, ...).
``close_dialog``, ``download``, ``refresh``
    Close the dialog; send the finished export's file; read the page again now.

To the browser, a download goes as ``file_begin {name, size, mime}``, ``file_chunk`` messages
carrying the bytes in ``buffers[0]``, then ``file_end`` (see :mod:`batchnb.ui.download`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import anywidget
import traitlets

from batchnb.services.listing import BatchPage, BatchSummary
from batchnb.services.listing_columns import COUNT_COLUMNS
from batchnb.ui.assets import asset

RUNNING = ("pending", "processing")
"""Batch statuses whose rows keep changing: while one is shown, the page refreshes itself."""

FILTER_NAMES = ("status", "search", "created_from", "created_to", "owner", "has_failures")
"""Traitlets that filter the list; changing one goes back to page 1."""


def _moment(value: datetime | None) -> str:
    """An ISO 8601 UTC moment to the second, or "" (the browser formats it)."""
    if value is None:
        return ""
    aware = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return aware.isoformat(timespec="seconds")


def row_of(summary: BatchSummary) -> dict[str, Any]:
    """One table row for the browser: JSON-safe fields of a :class:`BatchSummary`."""
    return {
        "id": summary.id,
        "name": summary.name,
        "owner": summary.owner,
        "status": summary.status,
        "extractor": summary.extractor,
        "created_at": _moment(summary.created_at),
        "completed_at": _moment(summary.completed_at),
        "document_count": summary.document_count,
        **{status: getattr(summary, status) for status in COUNT_COLUMNS},
    }


class BatchTable(anywidget.AnyWidget):
    """The batch table's synced state; shown inside :class:`batchnb.ui.BatchManager`.

    Setting a filter, the sort or the page from Python does what the same change in the
    browser does: the manager reads the page again.
    """

    _esm = asset("batch_manager.js")
    _css = asset("batch_manager.css")

    # -- the page shown
    rows = traitlets.List(traitlets.Dict(), help="The page's batches (see row_of).").tag(sync=True)
    total = traitlets.Int(0, help="Batches matching the filters, over every page.").tag(sync=True)
    page = traitlets.Int(1, help="Page shown, from 1.").tag(sync=True)
    pages = traitlets.Int(1, help="Pages the filtered list has.").tag(sync=True)
    page_size = traitlets.Int(25, help="Rows per page.").tag(sync=True)
    loaded_at = traitlets.Unicode("", help="When the page was read (ISO, UTC).").tag(sync=True)
    live = traitlets.Bool(False, help="Running batches shown: refreshing itself.").tag(sync=True)

    # -- filters and sort (written by the browser)
    status = traitlets.Unicode("", help="Only batches with this status ('' any).").tag(sync=True)
    search = traitlets.Unicode("", help="Text in the batch name or a file name.").tag(sync=True)
    created_from = traitlets.Unicode("", help="Created on or after (YYYY-MM-DD).").tag(sync=True)
    created_to = traitlets.Unicode("", help="Created on or before (YYYY-MM-DD).").tag(sync=True)
    owner = traitlets.Unicode("", help="Only this owner's batches (admins).").tag(sync=True)
    has_failures = traitlets.Unicode("", help="'yes', 'no' or '' (either).").tag(sync=True)
    sort = traitlets.Unicode("created_at", help="Column sorted on.").tag(sync=True)
    descending = traitlets.Bool(True, help="Sort direction.").tag(sync=True)

    # -- selection, choices and what the kernel says
    selected = traitlets.List(traitlets.Int(), help="Batch ids ticked (any page).").tag(sync=True)
    options = traitlets.Dict(help="Choices the browser offers: statuses, formats, ...").tag(
        sync=True
    )
    dialog = traitlets.Dict(help="The open dialog ({} when none); see confirm.py.").tag(sync=True)
    message = traitlets.Dict(help="The last result or error: {text, kind}.").tag(sync=True)
    opened = traitlets.Int(0, help="The batch shown under the table (0: none).").tag(sync=True)

    def show_page(self, page: BatchPage) -> None:
        """Show ``page``: its rows, position and whether any of them is still running."""
        with self.hold_sync():
            self.rows = [row_of(summary) for summary in page.rows]
            self.total = page.total
            self.pages = page.pages
            self.loaded_at = _moment(datetime.now(UTC))
            self.live = any(summary.status in RUNNING for summary in page.rows)

    def running_shown(self) -> bool:
        """Whether a row on the page is pending or processing."""
        return any(row["status"] in RUNNING for row in self.rows)

    def say(self, text: str, kind: str = "info") -> None:
        """Show a message above the table (``kind``: info, success or error)."""
        self.message = {"text": text, "kind": kind}
