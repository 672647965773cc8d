"""Running an evaluation: every dataset's documents through the real pipeline, then scoring.

Each dataset becomes one batch submitted with :func:`batchnb.services.batches.submit` and its
task's prompt; results are read back from the stored ``extracted_data`` rows (typed values:
money stays ``{"amount", "currency"}``), renamed to the ground truth's field names and scored.
The values behind every FP and FN are kept with the page of their evidence (see
:mod:`batchnb.evaluation.errors`).

With ``strategy="auto"`` each batch classifies its documents and extracts each with its type's
template, the task's prompt standing as the template of the dataset's declared type: a document
classified right is extracted exactly as in a "global" run, one classified wrong with another
type's template. The type each document got is kept for :mod:`batchnb.evaluation.classification`.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select

from batchnb.db.models import Document, ExtractedData
from batchnb.documents.intake import safe_file_name
from batchnb.errors import IntakeError
from batchnb.evaluation.classification import FAILED, ClassifiedDocument
from batchnb.evaluation.dataset import (
    USES,
    EvalDataset,
    EvaluationError,
    FieldMapping,
    LabelledDocument,
    Part,
    Use,
    load_datasets,
    map_fields,
)
from batchnb.evaluation.errors import ErrorExample, error_examples, evidence_pages
from batchnb.evaluation.report import DatasetRun, DocumentFailure, EvaluationReport
from batchnb.evaluation.scoring import FieldScore, score_document
from batchnb.extract import Schema, schema_from_prompt
from batchnb.jobs.documents import DOCUMENT_INFO_KEY
from batchnb.services.health import live_workers
from batchnb.services.submit import submit
from batchnb.services.workers import start_worker
from batchnb.services.workspace import Workspace, open_workspace

SCHEMA_NOTE = (
    "--use schema: batches take a prompt, not a schema, so each dataset ran with a prompt "
    "written from its schema (field names identical; value types inferred from the words)"
)
STRATEGIES: tuple[str, ...] = ("global", "auto")
AUTO_NOTE = (
    "--strategy auto: each document was classified and extracted with its type's template; "
    "the task's prompt is the template of its dataset's declared type, the built-in templates "
    "the others'"
)


@dataclass(frozen=True)
class _Stored:
    """What a batch stored for one document: values, evidence and the schema they follow."""

    data: dict[str, Any]
    evidence: dict[str, Any]
    schema: dict[str, Any]


def evaluate(
    folder: str | Path,
    *,
    use: Use = "prompt",
    extractor: str = "offline",
    workspace: Workspace | None = None,
    limit: int | None = None,
    datasets: Sequence[str] | None = None,
    timeout: float | None = None,
    strategy: str = "global",
    part: Part | None = None,
) -> EvaluationReport:
    """Run every labelled document of an evaluation folder and score it against its labels.

    Parameters
    ----------
    folder:
        An evaluation folder: ``documents/``, ``ground_truth/*.json``, ``tasks.json``.
    use:
        ``"prompt"`` runs each dataset with its task's prompt; ``"schema"`` with its schema.
    extractor:
        Registered extractor name.
    workspace:
        Where batches run. Default: a throw-away workspace in a temporary folder whose queue
        runs every document inline (no server, no worker). A given workspace with a real
        queue is served by its running workers, or else by an in-process worker
        (:func:`batchnb.start_worker`) stopped at the end.
    limit:
        At most this many documents per dataset.
    datasets:
        Only these datasets.
    timeout:
        Seconds to wait for each batch when a worker processes it.
    strategy:
        ``"global"`` runs every document with its task's prompt; ``"auto"`` classifies each
        document first (see the module doc) and reports the classifier's accuracy.
    part:
        ``(k, n)``: only the k-th of n stable parts of the folder's documents (see
        :func:`batchnb.evaluation.dataset.in_part`), to develop on one part and measure on
        another.
    """
    if use not in USES:
        raise EvaluationError(f"unknown use {use!r}; use one of {', '.join(USES)}")
    if strategy not in STRATEGIES:
        raise EvaluationError(f"unknown strategy {strategy!r}; use one of {', '.join(STRATEGIES)}")
    loaded = load_datasets(folder, datasets=datasets, limit=limit, part=part)
    if not loaded:
        raise EvaluationError(f"no labelled documents in {folder}")
    notes = [SCHEMA_NOTE] if use == "schema" else []
    if strategy == "auto":
        notes.append(AUTO_NOTE)
        untyped = sorted({d.dataset for ds in loaded for d in ds.documents if not d.document_type})
        if untyped:
            notes.append(
                f"no document type declared for {', '.join(untyped)}: their classification is "
                'not scored (set "document_type" in tasks.json or the ground truth)'
            )
    if part is not None:
        notes.append(f"part {part[0]}/{part[1]} of the documents")
    runs = []
    with _workspace(workspace) as active:
        for dataset in loaded:
            notes.extend(f"{dataset.name}: {note}" for note in dataset.task.notes)
            runs.append(_run_dataset(active, dataset, use, extractor, timeout, strategy))
    return EvaluationReport(
        folder=str(folder),
        use=use,
        extractor=extractor,
        runs=tuple(runs),
        notes=tuple(notes),
        strategy=strategy,
    )


@contextmanager
def _workspace(given: Workspace | None) -> Iterator[Workspace]:
    if given is not None:
        worker = None
        if not getattr(given.runtime.huey, "immediate", False) and not live_workers(given):
            worker = start_worker(given)
        try:
            yield given
        finally:
            if worker is not None:
                worker.stop()
        return
    home = tempfile.mkdtemp(prefix="batchnb-eval-")
    workspace = open_workspace(home=home, queue_url="memory://")
    try:
        yield workspace
    finally:
        workspace.close()
        shutil.rmtree(home, ignore_errors=True)


def _run_dataset(
    workspace: Workspace,
    dataset: EvalDataset,
    use: Use,
    extractor: str,
    timeout: float | None,
    strategy: str = "global",
) -> DatasetRun:
    prompt = dataset.task.run_prompt(use)
    mapping = map_fields(dataset.task.schema, schema_from_prompt(prompt))
    failures: dict[str, str] = {}
    results: dict[str, _Stored] = {}
    try:
        batch = submit(
            [str(document.path) for document in dataset.documents],
            **_fields_options(dataset, prompt, strategy),
            name=f"eval {dataset.name}",
            extractor=extractor,
            workspace=workspace,
        )
    except IntakeError as exc:
        failures = {document.file_name: str(exc) for document in dataset.documents}
    else:
        for refusal in batch.refused:
            failures[refusal.file_name] = f"refused at intake: {refusal.reason}"
        batch.wait(timeout=timeout)
        results, errors = _stored_results(workspace, batch.id)
        failures.update(errors)
    scores: list[FieldScore] = []
    examples: list[ErrorExample] = []
    classified: list[ClassifiedDocument] = []
    failed = []
    for document in dataset.documents:
        stored_name = safe_file_name(document.file_name)
        stored = results.get(stored_name)
        if stored is None:
            error = failures.get(stored_name) or "no result stored"
            failed.append(DocumentFailure(dataset.name, document.file_name, error))
        own_mapping = mapping
        if strategy == "auto" and stored is not None and stored.schema:
            # Each document ran with its type's template: pair the truth with that schema.
            own_mapping = map_fields(dataset.task.schema, Schema.from_dict(stored.schema))
        predicted = rename_result(stored.data if stored else {}, own_mapping)
        document_scores = score_document(
            document.fields,
            predicted,
            dataset.task.schema,
            dataset=dataset.name,
            document=document.file_name,
        )
        scores.extend(document_scores)
        pages = evidence_pages(stored.evidence if stored else {}, own_mapping)
        for score in document_scores:
            examples.extend(error_examples(score, pages))
        if strategy == "auto" and document.document_type:
            classified.append(_classified(document, stored))
    return DatasetRun(
        dataset=dataset.name,
        prompt=prompt,
        documents=len(dataset.documents),
        scores=tuple(scores),
        failures=tuple(failed),
        mapping=mapping,
        errors=tuple(examples),
        classifications=tuple(classified),
    )


def _fields_options(dataset: EvalDataset, prompt: str, strategy: str) -> dict[str, Any]:
    """How a dataset's batch names its fields: the prompt, or for "auto" the prompt as the
    template of every type its documents declare (the built-in templates for the rest)."""
    if strategy != "auto":
        return {"prompt": prompt}
    declared = {d.document_type for d in dataset.documents if d.document_type}
    return {"strategy": "auto", "templates": dict.fromkeys(sorted(declared), prompt)}


def _classified(document: LabelledDocument, stored: _Stored | None) -> ClassifiedDocument:
    info = stored.evidence.get(DOCUMENT_INFO_KEY) if stored is not None else None
    if not isinstance(info, Mapping):
        return ClassifiedDocument(
            document.dataset, document.file_name, str(document.document_type), FAILED
        )
    confidence = info.get("confidence")
    return ClassifiedDocument(
        dataset=document.dataset,
        document=document.file_name,
        expected=str(document.document_type),
        classified=str(info.get("type")),
        confidence=float(confidence) if isinstance(confidence, int | float) else None,
        low_confidence=bool(info.get("low_confidence")),
    )


def _stored_results(
    workspace: Workspace, batch_id: int
) -> tuple[dict[str, _Stored], dict[str, str]]:
    """File name → newest stored result, and file name → error for documents without one."""
    with workspace.db.read() as session:
        rows = session.execute(
            select(
                Document.file_name,
                Document.status,
                Document.error,
                ExtractedData.data,
                ExtractedData.evidence,
                ExtractedData.schema,
            )
            .outerjoin(ExtractedData, ExtractedData.document_id == Document.id)
            .where(Document.batch_id == batch_id)
            .order_by(Document.id, ExtractedData.id)
        ).all()
    results: dict[str, _Stored] = {}
    errors: dict[str, str] = {}
    for file_name, status, error, data, evidence, schema in rows:
        if data is not None:
            results[file_name] = _Stored(dict(data), dict(evidence or {}), dict(schema or {}))
        else:
            errors[file_name] = error or f"document {status} without a result"
    return results, errors


def rename_result(data: Mapping[str, Any], mapping: FieldMapping) -> dict[str, Any]:
    """A result keyed by the ground truth's field (and item key) names."""
    renamed: dict[str, Any] = {}
    for truth_name, result_name in mapping.fields.items():
        value = data.get(result_name)
        item_keys = mapping.items.get(truth_name)
        if item_keys is not None and isinstance(value, list):
            value = [
                {key: item.get(source) for key, source in item_keys.items()}
                if isinstance(item, Mapping)
                else {}
                for item in value
            ]
        renamed[truth_name] = value
    return renamed
