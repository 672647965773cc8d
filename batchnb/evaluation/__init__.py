"""Evaluation: run labelled documents through the pipeline and score the results.

``evaluate("path/to/eval")`` submits each dataset of an evaluation folder as a batch, reads the
results back and scores them against the ground truth (micro precision/recall/F1 per field,
per dataset and overall, header fields and line items apart), with examples of the values behind
the failures and, for ``strategy="auto"``, the classifier's accuracy per document type.
"""

from batchnb.evaluation.classification import ClassifiedDocument
from batchnb.evaluation.dataset import (
    KNOWN_DOCUMENT_TYPES,
    EvalDataset,
    EvaluationError,
    FieldMapping,
    LabelledDocument,
    Task,
    in_part,
    load_datasets,
    load_tasks,
    map_fields,
    parse_part,
    prompt_from_schema,
)
from batchnb.evaluation.errors import ErrorExample
from batchnb.evaluation.report import DatasetRun, DocumentFailure, EvaluationReport
from batchnb.evaluation.runner import evaluate
from batchnb.evaluation.scoring import Counts, FieldScore, Mismatch, score_document, values_equal

__all__ = [
    "KNOWN_DOCUMENT_TYPES",
    "ClassifiedDocument",
    "Counts",
    "DatasetRun",
    "DocumentFailure",
    "ErrorExample",
    "EvalDataset",
    "EvaluationError",
    "EvaluationReport",
    "FieldMapping",
    "FieldScore",
    "LabelledDocument",
    "Mismatch",
    "Task",
    "evaluate",
    "in_part",
    "load_datasets",
    "load_tasks",
    "map_fields",
    "parse_part",
    "prompt_from_schema",
    "score_document",
    "values_equal",
]
