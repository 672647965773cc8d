"""One document from bytes to values: parse, choose its schema, extract.

The worker's document job and the notebook's preview both run a document through these
functions, so a preview shows exactly what a batch would store for that file. The worker
parses while the stored file is open and extracts after closing it (an extractor may take
long), so the two steps are also separate functions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from batchnb.documents.parsed import ParsedDocument
from batchnb.documents.parsers import DocumentSource, parse_document
from batchnb.extract.base import ExtractionResult, Extractor
from batchnb.extract.routing import Route
from batchnb.extract.schema import Schema


@dataclass(frozen=True)
class ExtractionRun:
    """What one run produced.

    Parameters
    ----------
    parsed:
        The document as parsed (page texts, tables, OCR words).
    schema:
        The schema the document was extracted with.
    result:
        The extractor's values, each with its evidence.
    document_info:
        For a route that classifies ("auto"): the type, its confidence, whether it was below
        the threshold and the prompt chosen; ``None`` otherwise.
    """

    parsed: ParsedDocument
    schema: Schema
    result: ExtractionResult
    document_info: dict[str, Any] | None


def parse_for_route(source: DocumentSource, kind: str, route: Route) -> ParsedDocument:
    """Parse ``source`` as a ``kind`` document, reading PDF tables only when the route can want
    array fields (see :meth:`Route.wants_tables`).

    Raises
    ------
    DocumentError
        The document cannot be parsed (corrupt, encrypted, no text, unsupported kind).
    """
    return parse_document(source, kind, tables=route.wants_tables())


def extract_parsed(parsed: ParsedDocument, route: Route, extractor: Extractor) -> ExtractionRun:
    """Pick the parsed document's schema by ``route`` (classifying it for "auto"), extract it.

    Raises
    ------
    ExtractorError
        The extractor failed.
    """
    schema, document_info = route.choose(parsed)
    result = extractor.extract(parsed, schema)
    return ExtractionRun(parsed, schema, result, document_info)


def run_extraction(
    source: DocumentSource, kind: str, route: Route, extractor: Extractor
) -> ExtractionRun:
    """:func:`parse_for_route`, then :func:`extract_parsed`: one document, start to end."""
    return extract_parsed(parse_for_route(source, kind, route), route, extractor)
