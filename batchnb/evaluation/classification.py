"""Classification accuracy: the type "auto" gave each document against the type it has.

An evaluation run with ``strategy="auto"`` records, per document, the type its dataset declares
(:attr:`~batchnb.evaluation.dataset.LabelledDocument.document_type`) and the type the
classifier gave it (stored in the result's evidence). This module rolls them up into accuracy
per expected type and a confusion table (expected type x classified type).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

FAILED = "(failed)"
"""The classified type of a document that produced no result (so was never classified)."""


@dataclass(frozen=True)
class ClassifiedDocument:
    """What the classifier said about one labelled document.

    Parameters
    ----------
    expected:
        The type the dataset declares for the document.
    classified:
        The type the classifier gave it, or :data:`FAILED` when the document has no result.
    confidence:
        The classifier's confidence; ``None`` for a failed document.
    low_confidence:
        Below the batch's ``min_confidence``: the document was extracted with the fallback
        template whatever its type.
    """

    dataset: str
    document: str
    expected: str
    classified: str
    confidence: float | None = None
    low_confidence: bool = False

    @property
    def correct(self) -> bool:
        return self.classified == self.expected

    @property
    def routed(self) -> bool:
        """Right type, and sure enough to get that type's template."""
        return self.correct and not self.low_confidence


def accuracy_table(records: Sequence[ClassifiedDocument]) -> pd.DataFrame:
    """One row per expected type plus ``(all)``: documents, correct, accuracy, routed, low."""
    types = sorted({r.expected for r in records})
    rows = [_accuracy_row(t, [r for r in records if r.expected == t]) for t in types]
    if records:
        rows.append(_accuracy_row("(all)", list(records)))
    columns = ["expected", "documents", "correct", "accuracy", "routed", "low_confidence"]
    return pd.DataFrame(rows, columns=columns)


def _accuracy_row(name: str, records: Sequence[ClassifiedDocument]) -> dict[str, Any]:
    correct = sum(r.correct for r in records)
    return {
        "expected": name,
        "documents": len(records),
        "correct": correct,
        "accuracy": round(correct / len(records), 4) if records else None,
        "routed": sum(r.routed for r in records),
        "low_confidence": sum(r.low_confidence for r in records),
    }


def confusion_table(records: Iterable[ClassifiedDocument]) -> pd.DataFrame:
    """Counts of documents: expected type per row, classified type per column."""
    records = list(records)
    expected = sorted({r.expected for r in records})
    classified = sorted({r.classified for r in records})
    counts = {(e, c): 0 for e in expected for c in classified}
    for record in records:
        counts[record.expected, record.classified] += 1
    table = pd.DataFrame(
        [[counts[e, c] for c in classified] for e in expected], index=expected, columns=classified
    )
    table.index.name = "expected \\ classified"
    return table


def classification_summary(records: Sequence[ClassifiedDocument]) -> dict[str, Any]:
    """JSON-able: overall accuracy, per expected type, the confusion counts, and the misses."""
    table = accuracy_table(records).set_index("expected")
    confusion = confusion_table(records)
    return {
        "documents": len(records),
        "accuracy": table.loc["(all)", "accuracy"] if records else None,
        "types": {
            name: {key: _plain(value) for key, value in row.items()}
            for name, row in table.drop(index="(all)", errors="ignore").iterrows()
        },
        "confusion": {
            str(expected): {str(c): int(n) for c, n in row.items() if n}
            for expected, row in confusion.iterrows()
        },
        "misclassified": [
            {
                "dataset": r.dataset,
                "document": r.document,
                "expected": r.expected,
                "classified": r.classified,
                "confidence": r.confidence,
            }
            for r in records
            if not r.correct
        ],
    }


def _plain(value: Any) -> Any:
    """A numpy scalar as the Python number ``json`` can write."""
    return value.item() if hasattr(value, "item") else value
