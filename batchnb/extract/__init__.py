"""Extraction: prompts become schemas, extractors fill them with grounded, typed values.

``schema_from_prompt("invoice number, date, total")`` gives a :class:`Schema`;
``ExtractorPool(settings).get("offline").extract(document, schema)`` gives an
:class:`ExtractionResult` whose values carry their page, character span and confidence.
Extractors are registered by name, built-ins and plugins alike, through the
``batchnb.extractors`` entry point group.

The framework lives at this package's root (the extractor contract, registry and pool,
schemas, validation, templates, classification, typed values, table reading); the backends
are subpackages: :mod:`batchnb.extract.offline` and :mod:`batchnb.extract.llm`.
"""

from batchnb.extract.base import (
    ExtractedValue,
    ExtractionResult,
    Extractor,
    FunctionExtractor,
    JSONValue,
)
from batchnb.extract.llm import OpenAICompatibleExtractor
from batchnb.extract.offline import OfflineExtractor
from batchnb.extract.pool import ExtractorPool
from batchnb.extract.registry import (
    ENTRY_POINT_GROUP,
    ExtractorFactory,
    ExtractorInfo,
    ExtractorRegistry,
    RegisterExtractor,
    default_registry,
    extractor_names,
    get_extractor,
    register_extractor,
)
from batchnb.extract.schema import (
    FIELD_TYPES,
    MAX_PROMPT_CHARS,
    Field,
    FieldType,
    Schema,
    schema_from_dict,
    schema_from_prompt,
)
from batchnb.extract.values import parse_date, parse_money, parse_number

__all__ = [
    "ENTRY_POINT_GROUP",
    "FIELD_TYPES",
    "MAX_PROMPT_CHARS",
    "ExtractedValue",
    "ExtractionResult",
    "Extractor",
    "ExtractorFactory",
    "ExtractorInfo",
    "ExtractorPool",
    "ExtractorRegistry",
    "Field",
    "FieldType",
    "FunctionExtractor",
    "JSONValue",
    "OfflineExtractor",
    "OpenAICompatibleExtractor",
    "RegisterExtractor",
    "Schema",
    "default_registry",
    "extractor_names",
    "get_extractor",
    "parse_date",
    "parse_money",
    "parse_number",
    "register_extractor",
    "schema_from_dict",
    "schema_from_prompt",
]
