"""What the offline extractor looks for, worked out once per schema.

Every document of a batch is extracted with the same schema, and much of what the extractor
decides per field depends on the schema alone: the concept a field stands for, how its value
is read, the labels to look for with their compiled patterns, whether a till receipt's layout
can give it, and the first words of all the labels, so that a document is asked once whether
it contains each. :func:`plan_for` works this out once and caches it by schema, so a document
costs only its own search. Equal schemas share one plan; a plan holds nothing about any
document, so threads share it too.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Literal

from batchnb.extract.offline.labels import (
    MONEY_CONCEPTS,
    Concept,
    LabelVariant,
    concept_for,
    label_variants,
)
from batchnb.extract.schema import Field, Schema
from batchnb.extract.words import words_of

ValueKind = Literal[
    "date", "money", "amount", "number", "boolean", "identifier", "text", "currency"
]

PARTY_CONCEPTS = frozenset({"company", "customer"})
"""Concepts whose label may head a section with the party's name below it."""

_IDENTIFIER_TAILS = frozenset({"number", "no", "nr", "#", "id"})


@dataclass(frozen=True)
class FieldPlan:
    """How one field is searched for.

    Parameters
    ----------
    field:
        The schema's field.
    concept:
        What the field stands for (see :mod:`batchnb.extract.offline.labels`), if known.
    kind:
        How its value is read (see :func:`value_kind`).
    variants:
        Labels to look for, most specific first (see
        :func:`~batchnb.extract.offline.labels.label_variants`); empty for array fields.
    receipt_reader:
        A till receipt's layout can give this field (shop name, address, total).
    """

    field: Field
    concept: Concept | None
    kind: ValueKind
    variants: tuple[LabelVariant, ...]
    receipt_reader: bool

    @property
    def party(self) -> bool:
        """A seller or buyer name: its label may head a section instead of preceding it."""
        return (
            self.concept is not None and self.concept.name in PARTY_CONCEPTS and self.kind == "text"
        )


@dataclass(frozen=True)
class SchemaPlan:
    """A schema's fields as :class:`FieldPlan` rows, and the first words of all their labels.

    ``keywords`` maps each label variant's first word to the longest other keyword inside it
    ("rechnung" in "rechnungsdatum"): a document without that one cannot contain this one,
    which spares most searches for the other languages' labels.
    """

    fields: tuple[FieldPlan, ...]
    keywords: dict[str, str | None]

    def keywords_in(self, lower: str) -> KeywordPresence:
        """Which keywords ``lower`` (a document's folded lowercase text) contains."""
        return KeywordPresence(lower, self.keywords)


class KeywordPresence(dict[str, bool]):
    """Whether a document's text contains each keyword (``presence[keyword]``), searched for
    on first question only: a dictionary, so a keyword asked about again costs a lookup.

    A field's search stops early (see the offline extractor), so many of a schema's keywords
    are never asked about; a keyword whose inner keyword is absent is absent without a search.
    """

    def __init__(self, lower: str, inner: dict[str, str | None]) -> None:
        super().__init__()
        self._lower = lower
        self._inner = inner

    def __missing__(self, keyword: str) -> bool:
        inner = self._inner.get(keyword)
        found = (inner is None or self[inner]) and keyword in self._lower
        self[keyword] = found
        return found


@functools.lru_cache(maxsize=256)
def plan_for(schema: Schema) -> SchemaPlan:
    """The search plan of ``schema``; cached, keyed by the schema's value."""
    fields = tuple(_field_plan(field) for field in schema.fields)
    keywords = sorted(
        dict.fromkeys(variant.keyword for plan in fields for variant in plan.variants), key=len
    )
    nested = {
        keyword: max(
            (inner for inner in keywords[:index] if len(inner) < len(keyword) and inner in keyword),
            key=len,
            default=None,
        )
        for index, keyword in enumerate(keywords)
    }
    return SchemaPlan(fields=fields, keywords=nested)


def _field_plan(field: Field) -> FieldPlan:
    concept = concept_for(field)
    kind = value_kind(field, concept)
    if field.type == "array":
        return FieldPlan(field, concept, kind, (), receipt_reader=False)
    reader = concept is not None and (
        (concept.name in ("company", "address") and kind == "text")
        or (concept.name in ("total", "amount_due") and kind in ("money", "amount"))
    )
    return FieldPlan(field, concept, kind, label_variants(field), reader)


def value_kind(field: Field, concept: Concept | None) -> ValueKind:
    """How a field's value is read: its type, refined by what the field stands for."""
    if field.type == "date":
        return "date"
    if field.type == "money":
        return "money"
    if field.type == "boolean":
        return "boolean"
    if field.type == "number":
        return "amount" if concept is not None and concept.name in MONEY_CONCEPTS else "number"
    if concept is not None and concept.name == "currency":
        return "currency"
    tail = (words_of(field.label) or [field.name])[-1]
    if (concept is not None and concept.identifier) or tail in _IDENTIFIER_TAILS:
        return "identifier"
    return "text"
