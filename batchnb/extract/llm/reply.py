"""Reading a language model's reply: one JSON object shaped like the extraction schema.

Models asked for JSON still wrap it in a code fence, answer with a list, or nest an object
where a string was asked for. :func:`read_reply` accepts the first and refuses the others with
a :class:`ReplyError` saying what is wrong, which is what a repair request tells the model.
"""

from __future__ import annotations

import json
import re
from typing import Any

from batchnb.extract.schema import Schema


class ReplyError(ValueError):
    """The model's reply is not a JSON object shaped like the schema; the message says why."""


def read_reply(reply: str, schema: Schema) -> dict[str, Any]:
    """The model's JSON object, checked against the schema's shape (not yet typed).

    Scalar fields must be strings (or null; numbers and booleans are accepted as the model
    wrote them) and array fields lists of objects, as :func:`~batchnb.extract.llm.response_schema`
    asks.

    Raises
    ------
    ReplyError
        The reply is not valid JSON, not an object, or a field has the wrong shape.
    """
    text = reply.strip()
    fenced = re.fullmatch(r"```(?:json)?\s*(.*?)\s*```", text, re.DOTALL)
    if fenced:  # small models wrap JSON in a code fence even when told not to
        text = fenced.group(1)
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ReplyError(f"invalid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ReplyError(f"expected a JSON object, got {type(data).__name__}")
    for field in schema.fields:
        value = data.get(field.name)
        if field.type == "array":
            if value is not None and not (
                isinstance(value, list) and all(isinstance(row, dict) for row in value)
            ):
                raise ReplyError(f"{field.name!r} must be a list of objects")
        elif isinstance(value, dict | list):
            raise ReplyError(f"{field.name!r} must be a string or null")
    return data
