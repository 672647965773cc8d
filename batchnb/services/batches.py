"""Following a batch: the :class:`Batch` handle, its progress, its results, its failures."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, func, select

from batchnb.cache import PROGRESS
from batchnb.db.models import Document, ExtractionBatch, ExtractionJob
from batchnb.db.statuses import DocumentStatus
from batchnb.errors import NotFoundError
from batchnb.formats import Mode
from batchnb.services import display
from batchnb.services.waiting import wait_until
from batchnb.services.workspace import Workspace, acting

if TYPE_CHECKING:
    import pandas as pd

    from batchnb.documents.intake import Refusal
    from batchnb.services.exports import ExportHandle
    from batchnb.services.review_status import ReviewStatus
    from batchnb.ui.progress import BatchProgress
    from batchnb.ui.results_view import ResultsView

# pandas and the export machinery are imported by the methods that need them: counting a
# batch's documents (`batchnb status`) needs neither.

PROGRESS_KEYS = ("pending", "processing", "completed", "failed", "cancelled")
FAILURE_COLUMNS = ("document_id", "file_name", "error_kind", "error", "traceback")


@dataclass(frozen=True)
class Progress:
    """Documents of a batch per status (a document waiting to be retried is pending)."""

    pending: int = 0
    processing: int = 0
    completed: int = 0
    failed: int = 0
    cancelled: int = 0

    @property
    def total(self) -> int:
        return self.pending + self.processing + self.completed + self.failed + self.cancelled

    @property
    def done(self) -> int:
        return self.completed + self.failed + self.cancelled

    @property
    def finished(self) -> bool:
        return self.done == self.total

    def as_dict(self) -> dict[str, int]:
        return {key: getattr(self, key) for key in PROGRESS_KEYS}

    def _repr_html_(self) -> str:
        return display.progress_html(self.as_dict())


@dataclass(repr=False)
class Batch:
    """A handle on one batch: progress, waiting, results. Holds no database session.

    Its repr reads the batch's row and (cached) counts: ``Batch(id=3, name='March',
    status='processing', 5/7 done, 1 failed)``; in Jupyter it is a card with a progress bar.
    """

    id: int
    workspace: Workspace
    refused: list[Refusal] = field(default_factory=list)

    def __repr__(self) -> str:
        def build() -> str:
            row, progress = self.info(), self.progress()
            name = display.shorten(row.name)
            refused = f", {len(self.refused)} refused" if self.refused else ""
            counts = display.progress_text(progress.as_dict())
            return f"Batch(id={self.id}, name={name!r}, status={row.status!r}, {counts}{refused})"

        return display.describe_or_fallback("Batch", self.id, build)

    def _repr_html_(self) -> str | None:
        def build() -> display.Html:
            row = self.info()
            progress = self.progress().as_dict()
            facts: list[tuple[str, object]] = [
                ("documents", display.progress_html(progress)),
                ("created", row.created_at),
                ("owner", row.owner),
                ("extractor", row.extractor),
            ]
            if progress["completed"]:
                facts.append(("review", self.review_status().text))
            after: object = ""
            if self.refused:
                refused = [(r.file_name, r.reason) for r in self.refused]
                after = display.join(
                    display.Html(
                        f"<div style='margin-top:0.4em'>{len(refused)} refused at intake:</div>"
                    ),
                    display.table(("file", "reason"), refused),
                )
            return display.card(
                f"Batch {self.id} · {row.name}", facts, status=row.status, after=after
            )

        return display.html_or_none(build)

    def info(self) -> ExtractionBatch:
        """The batch's row (a detached snapshot)."""
        with self.workspace.db.read() as session:
            batch = session.get(ExtractionBatch, self.id)
            if batch is None:
                raise NotFoundError(f"batch {self.id} does not exist")
            return batch

    @property
    def status(self) -> str:
        return self.info().status

    def progress(self, *, cached: bool = True) -> Progress:
        """Counts per status (one indexed aggregate query, cached for about a second)."""
        return batch_progress(self.workspace, self.id, cached=cached)

    def wait(
        self,
        timeout: float | None = None,
        poll_seconds: float = 0.25,
        on_progress: Callable[[Progress], None] | None = None,
        *,
        progress: bool | None = None,
    ) -> Progress:
        """Block until every document is final and return the counts.

        A :class:`~batchnb.services.waiting.NoWorkerWarning` says so when no worker is alive
        to do the work after a few seconds.

        Parameters
        ----------
        timeout:
            Raise TimeoutError after this many seconds (the documents stay queued).
        on_progress:
            Called with the counts at every poll, the last one included.
        progress:
            Show a progress bar (a widget in Jupyter, text on standard error elsewhere):
            ``True`` always, ``False`` never, ``None`` in an interactive session while there
            is something to wait for and no ``on_progress`` is given.
        """
        final = wait_until(
            lambda: self.progress(cached=False),
            lambda counts: counts.finished,
            timeout=timeout,
            poll_seconds=poll_seconds,
            subject=f"batch {self.id}",
            describe=lambda counts: display.breakdown_text(counts.as_dict()),
            count=lambda counts: (counts.done, counts.total),
            workspace=self.workspace,
            on_progress=on_progress,
            progress=progress,
        )
        # Nobody should see older counts after waiting: drop the cached ones.
        self.workspace.cache.invalidate(PROGRESS)
        return final

    def progress_widget(self, *, interval: float = 1.0) -> BatchProgress:
        """A live progress panel of this batch (:class:`batchnb.ui.BatchProgress`).

        It updates itself from the notebook's event loop, a cell can run meanwhile; outside a
        notebook use ``wait(progress=True)`` or ``BatchProgress.watch(batch)`` for a text bar.
        """
        # The one import of the ui from the services (see LAYER_EXCEPTIONS in
        # tests/test_structure.py): the handle offers its widget, imported only when asked.
        from batchnb.ui.progress import BatchProgress

        return BatchProgress(self, interval=interval)

    def results(self, *, originals: bool = False) -> pd.DataFrame:
        """One row per document, whatever its status, typed like :meth:`to_dataframe`.

        Columns: ``document_id``, ``file_name``, ``batch_id``, ``status``, ``error``, for an
        "auto" batch ``document_type`` and ``type_confidence``, then each field in schema
        order (money as an amount and a ``_currency`` column, dates as datetimes, arrays as
        lists of items), then ``reviewed`` (marked as checked), ``corrected`` (the paths of
        the document's corrected fields) and ``confidence``. Documents still waiting
        or running have empty fields. Values are corrected (see :func:`batchnb.correct_value`)
        unless ``originals``: then they are as extracted.
        """
        from batchnb.services.results import batch_results

        return batch_results(self.id, self.workspace, originals=originals)

    def review(self) -> ResultsView:
        """The batch's results as a grid to review and correct (:class:`batchnb.ui.ResultsView`)."""
        # Like progress_widget: the one other import of the ui from the services, when asked.
        from batchnb.ui.results_view import ResultsView

        return ResultsView(self, workspace=self.workspace)

    def review_status(self) -> ReviewStatus:
        """How many documents are reviewed and corrected (:func:`batchnb.review_status`)."""
        from batchnb.services.review_status import review_status

        return review_status(self.id, workspace=self.workspace)

    def failures(self) -> pd.DataFrame:
        """The failed documents: why (``error``, ``error_kind``) and where (``traceback``).

        The traceback holds the innermost frames of the failure, for errors that are not a
        plain problem with the document (those say everything in their message).
        """
        return batch_failures(self.workspace, self.id)

    def to_dataframe(
        self,
        mode: Mode = "normal",
        *,
        array_field: str | None = None,
        include_failed: bool = False,
        include_confidence: bool = False,
        originals: bool = False,
    ) -> pd.DataFrame:
        """The batch's results shaped like an export (see :func:`batchnb.export`).

        ``normal`` gives one row per document with arrays as lists; ``multi-row`` one row per
        item of ``array_field`` with the document's columns repeated. Corrected values replace
        the extracted ones unless ``originals``.
        """
        from batchnb.services.results import export_dataframe

        return export_dataframe(
            self.id,
            mode,
            array_field=array_field,
            include_failed=include_failed,
            include_confidence=include_confidence,
            originals=originals,
            workspace=self.workspace,
        )

    def export(
        self,
        format: str | None = None,
        mode: Mode = "normal",
        path: str | Path | None = None,
        **options: Any,
    ) -> ExportHandle:
        """Export this batch to a file; the options are those of :func:`batchnb.export`."""
        from batchnb.services.exports import export

        return export(self.id, format, mode, path, workspace=self.workspace, **options)


