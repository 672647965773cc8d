"""How one document's schema is chosen: given before parsing, or by classifying the document.

A batch names its fields one way (a prompt, a schema, a prompt per document, or "auto"); the
worker turns that into a :class:`Route` before parsing, so it knows whether the schema has
arrays (PDF tables are read only then) and what part of the route belongs in the result cache
key, and after parsing asks the route for the document's schema.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from batchnb.documents.parsed import ParsedDocument
from batchnb.extract.classify import classify
from batchnb.extract.schema import Schema, schema_from_dict, schema_from_prompt
from batchnb.extract.templates import FALLBACK, builtin_templates, template_prompt

DEFAULT_MIN_CONFIDENCE = 0.5
"""Below this classification confidence an "auto" run uses the fallback template."""


@dataclass(frozen=True)
class Route:
    """How one document's schema is chosen: known before parsing, or by classifying it.

    A prompt of the job (a retry with a new prompt) or of the document comes first; then an
    "auto" batch classifies the document and takes its type's template (the batch's stored
    templates, else the built-in ones), or the fallback when the classifier is not sure; then
    the batch's schema, then its prompt.
    """

    schema: Schema | None
    templates: dict[str, str]
    min_confidence: float

    @classmethod
    def of(
        cls,
        own_prompt: str | None,
        batch_prompt: str | None,
        strategy: str,
        stored_schema: dict[str, Any] | None,
        templates: dict[str, str] | None,
        min_confidence: float | None,
    ) -> Route:
        threshold = DEFAULT_MIN_CONFIDENCE if min_confidence is None else float(min_confidence)
        if own_prompt:
            schema: Schema | None = schema_from_prompt(own_prompt)
        elif strategy == "auto":
            schema = None
        elif stored_schema:
            schema = schema_from_dict(stored_schema)
        else:
            schema = schema_from_prompt(batch_prompt or "")
        return cls(schema, templates or builtin_templates(), threshold)

    def cache_part(self) -> dict[str, Any]:
        """What of the route belongs in the result cache key."""
        if self.schema is not None:
            return {"schema": self.schema.hash()}
        return {"auto": self.templates, "min_confidence": self.min_confidence}

    def wants_tables(self) -> bool:
        """Whether the schema can have array fields: PDF tables cost ~0.1 s a page, so they
        are read only then ("auto" decides after parsing, so any template with arrays counts).
        """
        schemas = (
            [self.schema]
            if self.schema is not None
            else [schema_from_prompt(prompt) for prompt in self.templates.values()]
        )
        return any(field.type == "array" for schema in schemas for field in schema.fields)

    def choose(self, parsed: ParsedDocument) -> tuple[Schema, dict[str, Any] | None]:
        """The schema for this document, and for "auto" what the classifier said."""
        if self.schema is not None:
            return self.schema, None
        found = classify(parsed)
        low = found.confidence < self.min_confidence
        prompt = template_prompt(self.templates, FALLBACK if low else found.type)
        info = {
            "type": found.type,
            "confidence": found.confidence,
            "low_confidence": low,
            "prompt": prompt,
        }
        return schema_from_prompt(prompt), info
