"""Documents: intake (paths, globs, bytes), content-addressed storage and parsers.

This layer knows files and their bytes, never the database: the service layer turns an
:class:`IntakeResult` into batch and document rows.
"""

from batchnb.documents.filetypes import (
    SUPPORTED_KINDS,
    FileType,
    detect_file_type,
    detect_stream_type,
    extension_mismatch,
)
from batchnb.documents.intake import (
    IncomingFile,
    IntakeResult,
    Refusal,
    Source,
    collect,
    safe_file_name,
)
from batchnb.documents.parsed import Page, ParsedDocument, Table
from batchnb.documents.parsers import parse_document
from batchnb.documents.plans import DEFAULT_PLAN, PLANS, Plan, get_plan
from batchnb.documents.storage import Storage, StoredObject
from batchnb.documents.text import PARSER_VERSION

__all__ = [
    "DEFAULT_PLAN",
    "PARSER_VERSION",
    "PLANS",
    "SUPPORTED_KINDS",
    "FileType",
    "IncomingFile",
    "IntakeResult",
    "Page",
    "ParsedDocument",
    "Plan",
    "Refusal",
    "Source",
    "Storage",
    "StoredObject",
    "Table",
    "collect",
    "detect_file_type",
    "detect_stream_type",
    "extension_mismatch",
    "get_plan",
    "parse_document",
    "safe_file_name",
]
