"""Creating batches and following them: the service functions behind CLI, API and widgets."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import bindparam, func, insert, select

from batchnb.db.models import (
    BatchStatus,
    Document,
    DocumentStatus,
    ExtractedData,
    ExtractionBatch,
    utcnow,
)
from batchnb.documents.intake import IncomingFile, Refusal, collect
from batchnb.errors import ConfigurationError, IntakeError, NotFoundError, SchemaError
from batchnb.extract import Schema, get_extractor, schema_from_dict, schema_from_prompt
from batchnb.extract.schema_input import SchemaInput, coerce_schema
from batchnb.extract.templates import FALLBACK, load_templates
from batchnb.extract.validation import parse_rules
from batchnb.formats import Mode
from batchnb.services import storage_gc
from batchnb.services.audit import record_event
from batchnb.services.cache import ANALYTICS, BATCHES, PROGRESS
from batchnb.services.exports import ExportHandle, export, export_dataframe
from batchnb.services.processing import (
    DEFAULT_MIN_CONFIDENCE,
    DOCUMENT_INFO_KEY,
    enqueue_document_jobs,
)
from batchnb.services.workspace import Workspace, default_workspace

Source = str | Path | tuple[str, bytes]
STRATEGIES = ("global", "per_document", "auto")
PROGRESS_KEYS = ("pending", "processing", "completed", "failed", "cancelled")


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


@dataclass
class Batch:
    """A handle on one batch: progress, waiting, results. Holds no database session."""

    id: int
    workspace: Workspace
    refused: list[Refusal] = field(default_factory=list)

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
    ) -> Progress:
        """Block until every document is final; raise TimeoutError after ``timeout`` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            progress = self.progress(cached=False)
            if on_progress is not None:
                on_progress(progress)
            if progress.finished:
                # Nobody should see older counts after waiting: drop the cached ones.
                self.workspace.cache.invalidate(PROGRESS)
                return progress
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(
                    f"batch {self.id} not finished after {timeout}s: {progress.as_dict()}"
                )
            time.sleep(poll_seconds)

    def results(self) -> pd.DataFrame:
        """One row per document: id, file name, status, error, then each extracted field."""
        return batch_results(self.workspace, self.id)

    def to_dataframe(
        self,
        mode: Mode = "normal",
        *,
        array_field: str | None = None,
        include_failed: bool = False,
        include_confidence: bool = False,
    ) -> pd.DataFrame:
        """The batch's results shaped like an export (see :func:`batchnb.export`).

        ``normal`` gives one row per document with arrays as lists; ``multi-row`` one row per
        item of ``array_field`` with the document's columns repeated.
        """
        return export_dataframe(
            self.id,
            mode,
            array_field=array_field,
            include_failed=include_failed,
            include_confidence=include_confidence,
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
        return export(self.id, format, mode, path, workspace=self.workspace, **options)


def submit(
    sources: Source | Iterable[Source],
    prompt: str | None = None,
    *,
    name: str | None = None,
    extractor: str = "offline",
    priority: int = 0,
    workspace: Workspace | None = None,
    owner: str | None = None,
    document_prompts: dict[str, str] | None = None,
    strategy: str = "global",
    schema: SchemaInput | None = None,
    templates: Mapping[str, str] | str | Path | None = None,
    min_confidence: float = DEFAULT_MIN_CONFIDENCE,
    rules: Sequence[Mapping[str, Any]] | None = None,
) -> Batch:
    """Create a batch from paths, globs, folders or (name, bytes) pairs and queue every file.

    The prompt, schema, strategy and extractor are checked before anything is stored. Files
    refused at intake (wrong type, empty, too large, duplicate, over the plan) are listed on
    ``batch.refused``; if every file is refused, :class:`IntakeError` says why.

    Parameters
    ----------
    prompt:
        The fields to extract, in plain words. May be left out when ``schema`` is given, with
        ``strategy="auto"`` (where a prompt replaces the fallback template), or with
        ``per_document`` when every file has its own prompt.
    document_prompts:
        Prompts for some documents by file name; the others use ``prompt`` (or ``schema``).
        Giving them makes a "global" batch "per_document".
    strategy:
        ``"global"`` (one prompt or schema for all), ``"per_document"`` (``document_prompts``
        first) or ``"auto"`` (each document is classified in the worker and extracted with
        its type's template; see :mod:`batchnb.extract.classify`).
    schema:
        The fields given directly instead of a prompt: a :class:`~batchnb.extract.Schema`, a
        dict read by :func:`~batchnb.extract.schema_from_dict` (``{"fields": [...]}`` or JSON
        Schema, ``$defs`` references included) or a pydantic model class.
    templates:
        For "auto": type → prompt overriding or adding to the built-in templates, or a folder
        of ``<type>.toml`` files (see :mod:`batchnb.extract.templates`).
    min_confidence:
        For "auto": below this classification confidence a document gets the fallback template
        and is flagged ``low_confidence``.
    rules:
        Validation rules (see :mod:`batchnb.extract.validation`), e.g.
        ``[{"required": ["total"]}, {"sum": "line_items.amount", "equals": "total"}]``.
        Problems are stored as flags on each result; they never fail a document.
    """
    workspace = workspace or default_workspace()
    owner = owner or workspace.settings.user
    document_prompts = document_prompts or {}
    strategy, options = _strategy_options(
        prompt, strategy, schema, document_prompts, templates, min_confidence
    )
    if rules:
        if strategy != "auto":
            # Check every rule against the batch's schema now; "auto" batches apply each rule
            # to the documents whose template has its fields.
            parse_rules(rules, _batch_schema(prompt, options))
        options["rules"] = [dict(rule) for rule in rules]
    get_extractor(extractor)
    if isinstance(sources, str | Path | tuple):
        sources = [sources]
    # Before the intake: a delete that removes one of its files after this is seen below.
    watermark = storage_gc.removal_watermark(workspace.db)
    # The stored files are made durable together before any row names them.
    with workspace.storage.deferred_sync():
        intake = collect(sources, plan=workspace.plan, storage=workspace.storage)
    if not intake.accepted:
        reasons = "; ".join(f"{r.file_name}: {r.reason}" for r in intake.refused) or "no files"
        raise IntakeError(f"nothing to process: {reasons}")
    if strategy == "per_document" and prompt is None and "schema" not in options:
        _check_every_file_has_a_prompt(intake.accepted, document_prompts)
    batch_id, messages = _create_rows(
        workspace,
        intake.accepted,
        prompt=prompt,
        name=name or _default_name(intake.accepted),
        extractor=extractor,
        priority=priority,
        owner=owner,
        strategy=strategy,
        options=options,
        document_prompts=document_prompts,
        refused=intake.refused,
        removal_watermark=watermark,
    )
    workspace.runtime.dispatch(messages)
    workspace.cache.invalidate(BATCHES, PROGRESS, ANALYTICS)
    return Batch(batch_id, workspace, list(intake.refused))


def _strategy_options(
    prompt: str | None,
    strategy: str,
    schema: SchemaInput | None,
    document_prompts: Mapping[str, str],
    templates: Mapping[str, str] | str | Path | None,
    min_confidence: float,
) -> tuple[str, dict[str, Any]]:
    """Check how the fields are given; return the strategy to record and the batch options."""
    if strategy not in STRATEGIES:
        raise ConfigurationError(
            f"unknown strategy {strategy!r}; use one of {', '.join(map(repr, STRATEGIES))}"
        )
    if strategy == "global" and document_prompts:
        strategy = "per_document"
    if strategy == "per_document" and not document_prompts:
        raise SchemaError(
            "the per_document strategy needs document_prompts={file name: prompt}; "
            "for one prompt for every file use strategy='global'"
        )
    if prompt is not None:
        schema_from_prompt(prompt)
    for file_name, own_prompt in document_prompts.items():
        try:
            schema_from_prompt(own_prompt)
        except SchemaError as error:
            raise SchemaError(f"document_prompts[{file_name!r}]: {error}") from error
    options: dict[str, Any] = {}
    if schema is not None:
        if strategy == "auto":
            raise SchemaError(
                "strategy='auto' picks a prompt per document type, so it takes no schema=; "
                "change the prompts with templates={type: prompt}, or use strategy='global'"
            )
        if prompt is not None:
            raise SchemaError("give a prompt or a schema, not both")
        options["schema"] = coerce_schema(schema).to_dict()
    if strategy == "auto":
        if not 0.0 <= min_confidence <= 1.0:
            raise ConfigurationError(f"min_confidence must be within 0..1, got {min_confidence}")
        if isinstance(templates, str | Path):
            chosen = load_templates(extra_dir=templates)
        else:
            chosen = load_templates(templates)
        if prompt is not None:
            chosen[FALLBACK] = prompt
        # The whole set is stored, so a batch reruns the same way after the built-ins change.
        options["templates"] = chosen
        options["min_confidence"] = min_confidence
        return strategy, options
    if templates is not None:
        raise ConfigurationError(f"templates= is used only by strategy='auto', not {strategy!r}")
    if min_confidence != DEFAULT_MIN_CONFIDENCE:
        raise ConfigurationError(
            f"min_confidence= is used only by strategy='auto', not {strategy!r}"
        )
    if strategy == "global" and prompt is None and schema is None:
        raise SchemaError(
            "give a prompt or a schema, e.g. submit(files, 'invoice number, date, total'), "
            "or use strategy='auto' to pick one per document type"
        )
    return strategy, options


def _check_every_file_has_a_prompt(
    files: list[IncomingFile], document_prompts: Mapping[str, str]
) -> None:
    missing = [f.file_name for f in files if f.file_name not in document_prompts]
    if missing:
        more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        raise SchemaError(
            f"no prompt for {', '.join(missing[:5])}{more}: give a default prompt= (or schema=), "
            "or a document_prompts entry for every file"
        )


def _batch_schema(prompt: str | None, options: Mapping[str, Any]) -> Schema:
    """The schema a global or per-document batch's default documents are extracted with."""
    if "schema" in options:
        return schema_from_dict(options["schema"])
    return schema_from_prompt(prompt or "")


def _default_name(files: list[IncomingFile]) -> str:
    first = files[0].file_name
    return first if len(files) == 1 else f"{first} and {len(files) - 1} more"


def _create_rows(
    workspace: Workspace,
    files: list[IncomingFile],
    *,
    prompt: str | None,
    name: str,
    extractor: str,
    priority: int,
    owner: str,
    strategy: str,
    options: dict[str, Any],
    document_prompts: Mapping[str, str],
    refused: list[Refusal],
    removal_watermark: int,
) -> tuple[int, list[tuple[int, int, Any]]]:
    """Insert the batch, its documents, jobs and queue items in one transaction.

    The transaction first excludes deletes' file removals, then refuses the whole batch if
    one removed a file of ``files`` after ``removal_watermark`` (see
    :mod:`batchnb.services.storage_gc`): no row may name a missing file.
    """
    now = utcnow()
    with workspace.db.write() as session:
        storage_gc.lock_for_new_references(session.connection())
        storage_gc.check_still_stored(
            session.connection(), workspace.storage, files, removal_watermark
        )
        batch = ExtractionBatch(
            name=name[:255],
            owner=owner,
            status=BatchStatus.PENDING.value,
            strategy=strategy,
            prompt=prompt,
            extractor=extractor,
            plan=workspace.plan.name,
            options={**options, "refused": [r.__dict__ for r in refused]},
            document_count=len(files),
            created_at=now,
            updated_at=now,
        )
        session.add(batch)
        session.flush()
        document_ids = session.scalars(
            insert(Document).returning(Document.id, sort_by_parameter_order=True),
            [
                {
                    "batch_id": batch.id,
                    "owner": owner,
                    "file_name": f.file_name,
                    "source": f.source,
                    "content_hash": f.content_hash,
                    "storage_key": f.storage_key,
                    "size_bytes": f.size_bytes,
                    "file_type": f.file_type,
                    "mime_type": f.mime_type,
                    "prompt": document_prompts.get(f.file_name),
                    "status": DocumentStatus.PENDING.value,
                    "created_at": now,
                    "updated_at": now,
                }
                for f in files
            ],
        ).all()
        messages = enqueue_document_jobs(
            session.connection(),
            batch_id=batch.id,
            owner=owner,
            jobs=[(document_id, None, extractor) for document_id in document_ids],
            priority=priority,
            now=now,
        )
        record_event(
            session.connection(),
            owner,
            "submit",
            "batch",
            batch.id,
            {
                "documents": len(files),
                "refused": len(refused),
                "extractor": extractor,
                "strategy": strategy,
            },
        )
        batch_id = batch.id
    return batch_id, messages


# Documents, not queue items: a retried document has two items but is one document.
_DOCUMENT_STATUS_COUNTS = (
    select(Document.status, func.count())
    .where(Document.batch_id == bindparam("batch"))
    .group_by(Document.status)
)


def batch_progress(workspace: Workspace, batch_id: int, *, cached: bool = True) -> Progress:
    """Documents of a batch per status (one indexed aggregate query).

    With ``cached`` the counts may be up to the cache's progress lifetime old (about a
    second, see :mod:`batchnb.services.cache`): many viewers polling one batch then cost one
    query per second between them.
    """
    if cached:
        return workspace.cache.get_or_create(
            PROGRESS, str(batch_id), lambda: batch_progress(workspace, batch_id, cached=False)
        )
    with workspace.db.connect() as connection:
        counts = dict(connection.execute(_DOCUMENT_STATUS_COUNTS, {"batch": batch_id}).all())
    return Progress(**{key: counts.get(key, 0) for key in PROGRESS_KEYS})


def get_batch(batch_id: int, workspace: Workspace | None = None) -> Batch:
    """A handle on an existing batch."""
    workspace = workspace or default_workspace()
    batch = Batch(batch_id, workspace)
    batch.info()
    return batch


def latest_batch(workspace: Workspace | None = None) -> Batch | None:
    """The most recently created batch, if any."""
    workspace = workspace or default_workspace()
    with workspace.db.read() as session:
        batch_id = session.scalar(
            select(ExtractionBatch.id).order_by(ExtractionBatch.id.desc()).limit(1)
        )
    return None if batch_id is None else Batch(batch_id, workspace)


_BASE_COLUMNS = ("document_id", "file_name", "status", "error")
_TYPE_COLUMNS = ("document_type", "type_confidence")
_NON_FIELD_COLUMNS = frozenset({*_BASE_COLUMNS, *_TYPE_COLUMNS, "confidence"})


def _flatten(value: Any, name: str, row: dict[str, Any]) -> None:
    if isinstance(value, dict) and "amount" in value:
        row[name] = value.get("amount")
        row[f"{name}_currency"] = value.get("currency")
    else:
        row[name] = value


def batch_results(workspace: Workspace, batch_id: int) -> pd.DataFrame:
    """One row per document of the batch, fields in schema order (money split in two).

    Documents of one batch may have different fields ("auto" and per-document prompts): the
    columns are their union, in order of first appearance. Classified documents add
    ``document_type`` and ``type_confidence`` after ``error``.
    """
    with workspace.db.read() as session:
        rows = session.execute(
            select(Document, ExtractedData)
            .outerjoin(ExtractedData, ExtractedData.document_id == Document.id)
            .where(Document.batch_id == batch_id)
            .order_by(Document.id, ExtractedData.id)
        ).all()
    records: dict[int, dict[str, Any]] = {}
    for document, extracted in rows:
        record: dict[str, Any] = {
            "document_id": document.id,
            "file_name": document.file_name,
            "status": document.status,
            "error": document.error,
        }
        if extracted is not None:
            info = (extracted.evidence or {}).get(DOCUMENT_INFO_KEY)
            if isinstance(info, dict):
                record["document_type"] = info.get("type")
                record["type_confidence"] = info.get("confidence")
            for field_spec in extracted.schema.get("fields", []):
                _flatten(extracted.data.get(field_spec["name"]), field_spec["name"], record)
            record["confidence"] = extracted.confidence
        records[document.id] = record  # the newest result of a document wins
    return pd.DataFrame(list(records.values()), columns=_result_columns(records.values()))


def _result_columns(records: Iterable[dict[str, Any]]) -> list[str]:
    """Base columns, then type columns, then the union of fields, then ``confidence``."""
    columns: dict[str, None] = dict.fromkeys(_BASE_COLUMNS)
    fields: dict[str, None] = {}
    for record in records:
        fields.update(dict.fromkeys(k for k in record if k not in _NON_FIELD_COLUMNS))
        columns.update(dict.fromkeys(k for k in _TYPE_COLUMNS if k in record))
    columns.update(fields)
    if any("confidence" in record for record in records):
        columns["confidence"] = None
    return list(columns)
