"""One document as a reviewer sees it: its pages, and each value with where it was found.

:func:`document_content` reads a document's newest result (values as corrected, each field's
confidence, evidence and validation flags) and parses the stored file again, with the options
the worker used, so that evidence spans index the very page texts the extractor read. For PDF
text layers and OCR'd pages it also finds each span's boxes on the page.
:func:`document_page_image` renders one page for the view (pages are drawn when shown, not all
at once). :func:`result_annotations` gives the results grid what a DataFrame does not hold:
per-field confidence and the flags of each result, for one page of documents in one query.

Nothing here holds a session past the call; reading needs the right to see the batch (its
owner or an admin).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select

from batchnb.db.models import Document, ExtractedData, ExtractionBatch, ExtractionJob
from batchnb.documents.page_images import (
    Box,
    PageImage,
    Span,
    image_page_image,
    image_size,
    ocr_image_size,
    pdf_page_image,
    pdf_page_sizes,
    pdf_span_boxes,
    word_span_boxes,
)
from batchnb.documents.parsed import Page
from batchnb.documents.parsers import parse_document
from batchnb.errors import BatchnbError, NotFoundError
from batchnb.extract.base import JSONValue
from batchnb.extract.routing import Route
from batchnb.jobs.documents import DOCUMENT_INFO_KEY
from batchnb.jobs.export_records import apply_corrections, parse_field_path
from batchnb.services.access import authorize
from batchnb.services.review import Correction, list_corrections
from batchnb.services.workspace import Workspace, acting

log = logging.getLogger(__name__)

LOW_CONFIDENCE = 0.6
"""Values with a confidence below this are marked for review (a parameter of the views)."""
IMAGE_KINDS = frozenset({"png", "jpeg", "tiff"})


@dataclass(frozen=True)
class FieldEvidence:
    """Where a value was found: page, character span of its text, the text read, and the
    span's boxes on the page image (one per line; empty where no box is known)."""

    page: int
    start: int | None
    end: int | None
    raw: str | None
    boxes: tuple[Box, ...] = ()


@dataclass(frozen=True)
class DocumentField:
    """One field of the document's schema with its value (as corrected) and how sure it is.

    ``original`` is the extracted value when ``corrected`` (``corrected_paths`` says which
    parts of it, e.g. ``line_items.2.amount``); ``flags`` are the validation messages about
    this field.
    """

    name: str
    label: str
    type: str
    value: JSONValue
    confidence: float | None
    evidence: FieldEvidence | None
    flags: tuple[str, ...] = ()
    corrected: bool = False
    original: JSONValue = None
    corrected_paths: tuple[str, ...] = ()
    item_originals: Mapping[str, Any] = field(default_factory=dict)
    """Array fields: item path (``line_items.2.amount``) → its value as extracted."""
    item_fields: tuple[dict[str, Any], ...] = ()

    @property
    def found(self) -> bool:
        return self.value is not None


@dataclass(frozen=True)
class DocumentPage:
    """A page's text (what evidence spans index) and whether it can be shown as an image."""

    number: int
    text: str
    has_image: bool


@dataclass(frozen=True)
class DocumentContent:
    """What the document view shows of one document."""

    document_id: int
    batch_id: int
    file_name: str
    file_type: str
    status: str
    error: str | None
    pages: tuple[DocumentPage, ...]
    fields: tuple[DocumentField, ...]
    flags: tuple[dict[str, Any], ...] = ()
    reviewed: bool = False
    problem: str | None = None
    """Why the pages could not be read again (the values are shown all the same)."""

    def field(self, name: str) -> DocumentField:
        """The field called ``name``; :class:`KeyError` when there is none."""
        for found in self.fields:
            if found.name == name:
                return found
        raise KeyError(f"no field {name!r}; fields: {', '.join(f.name for f in self.fields)}")

    def __repr__(self) -> str:
        return (
            f"DocumentContent({self.file_name!r}: {len(self.fields)} fields, "
            f"{len(self.pages)} pages, {self.status})"
        )


