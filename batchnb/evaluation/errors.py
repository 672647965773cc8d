"""Readable failures: the values behind an evaluation's FP and FN, with document and page.

Counts say how often a field is wrong; these examples say how: what the label expects, what
the extractor gave, in which document, and the page the extractor's evidence points at (a
missed value has none). :func:`pick_examples` keeps a few per field so a report stays short,
and :func:`shorten` cuts long values (addresses, descriptions) to one readable line.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

from batchnb.evaluation.dataset import FieldMapping
from batchnb.evaluation.scoring import FieldScore, MismatchKind, Section

DEFAULT_EXAMPLES = 3
"""Examples per field (and dataset) a report shows unless told otherwise."""
DEFAULT_WIDTH = 60
"""Characters of a value a report shows before it is cut with "…"."""
NO_EVIDENCE = "no evidence"
"""What a report shows for the page of a value the extractor gave no page for."""
NOTHING = "(nothing)"
"""What a report shows for a value that was not there (missed, or not labelled)."""


@dataclass(frozen=True)
class ErrorExample:
    """One wrong, missed or spurious value of one document.

    Parameters
    ----------
    field:
        The ground truth's field name; ``lines.name`` for a line item's key.
    kind:
        ``wrong`` (another value), ``missing`` (nothing predicted) or ``spurious`` (a value of a
        predicted line item that matched no labelled item).
    expected, got:
        The labelled and predicted values, as they are (``None`` when absent).
    page:
        1-based page the extractor's evidence for the field points at; ``None`` when it gave
        none (always for a missed value).
    item:
        For line items, the 1-based position of the labelled item (of the predicted one for a
        spurious value).
    """

    dataset: str
    document: str
    section: Section
    field: str
    kind: MismatchKind
    expected: Any
    got: Any
    page: int | None = None
    item: int | None = None

    def as_row(self, width: int = DEFAULT_WIDTH) -> dict[str, Any]:
        """The example as a table row, values shortened, the page or "no evidence"."""
        return {
            "dataset": self.dataset,
            "field": self.field,
            "document": self.document,
            "page": NO_EVIDENCE if self.page is None else self.page,
            "item": "" if self.item is None else self.item,
            "kind": self.kind,
            "expected": shorten(self.expected, width),
            "got": shorten(self.got, width),
        }

    def as_json(self) -> dict[str, Any]:
        """JSON-able form: values in full."""
        return {
            "dataset": self.dataset,
            "document": self.document,
            "section": self.section,
            "field": self.field,
            "kind": self.kind,
            "expected": self.expected,
            "got": self.got,
            "page": self.page,
            "item": self.item,
        }


def evidence_pages(evidence: Mapping[str, Any], mapping: FieldMapping) -> dict[str, int | None]:
    """Ground-truth field → the page of the evidence of the result field it was paired with.

    A line-item array has one evidence entry (the table it was read from), so every key of its
    items points at that page.
    """
    pages: dict[str, int | None] = {}
    for truth_name, result_name in mapping.fields.items():
        found = evidence.get(result_name)
        page = found.get("page") if isinstance(found, Mapping) else None
        pages[truth_name] = page if isinstance(page, int) and not isinstance(page, bool) else None
    return pages


def error_examples(score: FieldScore, pages: Mapping[str, int | None]) -> list[ErrorExample]:
    """The examples behind one document's field score; ``pages`` from :func:`evidence_pages`."""
    page = pages.get(score.field.split(".", 1)[0])
    return [
        ErrorExample(
            dataset=score.dataset,
            document=score.document,
            section=score.section,
            field=score.field,
            kind=mismatch.kind,
            expected=mismatch.expected,
            got=mismatch.got,
            page=None if mismatch.kind == "missing" else page,
            item=mismatch.item,
        )
        for mismatch in score.mismatches
    ]


def pick_examples(examples: Iterable[ErrorExample], per_field: int) -> list[ErrorExample]:
    """The first ``per_field`` examples of each dataset's field, in the order given.

    Labelled values (wrong or missed) come before spurious item values, which are the least
    telling: an extra row of a table says little about why a field fails.
    """
    ordered = sorted(examples, key=lambda e: e.kind == "spurious")
    taken: dict[tuple[str, str], int] = {}
    picked = []
    for example in ordered:
        key = (example.dataset, example.field)
        if taken.get(key, 0) < per_field:
            taken[key] = taken.get(key, 0) + 1
            picked.append(example)
    order = {key: i for i, key in enumerate(dict.fromkeys((e.dataset, e.field) for e in examples))}
    return sorted(picked, key=lambda e: order[(e.dataset, e.field)])


def examples_table(examples: Iterable[ErrorExample], width: int = DEFAULT_WIDTH) -> pd.DataFrame:
    """One row per example: dataset, field, document, page, item, kind, expected, got."""
    columns = ["dataset", "field", "document", "page", "item", "kind", "expected", "got"]
    return pd.DataFrame([example.as_row(width) for example in examples], columns=columns)


def shorten(value: Any, width: int = DEFAULT_WIDTH) -> str:
    """A value on one line of at most ``width`` characters (money as "12.5 EUR")."""
    if value is None or (isinstance(value, str | list | dict) and not value):
        return NOTHING
    if isinstance(value, Mapping) and "amount" in value:
        amount, currency = value.get("amount"), value.get("currency")
        text = f"{amount} {currency}" if currency else str(amount)
    else:
        text = str(value)
    text = " ".join(text.split())
    if len(text) <= width:
        return text
    return text[: max(width - 1, 1)].rstrip() + "…"
