"""How far the review of a batch has got: counts only, cheap to import.

``batchnb status`` and a batch's card show "reviewed x of y"; this module needs neither pandas
nor the extraction code, so the command stays quick (tests/cli/test_startup.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import case, distinct, func, select

from batchnb.db.models import Document, ExtractionBatch, FieldCorrection
from batchnb.db.statuses import DocumentStatus
from batchnb.errors import NotFoundError
from batchnb.services import display
from batchnb.services.workspace import Workspace, acting


@dataclass(frozen=True)
class ReviewStatus:
    """How far the review of a batch has got.

    ``reviewed`` documents were marked as checked; ``corrected_documents`` have at least one
    correction, ``corrections`` counts them all (a field corrected twice counts twice).
    """

    batch_id: int
    documents: int
    completed: int
    reviewed: int
    corrected_documents: int
    corrections: int

    @property
    def text(self) -> str:
        """``reviewed 3 of 7``: the reviewed documents out of those that can be reviewed."""
        return f"reviewed {self.reviewed} of {self.completed}"

    def _repr_html_(self) -> str:
        counts = {"completed": self.reviewed, "pending": max(self.completed - self.reviewed, 0)}
        facts = [
            ("reviewed", display.join(display.status_bar(counts), self.text)),
            ("corrected", f"{self.corrected_documents} documents, {self.corrections} values"),
            ("documents", f"{self.documents} ({self.completed} completed)"),
        ]
        return display.card(f"Review of batch {self.batch_id}", facts)


def review_status(batch_id: int, *, workspace: Workspace | None = None) -> ReviewStatus:
    """Documents, completed, reviewed and corrected counts of a batch (two aggregate queries)."""
    workspace, _ = acting(workspace, None)
    completed = case((Document.status == DocumentStatus.COMPLETED.value, 1), else_=0)
    with workspace.db.connect() as connection:
        documents, done, reviewed = connection.execute(
            select(
                func.count(),
                func.coalesce(func.sum(completed), 0),
                func.count(Document.reviewed_at),
            ).where(Document.batch_id == batch_id)
        ).one()
        corrections, corrected = connection.execute(
            select(func.count(), func.count(distinct(FieldCorrection.document_id))).where(
                FieldCorrection.batch_id == batch_id
            )
        ).one()
        exists = documents or connection.scalar(
            select(ExtractionBatch.id).where(ExtractionBatch.id == batch_id)
        )
    if not exists:
        raise NotFoundError(f"batch {batch_id} does not exist")
    return ReviewStatus(
        batch_id, int(documents), int(done), int(reviewed), int(corrected), int(corrections)
    )
