"""``ResultsView``: a batch's results as a grid to check, correct and mark reviewed.

The grid (``widgets/results_view.js``) shows one page of rows at a time, searched, filtered
and sorted in the kernel over ``batch.results()`` (or one row per array item), so a batch of
any size sends a page, not its rows, to the browser. Failed documents show their error;
values flagged by a validation rule, of low confidence, or corrected (with the value as
extracted on hover) are marked; reviewed documents carry a tick. A cell is corrected in place
(:func:`batchnb.services.review.correct_value`; a refusal or a bad value is shown in the cell),
and clicking a row opens its :class:`~batchnb.ui.document_view.DocumentView` below the grid.

Messages from the browser: ``edit {key, column, value}`` (answered through ``edit_errors``),
``open {key}``, ``review {document_id, reviewed}``, ``refresh``. The query (search, filter,
sort, page, mode) is synced state the browser sets.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import anywidget
import ipywidgets as widgets
import pandas as pd
import traitlets

from batchnb.errors import BatchnbError, SchemaError
from batchnb.services.batches import Batch, get_batch
from batchnb.services.document_view import (
    LOW_CONFIDENCE,
    ResultAnnotations,
    result_annotations,
)
from batchnb.services.results import batch_results, export_dataframe
from batchnb.services.review import (
    Correction,
    correct_value,
    list_corrections,
    mark_reviewed,
    review_marks,
    review_status,
)
from batchnb.services.workspace import Workspace
from batchnb.ui.assets import asset
from batchnb.ui.background import in_background
from batchnb.ui.document_view import DocumentView
from batchnb.ui.results_table import (
    FILTERS,
    HIDDEN,
    GridColumn,
    Marks,
    Query,
    grid_columns,
    page_rows,
    search_text,
    selected,
)
from batchnb.ui.review_cells import error_message

log = logging.getLogger(__name__)

MODES = ("normal", "multi-row")
_ANNOTATION_CHUNK = 1000


class ResultsGrid(anywidget.AnyWidget):
    """The grid's front end: the page of rows shown and the query the reader sets."""

    _esm = asset("results_view.js")
    _css = asset("results_view.css")

    title = traitlets.Unicode("").tag(sync=True)
    columns = traitlets.List(traitlets.Dict()).tag(sync=True)
    rows = traitlets.List(traitlets.Dict()).tag(sync=True)
    total = traitlets.Int(0).tag(sync=True)
    #: Rows before filtering (``total`` is after).
    count = traitlets.Int(0).tag(sync=True)
    search = traitlets.Unicode("").tag(sync=True)
    filter = traitlets.Unicode("all").tag(sync=True)
    filters = traitlets.List(traitlets.List()).tag(sync=True)
    sort = traitlets.Unicode("").tag(sync=True)
    descending = traitlets.Bool(False).tag(sync=True)
    page = traitlets.Int(0).tag(sync=True)
    page_size = traitlets.Int(25).tag(sync=True)
    mode = traitlets.Unicode("normal").tag(sync=True)
    #: Whether the batch has array fields (multi-row mode is offered only then).
    has_arrays = traitlets.Bool(False).tag(sync=True)
    #: "reviewed 3 of 7 · 2 documents corrected"
    summary = traitlets.Unicode("").tag(sync=True)
    selected = traitlets.Int(0).tag(sync=True)
    loading = traitlets.Bool(True).tag(sync=True)
    message = traitlets.Unicode("").tag(sync=True)
    #: ``"<row key>:<column>"`` → why the last edit of that cell was refused.
    edit_errors = traitlets.Dict().tag(sync=True)


