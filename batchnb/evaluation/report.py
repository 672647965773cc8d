"""The evaluation report: counts per document and field, rolled up into micro metrics.

Tables are pandas DataFrames (per field, per dataset); :meth:`EvaluationReport.summary` is the
JSON form with ``micro_f1`` overall, per dataset and per field, header fields and line items
apart. Micro averaging adds TP/FP/FN first and computes precision, recall and F1 once.

Failures can be read as well as counted: :meth:`EvaluationReport.error_examples` gives, per
field, a few values expected and got with their document and page (``--errors`` on the command
line, a section of the HTML page). An "auto" run also reports the classifier's accuracy per
document type and its confusion table.
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from batchnb.evaluation.classification import (
    ClassifiedDocument,
    accuracy_table,
    classification_summary,
    confusion_table,
)
from batchnb.evaluation.dataset import FieldMapping
from batchnb.evaluation.errors import (
    DEFAULT_EXAMPLES,
    DEFAULT_WIDTH,
    ErrorExample,
    examples_table,
    pick_examples,
)
from batchnb.evaluation.scoring import Counts, FieldScore, total

_METRIC_COLUMNS = ["tp", "fp", "fn", "precision", "recall", "f1"]


@dataclass(frozen=True)
class DocumentFailure:
    """A document without a result; its labelled fields all counted as FN."""

    dataset: str
    document: str
    error: str


@dataclass(frozen=True)
class DatasetRun:
    """What one dataset's batch produced and how it scored."""

    dataset: str
    prompt: str
    documents: int
    scores: tuple[FieldScore, ...]
    failures: tuple[DocumentFailure, ...] = ()
    mapping: FieldMapping = field(default_factory=lambda: FieldMapping(fields={}))
    errors: tuple[ErrorExample, ...] = ()
    """Every wrong, missed and spurious value, in document order."""
    classifications: tuple[ClassifiedDocument, ...] = ()
    """For an "auto" run, the type each document with a declared type was given."""


def metrics(counts: Counts) -> dict[str, Any]:
    """TP/FP/FN with micro precision, recall and ``micro_f1`` (``None`` when nothing scored)."""
    return {
        "tp": counts.tp,
        "fp": counts.fp,
        "fn": counts.fn,
        "precision": _rounded(counts.precision),
        "recall": _rounded(counts.recall),
        "micro_f1": _rounded(counts.f1),
    }


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def _sum(scores: Iterable[FieldScore], section: str | None = None) -> Counts:
    return total(s.counts for s in scores if section is None or s.section == section)


