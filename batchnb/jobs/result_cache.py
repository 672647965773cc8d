"""The result cache: the same bytes, parser, schema and extractor give the stored result again.

A result row carries its ``cache_key``; a document whose key matches an earlier result reuses
that result instead of extracting, so rerunning an unchanged batch extracts nothing. The key
covers the content hash, the parser's version for the file type (a PDF's with its table
reader's), what decides the schema, and the extractor's name and own ``version`` (which a
backend bumps whenever its output may change).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection, Row, bindparam, select

from batchnb.db.models import Document, ExtractedData, ExtractionJob
from batchnb.documents.ocr_policy import cache_tag
from batchnb.documents.text import PARSER_VERSION, PDF_TABLES_VERSION
from batchnb.extract import Extractor

# The newest matching result wins: a rerun with the cache bypassed stores a fresher one.
_CACHED_RESULT = (
    select(
        ExtractedData.data,
        ExtractedData.evidence,
        ExtractedData.schema,
        ExtractedData.confidence,
        ExtractedData.flags,
        Document.page_count,
        ExtractionJob.parser,
    )
    .join(Document, Document.id == ExtractedData.document_id)
    .join(ExtractionJob, ExtractionJob.id == ExtractedData.job_id)
    .where(ExtractedData.cache_key == bindparam("key"))
    .order_by(ExtractedData.id.desc())
    .limit(1)
)


def result_cache_key(
    content_hash: str,
    kind: str,
    extractor: Extractor,
    route: Mapping[str, Any],
) -> str:
    """What makes two extractions the same: bytes, parser, schema or routing, extractor.

    ``route`` is what decides the schema: the schema's own hash when it is known before
    parsing, or the "auto" strategy's templates and threshold (the type is found after).
    """
    canonical = json.dumps(
        {
            "content": content_hash,
            # Images and scans: which OCR engine(s) read them (BATCHNB_OCR_ENGINE); PDFs:
            # which table reader found their line items.
            "parser": PARSER_VERSION.get(kind, kind) + cache_tag(kind) + _tables_tag(kind),
            "route": route,
            "extractor": [extractor.name, extractor.version],
        },
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def _tables_tag(kind: str) -> str:
    return f"+{PDF_TABLES_VERSION}" if kind == "pdf" else ""


def cached_result(connection: Connection, key: str) -> Row[Any] | None:
    """The newest stored result with this key, with its page count and parser, if any."""
    return connection.execute(_CACHED_RESULT, {"key": key}).one_or_none()
