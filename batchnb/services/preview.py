"""Preview: extract one document now, in the kernel, to see what a batch would store for it.

:func:`preview_extraction` checks the prompt, schema, strategy and templates the way
:func:`~batchnb.services.submit.submit` does, then runs the worker's own parse → choose schema
→ extract path (:func:`~batchnb.extract.pipeline.run_extraction`) on one file. Nothing is
queued and nothing is stored: no batch, document or result row, no file in the store. The
:class:`Preview` it returns shows each value with where it was found (page, character span,
box on the page image when OCR read it), so a prompt can be tried on a real file before a
batch of a thousand runs with it. :func:`classify_file` only says which type "auto" would pick.
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from batchnb.documents.filetypes import EMPTY, detect_stream_type, extension_mismatch
from batchnb.documents.intake import safe_file_name
from batchnb.documents.parsed import Page
from batchnb.documents.parsers import parse_document
from batchnb.errors import DocumentError, IntakeError
from batchnb.extract.base import ExtractedValue
from batchnb.extract.classify import Classification, classify
from batchnb.extract.pipeline import run_extraction
from batchnb.extract.routing import DEFAULT_MIN_CONFIDENCE, Route
from batchnb.extract.schema_input import SchemaInput
from batchnb.services.preview_result import Evidence, Preview, PreviewField
from batchnb.services.submit import Source, _strategy_options
from batchnb.services.workspace import Workspace, acting

__all__ = ["Evidence", "Preview", "PreviewField", "classify_file", "preview_extraction"]


def preview_extraction(
    source: Source,
    *,
    prompt: str | None = None,
    schema: SchemaInput | None = None,
    strategy: str = "global",
    templates: Mapping[str, str] | str | Path | None = None,
    extractor: str = "offline",
    workspace: Workspace | None = None,
    min_confidence: float = DEFAULT_MIN_CONFIDENCE,
) -> Preview:
    """Extract one document now, without the queue and without storing anything.

    Parameters
    ----------
    source:
        A path, or ``(file name, bytes)``.
    prompt, schema, templates, min_confidence:
        As for :func:`~batchnb.submit`, checked the same way.
    strategy:
        ``"global"``; ``"per_document"`` (the same for one file: pass that file's prompt);
        or ``"auto"`` (classify first; the preview says which type and template it chose).
    extractor:
        A name of the workspace's extractors (``batchnb extractors`` lists them).

    Raises
    ------
    SchemaError, ConfigurationError
        The prompt, schema, strategy or templates are invalid (the same messages as submit).
    UnknownExtractorError
        No extractor has that name.
    IntakeError
        The path is not a readable file.
    DocumentError
        The file is empty, of an unsupported type, or cannot be parsed (corrupt, encrypted).
    """
    workspace, _ = acting(workspace, None)
    route = _route(prompt, schema, strategy, templates, min_confidence)
    chosen = workspace.extractors.get(extractor)
    with _opened(source) as (file_name, stream):
        kind = _checked_kind(file_name, stream)
        try:
            run = run_extraction(stream, kind, route, chosen)
        except DocumentError as error:
            raise DocumentError(f"{file_name}: {error}", kind=error.kind) from error
    info = run.document_info or {}
    return Preview(
        file_name=file_name,
        file_type=kind,
        fields=tuple(
            _preview_field(
                field.name,
                field.label,
                field.type,
                run.result.values.get(field.name),
                run.parsed.pages,
            )
            for field in run.schema.fields
        ),
        pages=tuple(page.text for page in run.parsed.pages),
        schema=run.schema,
        extractor=extractor,
        parser=run.parsed.parser,
        document_type=info.get("type"),
        type_confidence=info.get("confidence"),
        low_confidence=bool(info.get("low_confidence", False)),
        prompt=info.get("prompt"),
        notes=run.result.notes,
    )


def classify_file(source: Source) -> Classification:
    """The document type "auto" would give this file, and how sure the classifier is.

    Parses the file (without PDF tables) and classifies it; nothing is stored. Raises as
    :func:`preview_extraction` does for a file that cannot be read or parsed.
    """
    with _opened(source) as (file_name, stream):
        kind = _checked_kind(file_name, stream)
        try:
            parsed = parse_document(stream, kind)
        except DocumentError as error:
            raise DocumentError(f"{file_name}: {error}", kind=error.kind) from error
    return classify(parsed)


def _route(
    prompt: str | None,
    schema: SchemaInput | None,
    strategy: str,
    templates: Mapping[str, str] | str | Path | None,
    min_confidence: float,
) -> Route:
    """Check the options as submit does and make the route the worker would take."""
    # One file with its own prompt is a global run of that prompt.
    checked = "global" if strategy == "per_document" else strategy
    recorded, options = _strategy_options(prompt, checked, schema, {}, templates, min_confidence)
    return Route.of(
        None,
        prompt,
        recorded,
        options.get("schema"),
        options.get("templates"),
        options.get("min_confidence"),
    )


@contextmanager
def _opened(source: Source) -> Iterator[tuple[str, BinaryIO]]:
    """The file's display name and a binary stream of it (a path is read on demand)."""
    if isinstance(source, tuple):
        name, data = source
        yield safe_file_name(name), io.BytesIO(data)
        return
    path = Path(source)
    try:
        stream = path.open("rb")
    except OSError as error:
        raise IntakeError(
            f"cannot read {str(path)!r}: {error.strerror or error}; give the path of a file"
        ) from error
    with stream:
        yield safe_file_name(path.name), stream


def _checked_kind(file_name: str, stream: BinaryIO) -> str:
    """The file's kind, once it is known to be a supported, non-empty document."""
    file_type = detect_stream_type(stream, file_name)
    if file_type is EMPTY:
        raise DocumentError(f"{file_name} is empty (0 bytes)", kind="empty")
    problem = extension_mismatch(file_name, file_type)
    if problem is None and not file_type.supported:
        problem = f"{file_name} is {file_type.label}, which batchnb does not read"
    if problem is not None:
        raise DocumentError(problem, kind="unsupported")
    return file_type.kind


def _preview_field(
    name: str, label: str, type_: str, found: ExtractedValue | None, pages: tuple[Page, ...]
) -> PreviewField:
    if found is None:
        return PreviewField(name, label, type_, None, None, None)
    evidence = None
    if found.page is not None:
        page = pages[found.page - 1] if 0 < found.page <= len(pages) else None
        evidence = Evidence(
            page=found.page,
            start=found.start,
            end=found.end,
            raw=found.raw,
            box=_box(page, found.start, found.end) if page is not None else None,
        )
    return PreviewField(name, label, type_, found.value, found.confidence, evidence)


def _box(page: Page, start: int | None, end: int | None) -> tuple[int, int, int, int] | None:
    """The box around the OCR words overlapping ``start:end``; ``None`` without OCR words."""
    if start is None or end is None:
        return None
    boxes = [word.box for word in page.words if word.start < end and word.end > start]
    if not boxes:
        return None
    return (
        min(b[0] for b in boxes),
        min(b[1] for b in boxes),
        max(b[2] for b in boxes),
        max(b[3] for b in boxes),
    )