class ResultsView(widgets.VBox):
    """A batch's results to review: a grid, and the document view of the row clicked.

    Parameters
    ----------
    batch:
        The batch (a :class:`~batchnb.Batch` or its id).
    workspace:
        Its workspace; ``None``: the batch's own, else the default workspace.
    actor:
        Who corrects and reviews (default: the workspace's user).
    low_confidence:
        Values below this confidence are marked.
    page_size:
        Rows per page of the grid.
    """

    def __init__(
        self,
        batch: Batch | int,
        *,
        workspace: Workspace | None = None,
        actor: str | None = None,
        low_confidence: float = LOW_CONFIDENCE,
        page_size: int = 25,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if isinstance(batch, Batch):
            workspace = workspace or batch.workspace
            batch_id = batch.id
        else:
            batch_id = int(batch)
        self.batch = get_batch(batch_id, workspace) if not isinstance(batch, Batch) else batch
        self.workspace = workspace or self.batch.workspace
        self.actor = actor
        self.low_confidence = low_confidence
        self.frame = pd.DataFrame()
        self.marks = Marks()
        self.document_view: DocumentView | None = None
        self._columns: list[GridColumn] = []
        self._visible = pd.DataFrame()
        self._search_text: pd.Series | None = None
        self._visible_key: tuple[Any, ...] | None = None
        self._preparing = False
        self.add_class("batchnb-results-view")

        self.grid = ResultsGrid(page_size=page_size, filters=[list(f) for f in FILTERS])
        self.grid.title = f"Batch {self.batch.id} · results"
        self.grid.on_msg(self._handle_message)
        self.grid.observe(
            self._on_query, names=["search", "filter", "sort", "descending", "page", "page_size"]
        )
        self.grid.observe(lambda _: self.refresh(), names="mode")
        self.detail = widgets.VBox()
        self.detail.add_class("batchnb-results-detail")
        self.children = [self.grid, self.detail]
        self.refresh()

    def __repr__(self) -> str:
        return (
            f"ResultsView(batch {self.batch.id}: {self.grid.total} of {self.grid.count} rows, "
            f"page {self.grid.page + 1}, mode {self.grid.mode!r})"
        )

    # -- public API ----------------------------------------------------------------------------

    @property
    def query(self) -> Query:
        """The reader's search, filter, sort and page, as the grid has them."""
        grid = self.grid
        return Query(
            grid.search, grid.filter, grid.sort, grid.descending, grid.page, grid.page_size
        )

    def refresh(self) -> None:
        """Read the results again (values as corrected, marks, review counts) and redraw."""
        self.grid.loading = True
        mode = self.grid.mode if self.grid.mode in MODES else "normal"
        in_background(lambda: self._read(mode), self._loaded, self._failed)

    def open_document(self, document_id: int) -> DocumentView:
        """Show the document view of ``document_id`` below the grid (what a row click does)."""
        view = DocumentView(
            document_id,
            workspace=self.workspace,
            actor=self.actor,
            low_confidence=self.low_confidence,
        )
        view.on_change(lambda _: self.refresh())
        self.document_view = view
        self.grid.selected = int(document_id)
        self.detail.children = [view]
        return view

    def correct(self, key: int, column: str, value: Any) -> Correction | None:
        """Correct the cell of row ``key`` (its index in :attr:`frame`) in ``column``; the
        refusal or the problem with the value is shown in the cell and ``None`` returned."""
        cell = f"{key}:{column}"
        try:
            document_id, path, typed = self._edit_target(key, column, value)
            correction = correct_value(
                document_id, path, typed, workspace=self.workspace, actor=self.actor
            )
        except Exception as error:
            if not isinstance(error, BatchnbError):
                log.error("correcting %s failed", cell, exc_info=error)
            self.grid.edit_errors = {**self.grid.edit_errors, cell: error_message(error)}
            return None
        self.grid.edit_errors = {k: v for k, v in self.grid.edit_errors.items() if k != cell}
        self.grid.message = f"document {document_id}: {path} corrected"
        self.refresh()
        if self.document_view is not None and self.document_view.document_id == document_id:
            self.document_view.reload()
        return correction

    def set_reviewed(self, document_id: int, reviewed: bool = True) -> bool:
        """Mark a document reviewed (or not); ``False`` and the reason shown when refused."""
        try:
            mark_reviewed(document_id, reviewed, workspace=self.workspace, actor=self.actor)
        except Exception as error:
            self.grid.message = error_message(error)
            return False
        self.grid.message = f"document {document_id} " + (
            "marked reviewed" if reviewed else "no longer marked reviewed"
        )
        self.refresh()
        if self.document_view is not None and self.document_view.document_id == document_id:
            self.document_view.reload()
        return True

    # -- reading -------------------------------------------------------------------------------

    def _read(self, mode: str) -> tuple[pd.DataFrame, Marks, str]:
        """The rows of ``mode``, the marks of the batch and its review summary (off the loop)."""
        workspace, batch_id = self.workspace, self.batch.id
        frame = batch_results(batch_id, workspace, self.actor)
        if mode == "multi-row" and _has_arrays(frame):
            frame = export_dataframe(
                batch_id, "multi-row", include_failed=True, workspace=workspace, actor=self.actor
            )
            frame.insert(0, "item_index", _item_indices(frame))
        corrected, reviewed = review_marks(workspace, batch_id)
        originals: dict[tuple[int, str], Any] = {}
        if corrected:
            for correction in list_corrections(
                batch_id=batch_id, workspace=workspace, actor=self.actor
            ):  # newest first: the oldest one's old value is the value as extracted
                originals[(correction.document_id, correction.field)] = correction.old_value
        status = review_status(batch_id, workspace=workspace)
        corrected_text = (
            f" · {status.corrected_documents} document"
            f"{'s' if status.corrected_documents != 1 else ''} corrected"
            if status.corrected_documents
            else ""
        )
        return (
            frame,
            Marks(corrected=corrected, reviewed=reviewed, originals=originals),
            status.text + (corrected_text),
        )

    def _loaded(self, found: tuple[pd.DataFrame, Marks, str]) -> None:
        frame, marks, summary = found
        self.frame, self.marks = frame.reset_index(drop=True), marks
        self._search_text = None
        self._visible_key = None
        self._columns = grid_columns(self.frame) if len(self.frame.columns) else []
        grid = self.grid
        grid.columns = [column.state() for column in self._columns]
        grid.has_arrays = _has_arrays(frame) or grid.mode == "multi-row"
        grid.count = len(self.frame)
        grid.summary = summary
        self._draw()
        grid.loading = False

    def _failed(self, error: Exception) -> None:
        if not isinstance(error, BatchnbError):
            log.error("reading the results of batch %s failed", self.batch.id, exc_info=error)
        self.grid.loading = False
        self.grid.message = error_message(error)

    def _on_query(self, change: dict[str, Any]) -> None:
        if change["name"] != "page" and self.grid.page != 0:
            self.grid.page = 0  # a new question starts at the first page (and redraws)
            return
        self._draw()

    def _draw(self) -> None:
        """Filter, sort and cut the current page; send only that page to the browser."""
        if not len(self.frame):
            self.grid.total, self.grid.rows = 0, []
            return
        query = self.query
        preparation = self._preparation(query)
        if preparation is not None:
            self._prepare(preparation)  # draws again when ready
            return
        key = (query.search, query.filter, query.sort, query.descending)
        if key != self._visible_key:  # turning a page reuses the rows found
            self._visible = selected(
                self.frame, query, self.marks, self.low_confidence, self._search_text
            )
            self._visible_key = key
        rows = self._visible
        size = max(query.page_size, 1)
        last_page = max((len(rows) - 1) // size, 0)
        if query.page > last_page:
            self.grid.page = last_page
            return
        start = query.page * size
        shown = rows.iloc[start : start + size]
        self._annotate(shown["document_id"])  # one query for the page's documents
        self.grid.total = len(rows)
        self.grid.rows = page_rows(shown, self._columns, self.marks, self.low_confidence)

    def _preparation(self, query: Query) -> Callable[[], Callable[[], None]] | None:
        """What the query needs read or made first, once per reading of the results: every
        document's flags (flags filter), annotations (low-confidence filter) or the search
        text. The work runs off the event loop and returns what to keep, on the loop."""
        marks, frame, batch_id = self.marks, self.frame, self.batch.id
        options = {"batch_id": batch_id, "workspace": self.workspace, "actor": self.actor}
        if query.filter == "flagged" and marks.flags is None:

            def read_flags() -> Callable[[], None]:
                found = result_annotations(with_evidence=False, **options)  # type: ignore[arg-type]
                flags = {i: a.flags for i, a in found.items()}
                return lambda: setattr(marks, "flags", flags)

            return read_flags
        if query.filter == "low" and not marks.complete:

            def read_annotations() -> Callable[[], None]:
                found = result_annotations(**options)  # type: ignore[arg-type]

                def keep() -> None:
                    marks.annotations.update(found)
                    marks.complete = True

                return keep

            return read_annotations
        if query.search.strip() and self._search_text is None:

            def make_text() -> Callable[[], None]:
                text = search_text(frame)
                return lambda: setattr(self, "_search_text", text if frame is self.frame else None)

            return make_text
        return None

    def _prepare(self, work: Callable[[], Callable[[], None]]) -> None:
        if self._preparing:
            return
        self._preparing = True
        self.grid.loading = True

        def done(keep: Callable[[], None]) -> None:
            keep()
            self._preparing = False
            self.grid.loading = False
            self._visible_key = None
            self._draw()

        def failed(error: Exception) -> None:
            self._preparing = False
            self._failed(error)

        in_background(work, done, failed)

    def _annotate(self, document_ids: pd.Series) -> None:
        """Read the annotations (confidence, flags) of the documents not read yet."""
        known = self.marks.annotations
        missing = [int(i) for i in document_ids.unique() if int(i) not in known]
        for start in range(0, len(missing), _ANNOTATION_CHUNK):
            chunk = missing[start : start + _ANNOTATION_CHUNK]
            found = result_annotations(chunk, workspace=self.workspace, actor=self.actor)
            known.update({i: found.get(i, ResultAnnotations()) for i in chunk})

    # -- edits ---------------------------------------------------------------------------------

    def _edit_target(self, key: int, column: str, value: Any) -> tuple[int, str, Any]:
        """(document id, field path, value) of an edit of a cell."""
        if key not in self.frame.index:
            raise SchemaError(f"row {key} is not in the grid any more: refresh it")
        row = self.frame.loc[key]
        found = next((c for c in self._columns if c.key == column), None)
        if found is None or not found.editable:
            raise SchemaError(f"column {column!r} cannot be edited here")
        item = row.get("item_index")
        path = found.path(None if item is None or pd.isna(item) else int(item))
        if path is None:
            raise SchemaError("this document has no item here to correct; open the document")
        if found.kind in ("currency", "item_currency"):
            amount_column = column.removesuffix("_currency")
            amount = row.get(amount_column)
            amount = None if amount is None or pd.isna(amount) else float(amount)
            value = {"amount": amount, "currency": value or None}
        return self._document_at(key), path, value

    def _document_at(self, key: int) -> int:
        value: Any = self.frame.at[key, "document_id"]
        return int(value)

    def _handle_message(self, _: Any, content: dict[str, Any], buffers: list[bytes]) -> None:
        kind = content.get("type")
        if kind == "edit":
            self.correct(int(content["key"]), str(content["column"]), content.get("value"))
        elif kind == "open":
            key = int(content["key"])
            if key in self.frame.index:
                self.open_document(self._document_at(key))
        elif kind == "review":
            self.set_reviewed(int(content["document_id"]), bool(content.get("reviewed", True)))
        elif kind == "refresh":
            self.refresh()


def _has_arrays(frame: pd.DataFrame) -> bool:
    """Whether the results hold an array field (whole, or expanded one item per row)."""
    if any("." in str(name) for name in frame.columns):
        return True
    return any(
        frame[name].map(lambda v: isinstance(v, list)).any()
        for name in frame.columns
        if frame[name].dtype == object and name not in HIDDEN
    )


def _item_indices(frame: pd.DataFrame) -> pd.Series:
    """Multi-row mode: each row's item number within its document (``None`` where the
    document has no items)."""
    items = [c for c in frame.columns if "." in str(c)]
    has_item = frame[items].notna().any(axis=1) if items else pd.Series(False, index=frame.index)
    numbers = frame.groupby("document_id").cumcount()
    return numbers.where(has_item, other=None).astype(object)
