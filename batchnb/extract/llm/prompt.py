"""What a language model is asked: a string-typed JSON Schema, the prompt, and the repair turn.

Small models copy values best when every field is required and every value is a string or null,
copied as printed; a schema with optional keys, ``format: date`` or number types makes them
slower and corrupts values ("28/11/2022" → "2811-06-20"). So the model is shown and held to that
string-only schema, and dates, amounts and numbers are read from the copied strings in Python
(:mod:`batchnb.extract.llm.results`). The system prompt shows the same schema that the
structured output enforces.

A plugin wrapping an in-process model builds its request with :func:`build_messages` and
:func:`response_schema` (or :func:`response_format` for an OpenAI-style API).
"""

from __future__ import annotations

import json
from typing import Any

from batchnb.documents.parsed import ParsedDocument
from batchnb.extract.schema import Field, Schema

DEFAULT_MAX_INPUT_CHARS = 60_000
"""Document characters sent to the model (about 15k tokens); the rest is cut with a note."""

RESPONSE_SCHEMA_NAME = "extraction"

_TYPE_HINTS = {
    "string": "text",
    "number": "a number, copied as printed",
    "money": "an amount with its currency symbol or code if printed, copied as printed",
    "date": "a date, copied as printed (do not reformat it)",
    "boolean": "yes/no, copied as printed",
}

SYSTEM_PROMPT = """\
You extract fields from a document. Reply with one JSON object and nothing else.
Rules:
- Copy each value exactly as it is printed in the document: same spelling, digits, punctuation,
  currency symbols and date format. Do not convert, translate, compute or reformat.
- Use null when the document does not show the value. Never guess.
- For a list field, give one object per row of the document's table, in document order, and []
  when there are no rows.
The reply must match this JSON Schema:
{schema}"""

REPAIR_PROMPT = """\
Your reply was not a valid JSON object matching the schema ({problem}).
Reply again with only the JSON object, matching this JSON Schema:
{schema}"""


def response_schema(schema: Schema) -> dict[str, Any]:
    """The JSON Schema the model must follow: every field required, every value string|null.

    Array fields are arrays of objects whose sub-fields are string|null. The result is valid
    for OpenAI's ``strict`` structured outputs (``additionalProperties: false`` everywhere).
    """
    return _object_schema(schema.fields)


def response_format(schema: Schema) -> dict[str, Any]:
    """The ``response_format`` request member: structured output of :func:`response_schema`."""
    return {
        "type": "json_schema",
        "json_schema": {
            "name": RESPONSE_SCHEMA_NAME,
            "strict": True,
            "schema": response_schema(schema),
        },
    }


def build_messages(
    document: ParsedDocument, schema: Schema, max_input_chars: int = DEFAULT_MAX_INPUT_CHARS
) -> list[dict[str, str]]:
    """The chat messages for one extraction: the system prompt and the page-marked document."""
    shown = json.dumps(response_schema(schema), indent=1, ensure_ascii=False)
    return [
        {"role": "system", "content": SYSTEM_PROMPT.format(schema=shown)},
        {"role": "user", "content": document_text(document, max_input_chars)},
    ]


def repair_messages(
    messages: list[dict[str, str]], reply: str, problem: str, schema: Schema
) -> list[dict[str, str]]:
    """``messages`` followed by the bad reply and a request for valid JSON matching the schema."""
    shown = json.dumps(response_schema(schema), ensure_ascii=False)
    return [
        *messages,
        {"role": "assistant", "content": reply},
        {"role": "user", "content": REPAIR_PROMPT.format(problem=problem, schema=shown)},
    ]


def document_text(document: ParsedDocument, max_input_chars: int = DEFAULT_MAX_INPUT_CHARS) -> str:
    """The document's pages, each under a ``--- page N ---`` marker, cut to ``max_input_chars``.

    A cut document ends with a note saying how much was left out, so the model does not take
    a missing total for an absent one.
    """
    parts = [f"--- page {page.number} ---\n{page.text}" for page in document.pages]
    text = "\n".join(parts)
    if len(text) <= max_input_chars:
        return text
    return (
        f"{text[:max_input_chars]}\n--- [document truncated: the first {max_input_chars} of "
        f"{len(text)} characters are shown; pages after this point are missing] ---"
    )


def _object_schema(fields: tuple[Field, ...]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {field.name: _property(field) for field in fields},
        "required": [field.name for field in fields],
        "additionalProperties": False,
    }


def _property(field: Field) -> dict[str, Any]:
    description = field.label
    if field.description:
        description += f" ({field.description})"
    if field.type == "array":
        return {
            "type": "array",
            "description": f"{description}: one object per row",
            "items": _object_schema(field.fields),
        }
    return {"type": ["string", "null"], "description": f"{description}: {_TYPE_HINTS[field.type]}"}