# Documents, not queue items: a retried document has two items but is one document.
_DOCUMENT_STATUS_COUNTS = (
    select(Document.status, func.count())
    .where(Document.batch_id == bindparam("batch"))
    .group_by(Document.status)
)


def batch_progress(workspace: Workspace, batch_id: int, *, cached: bool = True) -> Progress:
    """Documents of a batch per status (one indexed aggregate query).

    With ``cached`` the counts may be up to the cache's progress lifetime old (about a
    second, see :mod:`batchnb.cache.summary`): many viewers polling one batch then cost one
    query per second between them.
    """
    if cached:
        return workspace.cache.get_or_create(
            PROGRESS, str(batch_id), lambda: batch_progress(workspace, batch_id, cached=False)
        )
    with workspace.db.connect() as connection:
        counts = dict(connection.execute(_DOCUMENT_STATUS_COUNTS, {"batch": batch_id}).all())
    return Progress(**{key: counts.get(key, 0) for key in PROGRESS_KEYS})


def batch_failures(workspace: Workspace, batch_id: int) -> pd.DataFrame:
    """One row per failed document of the batch, with its newest job's kind and traceback."""
    import pandas as pd

    newest_job = (
        select(func.max(ExtractionJob.id))
        .where(ExtractionJob.document_id == Document.id)
        .correlate(Document)
        .scalar_subquery()
    )
    with workspace.db.connect() as connection:
        rows = connection.execute(
            select(
                Document.id,
                Document.file_name,
                Document.error_kind,
                Document.error,
                ExtractionJob.error_traceback,
            )
            .outerjoin(ExtractionJob, ExtractionJob.id == newest_job)
            .where(Document.batch_id == batch_id, Document.status == DocumentStatus.FAILED)
            .order_by(Document.id)
        ).all()
    return pd.DataFrame([tuple(row) for row in rows], columns=list(FAILURE_COLUMNS))


def get_batch(batch_id: int, workspace: Workspace | None = None) -> Batch:
    """A handle on an existing batch."""
    workspace, _ = acting(workspace, None)
    batch = Batch(batch_id, workspace)
    batch.info()
    return batch


def latest_batch(workspace: Workspace | None = None) -> Batch | None:
    """The most recently created batch, if any."""
    workspace, _ = acting(workspace, None)
    with workspace.db.read() as session:
        batch_id = session.scalar(
            select(ExtractionBatch.id).order_by(ExtractionBatch.id.desc()).limit(1)
        )
    return None if batch_id is None else Batch(batch_id, workspace)
