"""Evaluation: run labelled documents through the pipeline and score the results.

``evaluate("path/to/eval")`` submits each dataset of an evaluation folder as a batch, reads the
results back and scores them against the ground truth (micro precision/recall/F1 per field,
per dataset and overall, header fields and line items apart).
"""

from batchnb.evaluation.dataset import (
    EvalDataset,
    EvaluationError,
    FieldMapping,
    LabelledDocument,
    Task,
    load_datasets,
    load_tasks,
    map_fields,
    prompt_from_schema,
)
from batchnb.evaluation.report import DatasetRun, DocumentFailure, EvaluationReport
from batchnb.evaluation.runner import evaluate
from batchnb.evaluation.scoring import Counts, FieldScore, score_document, values_equal

__all__ = [
    "Counts",
    "DatasetRun",
    "DocumentFailure",
    "EvalDataset",
    "EvaluationError",
    "EvaluationReport",
    "FieldMapping",
    "FieldScore",
    "LabelledDocument",
    "Task",
    "evaluate",
    "load_datasets",
    "load_tasks",
    "map_fields",
    "prompt_from_schema",
    "score_document",
    "values_equal",
]
