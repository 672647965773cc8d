"""The extractor contract: what an extractor is given, and what it hands back.

An extractor is any object with a ``name``, a ``version`` and one method,
``extract(document, schema) -> ExtractionResult``. Every value it returns carries its evidence:
the page, the character span in that page's text and a confidence, so a reviewer can see where a
value came from. :class:`FunctionExtractor` turns a plain function into an extractor, for quick
experiments in a notebook and for fakes in tests.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, cast, runtime_checkable

from batchnb.documents.parsed import ParsedDocument
from batchnb.errors import ExtractorError
from batchnb.extract.schema import Schema

JSONValue = str | int | float | bool | None | dict[str, Any] | list[Any]
"""A value as stored: money is ``{"amount": float, "currency": str | None}``, dates ISO strings."""


@dataclass(frozen=True)
class ExtractedValue:
    """One extracted value and where it was found.

    Parameters
    ----------
    value:
        The typed value, JSON-able: str, float, bool, money dict or ISO date string.
    raw:
        The source text the value was read from; ``None`` when the backend does not say.
    page:
        1-based page number, or ``None`` when the value is not grounded in a page.
    start, end:
        Character offsets in that page's text: ``document.pages[page - 1].text[start:end] == raw``.
    confidence:
        0..1, or ``None`` when the backend gives no confidence.
    """

    value: JSONValue
    raw: str | None = None
    page: int | None = None
    start: int | None = None
    end: int | None = None
    confidence: float | None = None

    def __post_init__(self) -> None:
        if self.confidence is not None and not 0.0 <= self.confidence <= 1.0:
            raise ValueError(f"confidence must be within 0..1, got {self.confidence}")
        if (self.start is None) != (self.end is None):
            raise ValueError("start and end are given together or not at all")
        if self.start is not None and self.end is not None and not 0 <= self.start <= self.end:
            raise ValueError(f"invalid span {self.start}..{self.end}")

    @property
    def grounded(self) -> bool:
        """True when the value points at a span of a page."""
        return self.page is not None and self.start is not None

    def evidence(self) -> dict[str, Any]:
        """JSON-able evidence: page, start, end, raw, confidence."""
        return {
            "page": self.page,
            "start": self.start,
            "end": self.end,
            "raw": self.raw,
            "confidence": self.confidence,
        }


@dataclass(frozen=True)
class ExtractionResult:
    """The values an extractor found for a schema; a field not found maps to ``None``.

    ``notes`` say what the extractor could not do (e.g. a field type it does not support yet),
    so that a missing value is explained rather than silent.
    """

    values: Mapping[str, ExtractedValue | None]
    extractor: str = ""
    notes: tuple[str, ...] = field(default=())

    def data(self) -> dict[str, JSONValue]:
        """Field name → value (``None`` for fields not found)."""
        return {name: None if found is None else found.value for name, found in self.values.items()}

    def evidence(self) -> dict[str, dict[str, Any] | None]:
        """Field name → evidence dict (``None`` for fields not found), JSON-able."""
        return {
            name: None if found is None else found.evidence() for name, found in self.values.items()
        }

    def confidence(self) -> float | None:
        """Mean confidence over the fields found that carry one; ``None`` when there are none."""
        scores = [
            found.confidence
            for found in self.values.values()
            if found is not None and found.confidence is not None
        ]
        return sum(scores) / len(scores) if scores else None


@runtime_checkable
class Extractor(Protocol):
    """What every extraction backend provides.

    ``name`` selects it in the registry; ``version`` changes whenever its output may change, as
    it is part of the result cache key.

    One instance serves every worker thread of a process (see
    :class:`~batchnb.extract.pool.ExtractorPool`), so ``extract`` must be safe to call
    concurrently. An extractor holding resources (a model, connections) may also define
    ``close() -> None``: the pool calls it when the workspace or worker stops. ``close`` is
    optional and so not part of this protocol's ``isinstance`` check. Two optional class
    attributes are shown by ``batchnb extractors`` without building an instance: ``version``
    and ``needs`` (what it needs to work, e.g. "a server at BATCHNB_MYMODEL_URL").
    """

    name: str
    version: str

    def extract(self, document: ParsedDocument, schema: Schema) -> ExtractionResult:
        """Fill the schema's fields from the document."""
        ...


ExtractFunction = Callable[[ParsedDocument, Schema], "Mapping[str, Any] | ExtractionResult"]


class FunctionExtractor:
    """An extractor backed by a function ``(document, schema) -> dict | ExtractionResult``.

    Plain dict values are wrapped as ungrounded :class:`ExtractedValue` rows (no page, no span,
    no confidence); :class:`ExtractedValue` instances in the dict are kept as they are. Fields the
    function leaves out are ``None``; keys outside the schema are dropped with a note.
    """

    def __init__(self, fn: ExtractFunction, name: str = "function", version: str = "1") -> None:
        if not callable(fn):
            raise TypeError(f"FunctionExtractor needs a callable, got {type(fn).__name__}")
        self.fn = fn
        self.name = name
        self.version = version

    def __repr__(self) -> str:
        return f"FunctionExtractor({getattr(self.fn, '__name__', self.fn)!r}, name={self.name!r})"

    def extract(self, document: ParsedDocument, schema: Schema) -> ExtractionResult:
        """Call the function and normalise what it returns to an :class:`ExtractionResult`."""
        output = self.fn(document, schema)
        if isinstance(output, ExtractionResult):
            return complete_result(output, schema)
        if not isinstance(output, Mapping):
            raise ExtractorError(
                f"extractor {self.name!r} returned {type(output).__name__}; "
                "return a dict of field name → value or an ExtractionResult"
            )
        values: dict[str, ExtractedValue | None] = {}
        for name in schema.names:
            raw_value = output.get(name)
            if raw_value is None or isinstance(raw_value, ExtractedValue):
                values[name] = raw_value
            else:
                values[name] = ExtractedValue(value=_checked_json(raw_value, name, self.name))
        extra = sorted(set(output) - set(schema.names))
        notes = (f"ignored keys outside the schema: {', '.join(map(str, extra))}",) if extra else ()
        return ExtractionResult(values=values, extractor=self.name, notes=notes)


def complete_result(result: ExtractionResult, schema: Schema) -> ExtractionResult:
    """The same result with exactly the schema's fields, in schema order (missing → ``None``)."""
    values = {name: result.values.get(name) for name in schema.names}
    if list(values.items()) == list(result.values.items()):
        return result
    return ExtractionResult(values=values, extractor=result.extractor, notes=result.notes)


def _checked_json(value: Any, field_name: str, extractor: str) -> JSONValue:
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ExtractorError(
            f"extractor {extractor!r} returned a value for {field_name!r} that is not JSON-able "
            f"({type(value).__name__}): {exc}"
        ) from exc
    return cast(JSONValue, value)
