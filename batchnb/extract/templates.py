"""Prompt templates per document type, for the "auto" strategy.

Each built-in type has one TOML file in ``batchnb/extract/templates/`` (shipped in the wheel),
named after the type, with a ``prompt`` and an optional ``description``::

    # invoice.toml
    description = "A bill from a seller asking a buyer for payment."
    prompt = "invoice number, invoice date, due date, total amount, ..."

``fallback.toml`` holds the prompt for documents of no known type and for documents the classifier
is not sure about. Users change or add types with a dict (``{"invoice": "invoice number,
total"}``) or a folder of TOML files in the same format; every template is turned into a schema
when it is loaded, so a bad prompt fails before a batch starts, naming the file it came from.
"""

from __future__ import annotations

import functools
import re
import tomllib
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

from batchnb.errors import ConfigurationError, SchemaError
from batchnb.extract.schema import schema_from_prompt

FALLBACK = "fallback"
"""The template used for type ``other`` and for classifications below the confidence threshold."""

_TYPE_NAME_RE = re.compile(r"^[a-z_][a-z0-9_]*$")


def _checked(name: str, prompt: Any, origin: str) -> str:
    """The prompt with its whitespace collapsed, once it is known to make a schema."""
    if not _TYPE_NAME_RE.match(name):
        raise SchemaError(
            f"template name {name!r} ({origin}) is not a snake_case type name, e.g. 'delivery_note'"
        )
    if not isinstance(prompt, str):
        raise SchemaError(
            f"template {name!r} ({origin}) needs a 'prompt' string, e.g. "
            'prompt = "invoice number, date, total"'
        )
    try:
        schema_from_prompt(prompt)
    except SchemaError as error:
        raise SchemaError(f"template {name!r} ({origin}): {error}") from error
    return " ".join(prompt.split())


def _parse_file(name: str, content: bytes, origin: str) -> str:
    try:
        data = tomllib.loads(content.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise SchemaError(f"template {name!r} ({origin}) is not valid TOML: {error}") from error
    return _checked(name, data.get("prompt"), origin)


def read_template(path: str | Path) -> tuple[str, str]:
    """``(type, prompt)`` from one TOML template file; the type is the file's stem."""
    path = Path(path)
    return path.stem, _parse_file(path.stem, path.read_bytes(), str(path))


@functools.cache
def _builtin() -> tuple[tuple[str, str], ...]:
    folder = resources.files("batchnb.extract").joinpath("templates")
    found = []
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".toml"):
            name = entry.name.removesuffix(".toml")
            found.append((name, _parse_file(name, entry.read_bytes(), f"built-in {entry.name}")))
    return tuple(found)


def builtin_templates() -> dict[str, str]:
    """The shipped prompts: one per type of :mod:`batchnb.extract.classify`, plus ``fallback``."""
    return dict(_builtin())


def load_templates(
    overrides: Mapping[str, str] | None = None, extra_dir: str | Path | None = None
) -> dict[str, str]:
    """The built-in templates, updated from ``extra_dir`` and then from ``overrides``.

    Parameters
    ----------
    overrides:
        Type → prompt; replaces the built-in prompt of that type, or adds a type.
    extra_dir:
        A folder of ``<type>.toml`` files (with a ``prompt`` key), read in name order.

    Raises
    ------
    SchemaError
        A template is not valid TOML, has no prompt, or its prompt makes no schema; the message
        names the file (or "overrides").
    ConfigurationError
        ``extra_dir`` is not a folder.
    """
    templates = builtin_templates()
    if extra_dir is not None:
        folder = Path(extra_dir)
        if not folder.is_dir():
            raise ConfigurationError(f"template folder {str(folder)!r} does not exist")
        for path in sorted(folder.glob("*.toml")):
            name, prompt = read_template(path)
            templates[name] = prompt
    for name, prompt in (overrides or {}).items():
        templates[name] = _checked(name, prompt, "overrides")
    return templates


def template_prompt(templates: Mapping[str, str], document_type: str) -> str:
    """The prompt for a document type: its own template, else the fallback."""
    prompt = templates.get(document_type) or templates.get(FALLBACK)
    if prompt is None:
        prompt = builtin_templates()[FALLBACK]
    return prompt