@dataclass(frozen=True)
class ResultAnnotations:
    """A document's newest result as the grid marks it: per-field confidence, whether each
    field has evidence, and the validation flags (``{"rule", "field", "message"}``)."""

    confidence: Mapping[str, float | None] = field(default_factory=dict)
    grounded: Mapping[str, bool] = field(default_factory=dict)
    flags: tuple[dict[str, Any], ...] = ()


def document_content(
    document_id: int, *, workspace: Workspace | None = None, actor: str | None = None
) -> DocumentContent:
    """One document's values, their evidence (spans and boxes) and its pages' text.

    Raises
    ------
    NotFoundError
        No such document.
    PermissionDeniedError
        ``actor`` may not see its batch.
    """
    workspace, actor = acting(workspace, actor)
    row, result, route = _read(workspace, actor, document_id)
    data = dict(result.data) if result is not None else {}
    evidence = dict(result.evidence) if result is not None else {}
    schema_fields = list((result.schema or {}).get("fields", ())) if result is not None else []
    corrections = Corrections(
        list_corrections(document_id=document_id, workspace=workspace, actor=actor)
    )
    data = apply_corrections(data, corrections.in_order())
    flags = tuple(result.flags or ()) if result is not None else ()

    pages: tuple[Page, ...] = ()
    problem = None
    boxes: dict[str, list[Box]] = {}
    raw: bytes = b""
    try:
        raw = workspace.storage.read(row.storage_key)
        parsed = parse_document(raw, row.file_type, tables=_wants_tables(route))
        pages = parsed.pages
        boxes = _boxes(raw, row.file_type, pages, _spans(evidence, len(pages)))
    except (BatchnbError, OSError) as error:
        problem = f"the pages cannot be read again: {error}"
        log.info("document %s: %s", document_id, problem)
    has_image = row.file_type == "pdf" or (row.file_type in IMAGE_KINDS and bool(raw))
    page_count = len(pages) or (row.page_count or 0)
    shown_pages = tuple(
        DocumentPage(number, pages[number - 1].text if number <= len(pages) else "", has_image)
        for number in range(1, page_count + 1)
    )
    fields = tuple(
        _field(
            spec,
            data.get(str(spec["name"])),
            evidence.get(str(spec["name"])),
            flags,
            corrections,
            boxes,
        )
        for spec in schema_fields
    )
    return DocumentContent(
        document_id=row.id,
        batch_id=row.batch_id,
        file_name=row.file_name,
        file_type=row.file_type,
        status=row.status,
        error=row.error,
        pages=shown_pages,
        fields=fields,
        flags=flags,
        reviewed=row.reviewed_at is not None,
        problem=problem,
    )


def document_page_image(
    document_id: int, page: int, *, workspace: Workspace | None = None, actor: str | None = None
) -> PageImage | None:
    """Page ``page`` (1-based) of a PDF or image document as an image; ``None`` for kinds
    without pages to draw (text, office documents, spreadsheets).

    Raises
    ------
    NotFoundError, PermissionDeniedError
        As :func:`document_content`.
    DocumentError
        The file cannot be drawn (damaged, no such page, Pillow missing for images).
    """
    workspace, actor = acting(workspace, actor)
    row, _, _ = _read(workspace, actor, document_id, with_result=False)
    if row.file_type == "pdf":
        with workspace.storage.open(row.storage_key) as stream:
            return pdf_page_image(stream, page)
    if row.file_type in IMAGE_KINDS:
        return image_page_image(workspace.storage.read(row.storage_key), row.file_type, page)
    return None