@dataclass(frozen=True)
class EvaluationReport:
    """The result of :func:`batchnb.evaluation.evaluate`."""

    folder: str
    use: str
    extractor: str
    runs: tuple[DatasetRun, ...]
    notes: tuple[str, ...] = ()
    strategy: str = "global"

    @property
    def scores(self) -> list[FieldScore]:
        return [score for run in self.runs for score in run.scores]

    @property
    def errors(self) -> list[ErrorExample]:
        """Every wrong, missed and spurious value of every dataset."""
        return [example for run in self.runs for example in run.errors]

    @property
    def classifications(self) -> list[ClassifiedDocument]:
        """What an "auto" run's classifier said about each document (empty otherwise)."""
        return [record for run in self.runs for record in run.classifications]

    def error_examples(self, per_field: int = DEFAULT_EXAMPLES) -> list[ErrorExample]:
        """A few examples per dataset and field, wrong and missed values first."""
        return pick_examples(self.errors, per_field)

    def error_table(
        self, per_field: int = DEFAULT_EXAMPLES, width: int = DEFAULT_WIDTH
    ) -> pd.DataFrame:
        """:meth:`error_examples` as a table, values cut to ``width`` characters."""
        return examples_table(self.error_examples(per_field), width)

    def classification_table(self) -> pd.DataFrame:
        """Per expected document type: documents, correct, accuracy, routed, low confidence."""
        return accuracy_table(self.classifications)

    def confusion_table(self) -> pd.DataFrame:
        """Documents per expected type (rows) and classified type (columns)."""
        return confusion_table(self.classifications)

    @property
    def failures(self) -> list[DocumentFailure]:
        return [failure for run in self.runs for failure in run.failures]

    @property
    def micro_f1(self) -> float | None:
        """Micro F1 over every scored field of every document."""
        return _sum(self.scores).f1

    def field_table(self) -> pd.DataFrame:
        """One row per dataset and field: TP, FP, FN, precision, recall, F1."""
        grouped: dict[tuple[str, str, str], Counts] = {}
        for score in self.scores:
            key = (score.dataset, score.section, score.field)
            grouped[key] = grouped.get(key, Counts()) + score.counts
        rows = [
            {"dataset": d, "section": s, "field": f, **_metric_row(c)}
            for (d, s, f), c in grouped.items()
        ]
        return pd.DataFrame(rows, columns=["dataset", "section", "field", *_METRIC_COLUMNS])

    def dataset_table(self) -> pd.DataFrame:
        """One row per dataset plus ``(all)``: documents, failures, header/line-item/overall F1."""
        rows = [self._dataset_row(run.dataset, [run]) for run in self.runs]
        rows.append(self._dataset_row("(all)", list(self.runs)))
        return pd.DataFrame(rows)

    @staticmethod
    def _dataset_row(name: str, runs: list[DatasetRun]) -> dict[str, Any]:
        scores = [score for run in runs for score in run.scores]
        overall = _sum(scores)
        return {
            "dataset": name,
            "documents": sum(run.documents for run in runs),
            "failed": sum(len(run.failures) for run in runs),
            "header_f1": _rounded(_sum(scores, "header").f1),
            "line_items_f1": _rounded(_sum(scores, "line_items").f1),
            **_metric_row(overall),
        }

    def summary(self, examples: int = 0) -> dict[str, Any]:
        """JSON-able summary: ``micro_f1`` overall, per dataset and per field, by section.

        An "auto" run adds ``classification``; ``examples`` > 0 adds ``errors``, that many
        per dataset and field (values in full).
        """
        scores = self.scores
        fields: dict[str, Counts] = {}
        for score in scores:
            fields[score.field] = fields.get(score.field, Counts()) + score.counts
        return {
            "folder": self.folder,
            "use": self.use,
            "extractor": self.extractor,
            "documents": sum(run.documents for run in self.runs),
            "failed": len(self.failures),
            **metrics(_sum(scores)),
            "header": metrics(_sum(scores, "header")),
            "line_items": metrics(_sum(scores, "line_items")),
            "datasets": {run.dataset: self._dataset_summary(run) for run in self.runs},
            "fields": {name: metrics(counts) for name, counts in fields.items()},
            "failures": [failure.__dict__ for failure in self.failures],
            "notes": list(self.notes),
            "strategy": self.strategy,
            **(
                {"classification": classification_summary(self.classifications)}
                if self.strategy == "auto"
                else {}
            ),
            **(
                {"errors": [e.as_json() for e in self.error_examples(examples)]}
                if examples > 0
                else {}
            ),
        }

    @staticmethod
    def _dataset_summary(run: DatasetRun) -> dict[str, Any]:
        fields: dict[str, Counts] = {}
        for score in run.scores:
            fields[score.field] = fields.get(score.field, Counts()) + score.counts
        return {
            "documents": run.documents,
            "failed": len(run.failures),
            "prompt": run.prompt,
            **metrics(_sum(run.scores)),
            "header": metrics(_sum(run.scores, "header")),
            "line_items": metrics(_sum(run.scores, "line_items")),
            "fields": {name: metrics(counts) for name, counts in fields.items()},
            "field_mapping": {
                **run.mapping.fields,
                **{
                    f"{array}.{key}": f"{run.mapping.fields[array]}.{source}"
                    for array, keys in run.mapping.items.items()
                    for key, source in keys.items()
                },
            },
            "unmapped": {
                "ground_truth": list(run.mapping.unmapped_truth),
                "result": list(run.mapping.unmapped_result),
            },
        }

    def to_json(self, indent: int | None = 2, examples: int = 0) -> str:
        """The :meth:`summary` as JSON text."""
        return json.dumps(self.summary(examples), indent=indent, ensure_ascii=False, default=str)

    def to_csv(self, path: str | Path) -> Path:
        """Write one long table: the ``(all)``/dataset rows, then every dataset's fields."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        datasets = self.dataset_table().assign(level="dataset", section="all", field="")
        fields = self.field_table().assign(level="field")
        columns = ["level", "dataset", "section", "field", *_METRIC_COLUMNS]
        table = pd.concat([datasets[columns], fields[columns]], ignore_index=True)
        table.to_csv(path, index=False)
        return path

    def to_html(self, path: str | Path, examples: int = DEFAULT_EXAMPLES) -> Path:
        """Write a standalone HTML page: dataset and field tables, the classification of an
        "auto" run, ``examples`` errors per field (0: none) and the failed documents."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        failures = pd.DataFrame([f.__dict__ for f in self.failures])
        parts = [
            "<!doctype html><meta charset='utf-8'><title>batchnb evaluation</title>",
            f"<h1>Evaluation of {html.escape(self.folder)}</h1>",
            f"<p>use={html.escape(self.use)}, extractor={html.escape(self.extractor)}, "
            f"strategy={html.escape(self.strategy)}</p>",
            "<h2>Datasets</h2>",
            self.dataset_table().to_html(index=False, na_rep=""),
            "<h2>Fields</h2>",
            self.field_table().to_html(index=False, na_rep=""),
        ]
        if self.strategy == "auto":
            parts += [
                "<h2>Classification</h2>",
                self.classification_table().to_html(index=False, na_rep=""),
                "<h3>Confusion (expected type x classified type)</h3>",
                self.confusion_table().to_html(),
            ]
        if examples > 0:
            table = self.error_table(examples)
            parts += [
                f"<h2>Errors (up to {examples} per field)</h2>",
                table.to_html(index=False) if not table.empty else "<p>none</p>",
            ]
        parts += [
            "<h2>Failed documents</h2>",
            failures.to_html(index=False) if not failures.empty else "<p>none</p>",
            *(f"<p>{html.escape(note)}</p>" for note in self.notes),
        ]
        path.write_text("\n".join(parts), encoding="utf-8")
        return path

    def to_text(self, examples: int = 0) -> str:
        """Tables for a terminal: datasets, fields, the classification of an "auto" run,
        ``examples`` errors per field (0: none), failed documents, notes."""
        lines = ["Datasets", self.dataset_table().to_string(index=False, na_rep="-"), ""]
        lines += ["Fields", self.field_table().to_string(index=False, na_rep="-"), ""]
        if self.strategy == "auto":
            lines += ["Classification", self.classification_table().to_string(index=False), ""]
            confusion = self.confusion_table()
            if not confusion.empty:
                lines += ["Confusion (expected type x classified type)", confusion.to_string()]
                lines.append("")
        if examples > 0:
            table = self.error_table(examples)
            lines.append(f"Errors (up to {examples} per field)")
            lines += [table.to_string(index=False) if not table.empty else "none", ""]
        if self.failures:
            lines.append(f"Failed documents ({len(self.failures)}, labelled fields count as FN)")
            lines += [f"  {f.dataset}/{f.document}: {f.error}" for f in self.failures]
        for run in self.runs:
            if run.mapping.unmapped_truth or run.mapping.unmapped_result:
                lines.append(
                    f"{run.dataset}: unmapped ground-truth fields "
                    f"{list(run.mapping.unmapped_truth)}, result fields "
                    f"{list(run.mapping.unmapped_result)}"
                )
        lines += [f"note: {note}" for note in self.notes]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.to_text()


def _metric_row(counts: Counts) -> dict[str, Any]:
    row = metrics(counts)
    row["f1"] = row.pop("micro_f1")
    return row
