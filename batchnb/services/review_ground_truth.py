"""A batch's reviewed documents as an evaluation folder: a team's corrections become its test set.

:func:`export_ground_truth` writes exactly the folder ``batchnb eval`` reads
(:mod:`batchnb.evaluation.dataset`, docs/evaluation.md): ``documents/`` (the files),
``ground_truth/<stem>.json`` (the reviewed values, corrections applied) and ``tasks.json`` (per
dataset the prompt and the schema the batch extracted with). Only documents someone marked as
reviewed are written: their values are the ones a person checked.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from batchnb.db.models import (
    Document,
    ExtractedData,
    ExtractionBatch,
    ExtractionJob,
    FieldCorrection,
)
from batchnb.errors import BatchStateError, NotFoundError, SchemaError
from batchnb.extract import Schema, schema_from_dict, schema_from_prompt
from batchnb.jobs.export_records import Selection, iter_export_records
from batchnb.services import display
from batchnb.services.access import authorize
from batchnb.services.audit import record_event
from batchnb.services.workspace import Workspace, acting

DOCUMENTS_DIR = "documents"
TRUTH_DIR = "ground_truth"
TASKS_FILE = "tasks.json"


@dataclass(frozen=True)
class GroundTruthSummary:
    """What :func:`export_ground_truth` wrote: where, which datasets, how many documents."""

    folder: Path
    batch_id: int
    datasets: tuple[str, ...]
    documents: int
    corrected_values: int
    not_reviewed: int
    files: tuple[str, ...] = field(default_factory=tuple)

    def __repr__(self) -> str:
        return (
            f"GroundTruthSummary(folder='{self.folder}', batch_id={self.batch_id}, "
            f"datasets={list(self.datasets)}, documents={self.documents}, "
            f"corrected_values={self.corrected_values}, not_reviewed={self.not_reviewed})"
        )

    def _repr_html_(self) -> str:
        facts = [
            ("folder", str(self.folder)),
            ("datasets", ", ".join(self.datasets) or "-"),
            ("documents", f"{self.documents} reviewed written, {self.not_reviewed} not reviewed"),
            ("corrected values", self.corrected_values),
            ("next", f"batchnb eval {self.folder}"),
        ]
        return display.card(f"Ground truth of batch {self.batch_id}", facts)


def export_ground_truth(
    batch: Any,
    folder: str | Path,
    *,
    workspace: Workspace | None = None,
    actor: str | None = None,
) -> GroundTruthSummary:
    """Write the reviewed documents of a batch as an evaluation folder for ``batchnb eval``.

    Each distinct schema of the batch is one dataset (``batch-<id>``, then ``batch-<id>-2``
    ...); its task's prompt is the one the batch extracted with, so ``batchnb eval`` asks
    for exactly the same fields. Values are written with corrections applied; empty values
    are left out (the evaluation does not score unlabelled fields).

    Parameters
    ----------
    batch:
        A ``Batch`` or a batch id.
    folder:
        The evaluation folder; created when missing. A folder that already holds one (another
        batch's) gains this batch's dataset: files of the same name are replaced only when they
        came from this batch, otherwise this batch's get their document id in the name.

    Raises
    ------
    NotFoundError
        The batch does not exist.
    PermissionDeniedError
        ``actor`` neither owns the batch nor is an admin.
    BatchStateError
        No document of the batch is marked as reviewed (:func:`batchnb.mark_reviewed`).
    """
    workspace, actor = acting(workspace, actor)
    batch_id = int(getattr(batch, "id", batch))
    authorize(workspace, actor, "export", [batch_id], {"ground_truth": str(folder)})
    documents, not_reviewed, corrected, prompts = _reviewed(workspace, batch_id)
    if not documents:
        raise BatchStateError(
            f"batch {batch_id} has no reviewed document: mark the checked ones with "
            "batchnb.mark_reviewed(document_ids) first"
        )
    root = Path(folder).expanduser()
    for part in (DOCUMENTS_DIR, TRUTH_DIR):
        (root / part).mkdir(parents=True, exist_ok=True)
    tasks_path = root / TASKS_FILE
    tasks = _read_tasks(tasks_path)
    datasets: dict[str, str] = {}
    files = []
    for record, schema in _records(workspace, batch_id, documents):
        key = json.dumps(schema, sort_keys=True)
        if key not in datasets:
            name = f"batch-{batch_id}" + (f"-{len(datasets) + 1}" if datasets else "")
            datasets[key] = name
            tasks[name] = {
                "prompt": _task_prompt(prompts.get(record.document_id, ()), schema),
                "schema": schema,
            }
        files.append(_write_document(workspace, root, datasets[key], batch_id, record, documents))
    tasks_path.write_text(json.dumps({"tasks": tasks}, indent=2), encoding="utf-8")
    summary = GroundTruthSummary(
        root.resolve(),
        batch_id,
        tuple(datasets.values()),
        len(files),
        corrected,
        not_reviewed,
        tuple(files),
    )
    with workspace.db.begin() as connection:
        record_event(
            connection,
            actor,
            "export_ground_truth",
            "batch",
            batch_id,
            {"folder": str(summary.folder), "documents": len(files), "datasets": list(datasets)},
        )
    return summary


def _reviewed(
    workspace: Workspace, batch_id: int
) -> tuple[dict[int, tuple[str, str]], int, int, dict[int, tuple[str, ...]]]:
    """The reviewed completed documents (id → file name, storage key), how many were not
    reviewed, how many of their values were corrected, and the prompts each ran with."""
    newest_job = (
        select(func.max(ExtractionJob.id))
        .where(ExtractionJob.document_id == Document.id)
        .correlate(Document)
        .scalar_subquery()
    )
    with workspace.db.connect() as connection:
        batch = connection.execute(
            select(ExtractionBatch.prompt).where(ExtractionBatch.id == batch_id)
        ).one_or_none()
        if batch is None:
            raise NotFoundError(f"batch {batch_id} does not exist")
        batch_prompt = batch.prompt
        rows = connection.execute(
            select(
                Document.id,
                Document.file_name,
                Document.storage_key,
                Document.reviewed_at,
                ExtractionJob.prompt,
                Document.prompt.label("document_prompt"),
            )
            .outerjoin(ExtractionJob, ExtractionJob.id == newest_job)
            .where(Document.batch_id == batch_id, Document.status == "completed")
            .order_by(Document.id)
        ).all()
        reviewed_ids = [row.id for row in rows if row.reviewed_at is not None]
        corrected = 0
        if reviewed_ids:
            reviewed_set = set(reviewed_ids)
            corrected = sum(
                1
                for document_id, _ in connection.execute(
                    select(FieldCorrection.document_id, FieldCorrection.field)
                    .where(FieldCorrection.batch_id == batch_id)
                    .distinct()
                )
                if document_id in reviewed_set
            )
    documents = {
        row.id: (row.file_name, row.storage_key) for row in rows if row.reviewed_at is not None
    }
    prompts = {
        row.id: tuple(p for p in (row.prompt, row.document_prompt, batch_prompt) if p)
        for row in rows
    }
    return documents, len(rows) - len(documents), corrected, prompts


def _records(
    workspace: Workspace, batch_id: int, documents: Mapping[int, tuple[str, str]]
) -> list[tuple[Any, dict[str, Any]]]:
    """(corrected export record, stored schema) of each reviewed document, in id order."""
    with workspace.db.connect() as connection:
        schemas: dict[int, dict[str, Any]] = {}
        for document_id, schema in connection.execute(
            select(ExtractedData.document_id, ExtractedData.schema)
            .where(ExtractedData.batch_id == batch_id)
            .order_by(ExtractedData.id)
        ):
            schemas[document_id] = dict(schema or {})
    return [
        (record, schemas.get(record.document_id, {}))
        for record in iter_export_records(workspace.db, Selection(batch_ids=(batch_id,)), False)
        if record.document_id in documents
    ]


def _task_prompt(candidates: tuple[str, ...], schema: Mapping[str, Any]) -> str:
    """A prompt that gives exactly ``schema``: the one the batch ran with, else one written
    from the schema's labels (``batchnb eval --use schema`` reads the schema itself)."""
    for prompt in candidates:
        try:
            if schema_from_prompt(prompt).to_dict() == dict(schema):
                return prompt
        except SchemaError:
            continue
    try:
        parsed: Schema = schema_from_dict(schema)
    except SchemaError:
        return candidates[0] if candidates else ""
    items = []
    for entry in parsed.fields:
        if entry.type == "array":
            subs = ", ".join(sub.name.replace("_", " ") for sub in entry.fields)
            items.append(f"{entry.name.replace('_', ' ')} ({subs})")
        else:
            items.append(entry.name.replace("_", " "))
    return "; ".join(items)


def _labelled(value: Any) -> bool:
    return value is not None and value != "" and value != [] and value != {}


def _write_document(
    workspace: Workspace,
    root: Path,
    dataset: str,
    batch_id: int,
    record: Any,
    documents: Mapping[int, tuple[str, str]],
) -> str:
    """Copy one document's file and write its ground truth; returns the file name used."""
    file_name, storage_key = documents[record.document_id]
    stem, suffix = Path(file_name).stem, Path(file_name).suffix
    truth_path = root / TRUTH_DIR / f"{stem}.json"
    taken_by_others = any(
        other != record.document_id and Path(name).stem == stem
        for other, (name, _) in documents.items()
    ) or (truth_path.exists() and not _ours(truth_path, dataset, batch_id))
    if taken_by_others:
        stem = f"{stem}-{record.document_id}"
        file_name, truth_path = f"{stem}{suffix}", root / TRUTH_DIR / f"{stem}.json"
    (root / DOCUMENTS_DIR / file_name).write_bytes(workspace.storage.read(storage_key))
    truth = {
        "document": file_name,
        "source": dataset,
        "batch_id": batch_id,
        "document_id": record.document_id,
        "fields": {name: value for name, value in record.data.items() if _labelled(value)},
    }
    truth_path.write_text(json.dumps(truth, indent=2, ensure_ascii=False), encoding="utf-8")
    return file_name


def _ours(path: Path, dataset: str, batch_id: int) -> bool:
    """Whether a ground-truth file came from this batch (an earlier run of the same export)."""
    try:
        found = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return bool(found.get("batch_id") == batch_id or found.get("source") == dataset)


def _read_tasks(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    try:
        found = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise SchemaError(f"{path} is not readable JSON ({exc}): move it away first") from None
    tasks = found.get("tasks") if isinstance(found, Mapping) else None
    return dict(tasks) if isinstance(tasks, Mapping) else {}
