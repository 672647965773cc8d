"""Running an evaluation: every dataset's documents through the real pipeline, then scoring.

Each dataset becomes one batch submitted with :func:`batchnb.services.batches.submit` and its
task's prompt; results are read back from the stored ``extracted_data`` rows (typed values:
money stays ``{"amount", "currency"}``), renamed to the ground truth's field names and scored.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import select

from batchnb.db.models import Document, ExtractedData
from batchnb.documents.intake import safe_file_name
from batchnb.errors import IntakeError
from batchnb.evaluation.dataset import (
    USES,
    EvalDataset,
    EvaluationError,
    FieldMapping,
    Use,
    load_datasets,
    map_fields,
)
from batchnb.evaluation.report import DatasetRun, DocumentFailure, EvaluationReport
from batchnb.evaluation.scoring import FieldScore, score_document
from batchnb.extract import schema_from_prompt
from batchnb.services.health import live_workers
from batchnb.services.submit import submit
from batchnb.services.workers import start_worker
from batchnb.services.workspace import Workspace, open_workspace

SCHEMA_NOTE = (
    "--use schema: batches take a prompt, not a schema, so each dataset ran with a prompt "
    "written from its schema (field names identical; value types inferred from the words)"
)


def evaluate(
    folder: str | Path,
    *,
    use: Use = "prompt",
    extractor: str = "offline",
    workspace: Workspace | None = None,
    limit: int | None = None,
    datasets: Sequence[str] | None = None,
    timeout: float | None = None,
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
    """
    if use not in USES:
        raise EvaluationError(f"unknown use {use!r}; use one of {', '.join(USES)}")
    loaded = load_datasets(folder, datasets=datasets, limit=limit)
    if not loaded:
        raise EvaluationError(f"no labelled documents in {folder}")
    notes = [SCHEMA_NOTE] if use == "schema" else []
    runs = []
    with _workspace(workspace) as active:
        for dataset in loaded:
            notes.extend(f"{dataset.name}: {note}" for note in dataset.task.notes)
            runs.append(_run_dataset(active, dataset, use, extractor, timeout))
    return EvaluationReport(
        folder=str(folder), use=use, extractor=extractor, runs=tuple(runs), notes=tuple(notes)
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
    workspace: Workspace, dataset: EvalDataset, use: Use, extractor: str, timeout: float | None
) -> DatasetRun:
    prompt = dataset.task.run_prompt(use)
    mapping = map_fields(dataset.task.schema, schema_from_prompt(prompt))
    failures: dict[str, str] = {}
    results: dict[str, dict[str, Any]] = {}
    try:
        batch = submit(
            [str(document.path) for document in dataset.documents],
            prompt,
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
    failed = []
    for document in dataset.documents:
        stored_name = safe_file_name(document.file_name)
        data = results.get(stored_name)
        if data is None:
            error = failures.get(stored_name) or "no result stored"
            failed.append(DocumentFailure(dataset.name, document.file_name, error))
        predicted = rename_result(data or {}, mapping)
        scores.extend(
            score_document(
                document.fields,
                predicted,
                dataset.task.schema,
                dataset=dataset.name,
                document=document.file_name,
            )
        )
    return DatasetRun(
        dataset=dataset.name,
        prompt=prompt,
        documents=len(dataset.documents),
        scores=tuple(scores),
        failures=tuple(failed),
        mapping=mapping,
    )


def _stored_results(
    workspace: Workspace, batch_id: int
) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    """File name → newest stored ``data``, and file name → error for documents without one."""
    with workspace.db.read() as session:
        rows = session.execute(
            select(Document.file_name, Document.status, Document.error, ExtractedData.data)
            .outerjoin(ExtractedData, ExtractedData.document_id == Document.id)
            .where(Document.batch_id == batch_id)
            .order_by(Document.id, ExtractedData.id)
        ).all()
    results: dict[str, dict[str, Any]] = {}
    errors: dict[str, str] = {}
    for file_name, status, error, data in rows:
        if data is not None:
            results[file_name] = dict(data)
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