def result_annotations(
    document_ids: Sequence[int] = (),
    *,
    batch_id: int | None = None,
    with_evidence: bool = True,
    workspace: Workspace | None = None,
    actor: str | None = None,
) -> dict[int, ResultAnnotations]:
    """For each of ``document_ids`` (or every document of ``batch_id``) with a result: its
    fields' confidence and whether they have evidence, and its flags, in one query. The grid
    asks for its visible page; a filter on flags asks for a whole batch, ``with_evidence=False``
    (flags only: the evidence is most of what a result weighs)."""
    workspace, actor = acting(workspace, actor)
    wanted = list(dict.fromkeys(document_ids))
    if not wanted and batch_id is None:
        return {}
    columns = [ExtractedData.document_id, ExtractedData.flags]
    if with_evidence:
        columns.append(ExtractedData.evidence)
    query = select(*columns).order_by(ExtractedData.id)
    with workspace.db.connect() as connection:
        if batch_id is not None:
            batch_ids: Sequence[int] = [batch_id]
            query = query.where(ExtractedData.batch_id == batch_id)
        else:
            batch_ids = connection.scalars(
                select(Document.batch_id).where(Document.id.in_(wanted)).distinct()
            ).all()
            query = query.where(ExtractedData.document_id.in_(wanted))
        authorize(workspace, actor, "view", batch_ids)
        rows = connection.execute(query).all()
    found: dict[int, ResultAnnotations] = {}
    for row in rows:  # by id: the newest result of a document wins
        evidence = {
            name: found_at
            for name, found_at in ((row.evidence or {}) if with_evidence else {}).items()
            if name != DOCUMENT_INFO_KEY
        }
        found[row.document_id] = ResultAnnotations(
            confidence={
                name: (found_at or {}).get("confidence") for name, found_at in evidence.items()
            },
            grounded={
                name: bool(found_at and found_at.get("page")) for name, found_at in evidence.items()
            },
            flags=tuple(row.flags or ()),
        )
    return found


class Corrections:
    """A document's corrections (as :func:`list_corrections` gives them, newest first): which
    paths of a field were corrected, and the field's value before the first one."""

    def __init__(self, corrections: Sequence[Correction] = ()) -> None:
        self.oldest_first = list(reversed(corrections))

    def in_order(self) -> list[tuple[str, Any]]:
        """(path, new value) pairs, oldest first, for :func:`apply_corrections`."""
        return [(c.field, c.new_value) for c in self.oldest_first]

    def paths_of(self, name: str) -> tuple[str, ...]:
        """The corrected paths of field ``name`` (``total``, ``line_items.2.amount``)."""
        paths = [c.field for c in self.oldest_first if parse_field_path(c.field).name == name]
        return tuple(dict.fromkeys(paths))

    def original_of(self, name: str) -> JSONValue:
        """The value as extracted: the old value of the field's first correction (``None``
        when only items were corrected: see :meth:`item_originals`)."""
        for c in self.oldest_first:
            if c.field == name:
                return c.old_value
        return None

    def item_originals(self, name: str) -> dict[str, Any]:
        """Item path → the value as extracted, for the corrected items of array ``name``."""
        found: dict[str, Any] = {}
        for c in self.oldest_first:
            where = parse_field_path(c.field)
            if where.name == name and where.index is not None:
                found.setdefault(c.field, c.old_value)
        return found


# -- reading -----------------------------------------------------------------------------------


