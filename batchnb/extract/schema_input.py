"""Schemas given directly: a batchnb Schema, a schema dict, JSON Schema or a pydantic model.

Pydantic is not a dependency: any object with a ``model_json_schema()`` method is read through
it. JSON Schema ``$ref`` to ``$defs``/``definitions`` are inlined and optional members
(``anyOf`` with ``null``) reduced to their type, as pydantic writes both.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from batchnb.errors import SchemaError
from batchnb.extract.schema import Schema, schema_from_dict

SchemaInput = Schema | Mapping[str, Any] | type
"""A schema given directly: a Schema, a schema dict (or JSON Schema) or a pydantic model class."""

_MAX_REF_DEPTH = 16


def coerce_schema(value: SchemaInput) -> Schema:
    """A :class:`Schema` from a Schema, a schema dict (JSON Schema included) or a pydantic model.

    Pydantic is not a dependency: any object with a ``model_json_schema()`` method is read
    through it. JSON Schema ``$ref`` to ``$defs``/``definitions`` are inlined and optional
    members (``anyOf`` with ``null``) reduced to their type, as pydantic writes both.
    """
    if isinstance(value, Schema):
        return value
    to_json_schema = getattr(value, "model_json_schema", None)
    if callable(to_json_schema):
        value = to_json_schema()
    if isinstance(value, Mapping):
        defs = {**value.get("definitions", {}), **value.get("$defs", {})}
        return schema_from_dict(_inline_json_schema(value, defs, depth=0))
    raise SchemaError(
        f"schema= takes a batchnb Schema, a dict or a pydantic model class, "
        f"got {type(value).__name__}"
    )


def _inline_json_schema(node: Any, defs: Mapping[str, Any], depth: int) -> Any:
    if isinstance(node, list):
        return [_inline_json_schema(item, defs, depth) for item in node]
    if not isinstance(node, Mapping):
        return node
    current = dict(node)
    while True:
        ref = current.pop("$ref", None)
        if isinstance(ref, str):
            target = defs.get(ref.rsplit("/", 1)[-1])
            if target is None:
                raise SchemaError(f"the schema refers to {ref!r}, which it does not define")
            depth += 1
            if depth > _MAX_REF_DEPTH:
                raise SchemaError(f"the schema nests {ref!r} too deeply (is it recursive?)")
            current = {**target, **current}
            continue
        union = current.get("anyOf", current.get("oneOf"))
        if isinstance(union, list):
            members = [m for m in union if not (isinstance(m, Mapping) and m.get("type") == "null")]
            if members:
                current.pop("anyOf", None)
                current.pop("oneOf", None)
                current = {**members[0], **current}
                continue
        break
    return {
        key: _inline_json_schema(item, defs, depth)
        for key, item in current.items()
        if key not in ("$defs", "definitions")
    }
