"""Creating a batch: check how the fields are given, take the files in, queue every document.

:func:`submit` checks the prompt, schema, strategy, rules and extractor before anything is
stored, then stores the files (content-addressed, made durable together) and inserts the
batch, its documents, their jobs and queue items in one transaction. The queue messages go out
after the commit.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import func, insert, select

from batchnb.cache import ANALYTICS, BATCHES, PROGRESS
from batchnb.db.models import Document, ExtractionBatch, utcnow
from batchnb.db.statuses import BatchStatus, DocumentStatus
from batchnb.documents.intake import IncomingFile, Refusal, collect
from batchnb.errors import ConfigurationError, IntakeError, NothingNewError, SchemaError
from batchnb.extract import Schema, schema_from_dict, schema_from_prompt
from batchnb.extract.routing import DEFAULT_MIN_CONFIDENCE
from batchnb.extract.schema_input import SchemaInput, coerce_schema
from batchnb.extract.templates import FALLBACK, load_templates
from batchnb.extract.validation import parse_rules
from batchnb.jobs.documents import enqueue_document_jobs
from batchnb.queue.messages import Message
from batchnb.services import storage_gc
from batchnb.services.audit import record_event
from batchnb.services.batches import Batch
from batchnb.services.workspace import Workspace, acting

Source = str | Path | tuple[str, bytes]
STRATEGIES = ("global", "per_document", "auto")


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
    result_cache: bool | None = None,
    skip_processed: bool = False,
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
    result_cache:
        ``False`` extracts every document again even when a stored result of the same bytes,
        schema and extractor version exists (e.g. while developing an extractor); ``None``
        follows ``BATCHNB_RESULT_CACHE``.
    skip_processed:
        Leave out files whose content (SHA-256) the owner has submitted before, in any batch,
        unless that document was cancelled: they are listed on ``batch.refused`` as
        "processed before in batch N". If no file is left, :class:`NothingNewError` (an
        :class:`IntakeError`) says so. For runs over a folder that keeps growing.
    """
    workspace, owner = acting(workspace, owner)
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
    if result_cache is False or (result_cache is None and not workspace.settings.result_cache):
        options["result_cache"] = False
    workspace.extractors.check(extractor)
    if isinstance(sources, str | Path | tuple):
        sources = [sources]
    # Before the intake: a delete that removes one of its files after this is seen below.
    watermark = storage_gc.removal_watermark(workspace.db)
    # The stored files are made durable together before any row names them.
    with workspace.storage.deferred_sync():
        intake = collect(sources, plan=workspace.plan, storage=workspace.storage)
    accepted, refused = intake.accepted, list(intake.refused)
    if skip_processed:
        accepted, known = _leave_out_processed(workspace, owner, accepted)
        refused += known
        if not accepted and known:
            raise NothingNewError(
                f"nothing new to process: all {len(known)} accepted files were processed before"
            )
    if not accepted:
        reasons = "; ".join(f"{r.file_name}: {r.reason}" for r in refused) or "no files"
        raise IntakeError(f"nothing to process: {reasons}")
    if strategy == "per_document" and prompt is None and "schema" not in options:
        _check_every_file_has_a_prompt(accepted, document_prompts)
    batch_id, messages = _create_rows(
        workspace,
        accepted,
        prompt=prompt,
        name=name or _default_name(accepted),
        extractor=extractor,
        priority=priority,
        owner=owner,
        strategy=strategy,
        options=options,
        document_prompts=document_prompts,
        refused=refused,
        removal_watermark=watermark,
    )
    workspace.runtime.dispatch(messages)
    workspace.cache.invalidate(BATCHES, PROGRESS, ANALYTICS)
    return Batch(batch_id, workspace, refused)


def _leave_out_processed(
    workspace: Workspace, owner: str, files: list[IncomingFile]
) -> tuple[list[IncomingFile], list[Refusal]]:
    """``files`` split into those the owner never submitted and refusals for the others."""
    hashes = sorted({f.content_hash for f in files})
    seen: dict[str, int] = {}
    with workspace.db.connect() as connection:
        for chunk in (hashes[i : i + 500] for i in range(0, len(hashes), 500)):
            rows = connection.execute(
                select(Document.content_hash, func.max(Document.batch_id))
                .where(
                    Document.owner == owner,
                    Document.content_hash.in_(chunk),
                    Document.status != DocumentStatus.CANCELLED.value,
                )
                .group_by(Document.content_hash)
            )
            seen.update({content_hash: batch_id for content_hash, batch_id in rows})
    fresh = [f for f in files if f.content_hash not in seen]
    known = [
        Refusal(f.file_name, f.source, f"processed before in batch {seen[f.content_hash]}")
        for f in files
        if f.content_hash in seen
    ]
    return fresh, known


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
            "give a prompt (e.g. 'invoice number, date, total') or a schema, "
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
) -> tuple[int, list[Message]]:
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