def _read(
    workspace: Workspace, actor: str, document_id: int, *, with_result: bool = True
) -> tuple[Any, Any, Route | None]:
    """The document's row, its newest result and the route its job took (or ``None``s)."""
    with workspace.db.connect() as connection:
        row = connection.execute(
            select(
                Document.id,
                Document.batch_id,
                Document.file_name,
                Document.file_type,
                Document.status,
                Document.error,
                Document.storage_key,
                Document.page_count,
                Document.prompt,
                Document.reviewed_at,
            ).where(Document.id == document_id)
        ).one_or_none()
        if row is None:
            raise NotFoundError(f"document {document_id} does not exist")
        authorize(workspace, actor, "view", [row.batch_id])
        if not with_result:
            return row, None, None
        newest = (
            select(func.max(ExtractedData.id))
            .where(ExtractedData.document_id == document_id)
            .scalar_subquery()
        )
        result = connection.execute(
            select(
                ExtractedData.data,
                ExtractedData.evidence,
                ExtractedData.schema,
                ExtractedData.flags,
                ExtractionJob.prompt,
                ExtractionBatch.prompt.label("batch_prompt"),
                ExtractionBatch.strategy,
                ExtractionBatch.options,
            )
            .join(ExtractionJob, ExtractionJob.id == ExtractedData.job_id)
            .join(ExtractionBatch, ExtractionBatch.id == ExtractedData.batch_id)
            .where(ExtractedData.id == newest)
        ).one_or_none()
    route = None
    if result is not None:
        options = result.options or {}
        try:
            route = Route.of(
                result.prompt or row.prompt,
                result.batch_prompt,
                result.strategy,
                options.get("schema"),
                options.get("templates"),
                options.get("min_confidence"),
            )
        except BatchnbError as error:  # a batch from an older version: read without tables
            log.info("document %s: no route (%s)", document_id, error)
    return row, result, route


def _wants_tables(route: Route | None) -> bool:
    """Parse as the worker did: tables change the page texts that spans index."""
    try:
        return route is not None and route.wants_tables()
    except BatchnbError:
        return False


def _spans(evidence: Mapping[str, Any], page_count: int) -> dict[str, Span]:
    spans: dict[str, Span] = {}
    for name, found in evidence.items():
        if name == DOCUMENT_INFO_KEY or not isinstance(found, dict):
            continue
        page, start, end = found.get("page"), found.get("start"), found.get("end")
        if (
            isinstance(page, int)
            and 0 < page <= page_count
            and start is not None
            and end is not None
        ):
            spans[name] = (page, int(start), int(end))
    return spans


def _boxes(
    raw: bytes, kind: str, pages: tuple[Page, ...], spans: dict[str, Span]
) -> dict[str, list[Box]]:
    """Each span's boxes: from OCR words where the page was OCR'd, else from a PDF's text
    layer; none for other kinds."""
    boxes: dict[str, list[Box]] = {}
    text_layer: dict[str, Span] = {}
    sizes: list[tuple[float, float]] = pdf_page_sizes(raw) if kind == "pdf" else []
    for name, (number, start, end) in spans.items():
        page = pages[number - 1]
        if page.words:
            size = ocr_image_size(sizes[number - 1]) if kind == "pdf" else image_size(raw, number)
            if size is not None:
                boxes[name] = word_span_boxes(page.words, start, end, size)
        elif kind == "pdf":
            text_layer[name] = (number, start, end)
    if text_layer:
        boxes.update(pdf_span_boxes(raw, text_layer))
    return boxes


def _field(
    spec: Mapping[str, Any],
    value: JSONValue,
    found_at: Any,
    flags: Iterable[Mapping[str, Any]],
    corrections: Corrections,
    boxes: Mapping[str, list[Box]],
) -> DocumentField:
    name = str(spec["name"])
    evidence = None
    confidence = None
    if isinstance(found_at, dict):
        confidence = found_at.get("confidence")
        if isinstance(found_at.get("page"), int):
            evidence = FieldEvidence(
                page=found_at["page"],
                start=found_at.get("start"),
                end=found_at.get("end"),
                raw=found_at.get("raw"),
                boxes=tuple(boxes.get(name, ())),
            )
    paths = corrections.paths_of(name)
    return DocumentField(
        name=name,
        label=str(spec.get("label") or name),
        type=str(spec.get("type", "string")),
        value=value,
        confidence=confidence,
        evidence=evidence,
        flags=tuple(str(f.get("message")) for f in flags if f.get("field") == name),
        corrected=bool(paths),
        original=corrections.original_of(name) if paths else None,
        corrected_paths=paths,
        item_originals=corrections.item_originals(name),
        item_fields=tuple(dict(f) for f in spec.get("fields", ())),
    )
