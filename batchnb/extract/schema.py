"""Schemas: the typed list of fields an extractor fills, built from a prompt or a dict.

A prompt in plain words ("invoice number, date, total") becomes a :class:`Schema` of
:class:`Field` rows, each with a snake_case name, the label as the user wrote it, and a type
inferred from its words. A parenthesis with several items makes an array of rows ("line items
(description, quantity)"); a label naming a well-known list ("line items", "products",
"transactions", see :data:`DEFAULT_ARRAYS`) makes one with default columns, because a user who
asks for "line items" means the rows, never one text. A schema can also be given as a dict:
``{"fields": [...]}`` or a JSON-Schema-like ``{"properties": {...}}``. The schema hash is part
of the result cache key, so it is computed from a canonical JSON form that does not depend on
dict order.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Literal, cast, get_args

from batchnb.errors import SchemaError
from batchnb.extract.words import fold, words_of

FieldType = Literal["string", "number", "money", "date", "boolean", "array"]
FIELD_TYPES: tuple[str, ...] = get_args(FieldType)

MAX_PROMPT_CHARS = 4000
"""Longest prompt accepted; longer text is almost certainly a pasted document, not a field list."""

_NAME_RE = re.compile(r"^[a-z_][a-z0-9_]*$")

# Words that open a request rather than name a field ("Please extract the ...").
_LEADING_WORDS = frozenset(
    {"please", "extract", "get", "find", "pull", "return", "give", "me", "show", "read", "capture"}
    | {"the", "a", "an", "all", "its", "their", "also", "then", "and", "out", "of"}
)
_TRAILING_PHRASE_RE = re.compile(
    r"\s+(?:from|in|of|for|on)\s+(?:the|this|that|each|every|these|all|a|an)\s+"
    r"(?:documents?|invoices?|receipts?|files?|pdfs?|pages?)\s*$",
    re.IGNORECASE,
)
_AND_RE = re.compile(r"\s+(?:and|&)\s+", re.IGNORECASE)
_BOOLEAN_OPENERS = frozenset({"is", "are", "was", "were", "has", "have", "does", "did", "can"})
_BOOLEAN_WORDS = frozenset({"paid", "signed", "approved"})
_DATE_WORDS = frozenset({"date", "dated", "issued", "day", "expiry", "expires", "birthday"})
_IDENTIFIER_TAILS = frozenset(
    {"number", "no", "nr", "num", "id", "code", "reference", "ref", "iban", "bic", "swift"}
)
_NUMBER_WORDS = frozenset(
    {"quantity", "qty", "count", "units", "hours", "rate", "percent", "percentage", "weight"}
)
_MONEY_WORDS = frozenset(
    {"total", "amount", "price", "subtotal", "tax", "balance", "cost", "fee", "fees", "charge"}
    | {"charges", "vat", "gst", "discount", "sum", "net", "gross", "payable"}
)

ITEM_COLUMNS: tuple[str, ...] = ("description", "quantity", "unit price", "amount")
"""Columns of a list of goods or services: what item tables print, and what
:mod:`batchnb.extract.tables` reads from their headers in four languages."""
TRANSACTION_COLUMNS: tuple[str, ...] = ("date", "description", "amount", "balance")
"""Columns of a list of bookings (a bank statement, a ledger)."""

# Labels are compared as folded words ("Opérations" is "operations"); German, French and Dutch
# names are here because the offline extractor reads documents in those languages too.
_ITEM_LISTS = (
    "line items", "items", "item list", "list of items", "invoice items", "order items",
    "invoice lines", "order lines", "lines", "products", "positions", "articles", "goods",
    "services", "positionen", "rechnungspositionen", "artikel", "posten", "leistungen",
    "produkte", "lignes", "lignes de facture", "produits", "prestations", "regels",
    "factuurregels", "artikelen", "producten", "diensten",
)  # fmt: skip
_TRANSACTION_LISTS = (
    "transactions", "account transactions", "bank transactions", "entries", "bookings",
    "movements", "buchungen", "umsatze", "kontobewegungen", "transaktionen", "operations",
    "mouvements", "ecritures", "transacties", "boekingen", "mutaties",
)  # fmt: skip
DEFAULT_ARRAYS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {label: ITEM_COLUMNS for label in _ITEM_LISTS}
    | {label: TRANSACTION_COLUMNS for label in _TRANSACTION_LISTS}
)
"""Labels (folded lowercase words) that make an array field without a parenthesis, and the
labels of the columns it gets. A parenthesis with several items still decides the columns."""


@dataclass(frozen=True)
class Field:
    """One field to extract.

    Parameters
    ----------
    name:
        snake_case identifier: the key of this field in results and exports.
    label:
        The words the user wrote ("Invoice No."); extractors look for them in the document.
    type:
        One of :data:`FIELD_TYPES`. ``array`` fields hold rows of ``fields``.
    description:
        Optional hint ("vendor name") from a parenthesis in the prompt or a JSON Schema.
    fields:
        Sub-fields of an ``array`` field (scalar types only); empty for every other type.
    """

    name: str
    label: str
    type: FieldType = "string"
    description: str = ""
    fields: tuple[Field, ...] = ()

    def __post_init__(self) -> None:
        if not _NAME_RE.match(self.name):
            raise SchemaError(
                f"field name {self.name!r} is not a snake_case identifier; "
                f"use e.g. {to_field_name(self.name) or 'field_1'!r}"
            )
        if self.type not in FIELD_TYPES:
            raise SchemaError(
                f"field {self.name!r} has unknown type {self.type!r}; "
                f"use one of {', '.join(FIELD_TYPES)}"
            )
        if self.type == "array":
            if not self.fields:
                raise SchemaError(f"array field {self.name!r} needs at least one sub-field")
            if any(sub.type == "array" for sub in self.fields):
                raise SchemaError(f"array field {self.name!r} cannot contain another array")
            _check_unique(self.fields, where=f"the items of {self.name!r}")
        elif self.fields:
            raise SchemaError(f"field {self.name!r} of type {self.type!r} cannot have sub-fields")

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form; ``description`` and ``fields`` appear only when set."""
        data: dict[str, Any] = {"name": self.name, "label": self.label, "type": self.type}
        if self.description:
            data["description"] = self.description
        if self.fields:
            data["fields"] = [sub.to_dict() for sub in self.fields]
        return data


@dataclass(frozen=True)
class Schema:
    """An ordered, duplicate-free tuple of fields."""

    fields: tuple[Field, ...]

    def __post_init__(self) -> None:
        if not self.fields:
            raise SchemaError("a schema needs at least one field")
        _check_unique(self.fields, where="the schema")

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(field.name for field in self.fields)

    def field(self, name: str) -> Field:
        """The field called ``name``; :class:`SchemaError` when there is none."""
        for candidate in self.fields:
            if candidate.name == name:
                return candidate
        raise SchemaError(f"no field {name!r} in the schema; fields: {', '.join(self.names)}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form, readable back with :meth:`from_dict`."""
        return {"fields": [field.to_dict() for field in self.fields]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Schema:
        """Inverse of :meth:`to_dict` (also accepts JSON-Schema-like dicts)."""
        return schema_from_dict(data)

    def hash(self) -> str:
        """sha256 hex digest of the canonical JSON form (stable across runs and dict order)."""
        return _schema_hash(self)


def to_field_name(label: str) -> str:
    """snake_case identifier for a label: ``"Invoice #"`` → ``"invoice_number"``.

    Accents are dropped ("Umsätze" → ``umsatze``, not ``ums_tze``).
    """
    text = fold(label).replace("ß", "ss").replace("#", " number ").replace("%", " percent ")
    text = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", text).lower()
    name = re.sub(r"[^a-z0-9]+", "_", text).strip("_")
    if name and name[0].isdigit():
        name = f"field_{name}"
    return name


def infer_type(label: str) -> FieldType:
    """Guess a field's type from the words of its label.

    "due date" → date; "total amount" → money; "quantity" → number; "invoice number" → string
    (an identifier, not a count); "paid?" or "is signed" → boolean; anything else → string.
    """
    lowered = label.strip().lower()
    words = re.findall(r"[a-z0-9]+|#", lowered)
    if not words:
        return "string"
    if lowered.endswith("?") or words[0] in _BOOLEAN_OPENERS or lowered in _BOOLEAN_WORDS:
        return "boolean"
    if _DATE_WORDS.intersection(words):
        return "date"
    counted = "number of" in " ".join(words)
    if not counted and words[-1] in _IDENTIFIER_TAILS | {"#"}:
        return "string"
    if counted or words[-1] in _NUMBER_WORDS:
        return "number"
    if _MONEY_WORDS.intersection(words) or any(word.endswith("total") for word in words):
        return "money"
    if "due" in words:
        return "date"
    return "string"


def default_columns(label: str) -> tuple[str, ...] | None:
    """The columns an array labelled ``label`` gets when none are listed, or ``None``.

    ``"Line items"`` → description, quantity, unit price, amount; ``"transactions"`` → date,
    description, amount, balance; ``"invoice number"`` → ``None`` (not a list).
    """
    return DEFAULT_ARRAYS.get(" ".join(words_of(label)))


@functools.lru_cache(maxsize=1024)
def _schema_hash(schema: Schema) -> str:
    # Schemas are immutable and every document of a batch hashes the same one.
    canonical = json.dumps(schema.to_dict(), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


@functools.lru_cache(maxsize=1024)
def schema_from_prompt(prompt: str) -> Schema:
    """Turn a prompt in plain words into a schema.

    Accepts lists such as ``"invoice number, date, total"``, ``"Extract the company name, date,
    address and total."`` or ``"invoice number; due date and total amount"``. Items split on
    commas, semicolons, newlines and "and"; a parenthesis with several items makes an array
    (``"line items (description, quantity, unit price)"``), one with a single phrase becomes the
    field's description (``"issuer (vendor name)"``). A label of :data:`DEFAULT_ARRAYS`
    ("line items", "transactions") without such a list is an array with default columns.

    Raises
    ------
    SchemaError
        The prompt is empty, longer than :data:`MAX_PROMPT_CHARS`, names no field, or names the
        same field twice.
    """
    if not isinstance(prompt, str) or not prompt.strip():
        raise SchemaError(
            "the prompt is empty; list the fields to extract, e.g. 'invoice number, date, total'"
        )
    if len(prompt) > MAX_PROMPT_CHARS:
        raise SchemaError(
            f"the prompt is {len(prompt)} characters long, over the limit of {MAX_PROMPT_CHARS}; "
            "list only the fields to extract, or pass a schema dict"
        )
    fields = tuple(_fields_from_items(_split_items(prompt.strip().rstrip(".!"))))
    if not fields:
        raise SchemaError(
            f"no fields found in the prompt {prompt.strip()[:80]!r}; "
            "list the fields to extract, e.g. 'invoice number, date, total'"
        )
    _check_unique(fields, where="the prompt")
    return Schema(fields)


def schema_from_dict(data: Mapping[str, Any]) -> Schema:
    """Build a schema from ``{"fields": [...]}`` or a JSON-Schema-like ``{"properties": {...}}``.

    ``fields`` entries are dicts with ``name`` and optional ``label``, ``type``, ``description``
    and ``fields`` (for arrays), or bare strings which are read like prompt items. JSON Schema
    properties map ``string`` (``format: date`` → date), ``number``/``integer``, ``boolean`` and
    ``array`` of ``object`` items; a property may also state ``"type": "money"`` or ``"date"``.
    """
    if not isinstance(data, Mapping):
        raise SchemaError(f"a schema dict is needed, got {type(data).__name__}")
    if "fields" in data:
        items = data["fields"]
        if not isinstance(items, list | tuple):
            raise SchemaError("'fields' must be a list of field dicts or names")
        return Schema(tuple(_field_from_entry(item) for item in items))
    if "properties" in data:
        properties = data["properties"]
        if not isinstance(properties, Mapping):
            raise SchemaError("'properties' must map field names to JSON Schema objects")
        return Schema(tuple(_field_from_property(name, spec) for name, spec in properties.items()))
    raise SchemaError(
        "a schema dict needs 'fields' (a list) or 'properties' (JSON Schema); "
        "e.g. {'fields': [{'name': 'total', 'type': 'money'}]}"
    )


def _check_unique(fields: Iterable[Field], where: str) -> None:
    seen: dict[str, str] = {}
    for field in fields:
        if field.name in seen:
            raise SchemaError(
                f"{where} names the field {field.name!r} twice ({seen[field.name]!r} and "
                f"{field.label!r}); give each field a distinct name, e.g. 'invoice date' and "
                "'due date'"
            )
        seen[field.name] = field.label


def _split_top_level(text: str, separators: str) -> list[str]:
    """Split on any character of ``separators`` outside parentheses."""
    parts: list[str] = []
    current: list[str] = []
    depth = 0
    for char in text:
        if char in "([":
            depth += 1
        elif char in ")]":
            depth = max(0, depth - 1)
        if depth == 0 and char in separators:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return parts


def _split_items(text: str) -> list[str]:
    items: list[str] = []
    for part in _split_top_level(text, ",;\n"):
        # " and " splits too, but only outside parentheses: mask them first.
        masked = re.sub(r"\([^()]*\)", lambda m: "\0" * len(m.group()), part)
        cut = 0
        for match in _AND_RE.finditer(masked):
            items.append(part[cut : match.start()])
            cut = match.end()
        items.append(part[cut:])
    return items


def _clean_item(item: str) -> str:
    text = " ".join(item.split()).strip(" .:-*•")
    text = _TRAILING_PHRASE_RE.sub("", text)
    words = text.split(" ")
    while len(words) > 1 and words[0].lower().rstrip(":") in _LEADING_WORDS:
        words.pop(0)
    if len(words) == 1 and words[0].lower() in _LEADING_WORDS:
        return ""
    return " ".join(words).strip(" .:")


def _fields_from_items(items: Iterable[str], *, in_array: bool = False) -> list[Field]:
    """Fields from prompt items; ``in_array``: they are columns, which cannot be arrays."""
    fields = []
    for item in items:
        match = re.match(r"^(?P<head>[^()]*?)\s*\((?P<inner>.*)\)\s*$", item.strip())
        head = match.group("head") if match else item
        label = _clean_item(head)
        name = to_field_name(label.rstrip("?"))
        if not name:
            continue
        inner: list[str] = []
        if match is not None:
            inner = [_clean_item(sub) for sub in _split_items(match.group("inner"))]
            inner = [sub for sub in inner if to_field_name(sub)]
        if len(inner) > 1:
            fields.append(Field(name, label, "array", fields=_sub_fields(inner)))
        else:
            hint = inner[0] if inner else ""
            fields.append(_unlisted(name, label, hint, in_array=in_array))
    return fields


def _sub_fields(labels: Iterable[str]) -> tuple[Field, ...]:
    return tuple(Field(to_field_name(label), label, infer_type(label)) for label in labels)


def _unlisted(name: str, label: str, description: str, *, in_array: bool) -> Field:
    """A field whose columns nobody listed: an array when its label names a known list."""
    columns = None if in_array else default_columns(label)
    if columns is None:
        return Field(name, label, infer_type(label), description=description)
    return Field(name, label, "array", description=description, fields=_sub_fields(columns))


def _field_from_entry(entry: Any, *, in_array: bool = False) -> Field:
    if isinstance(entry, str):
        fields = _fields_from_items([entry], in_array=in_array)
        if len(fields) != 1:
            raise SchemaError(f"cannot read a field from {entry!r}; give a dict with a 'name'")
        return fields[0]
    if not isinstance(entry, Mapping) or not (entry.get("name") or entry.get("label")):
        raise SchemaError(f"each field needs a 'name' (or 'label'), got {entry!r}")
    label = str(entry.get("label") or entry["name"])
    name = str(entry.get("name") or to_field_name(label))
    description = str(entry.get("description") or "")
    if not entry.get("type") and not entry.get("fields"):
        return _unlisted(name, label, description, in_array=in_array)
    field_type = str(entry.get("type") or infer_type(label))
    subs = tuple(_field_from_entry(sub, in_array=True) for sub in entry.get("fields") or ())
    return Field(name, label, _checked_type(field_type, name), description=description, fields=subs)


def _field_from_property(name: str, spec: Any) -> Field:
    if not isinstance(spec, Mapping):
        raise SchemaError(f"property {name!r} must be a JSON Schema object, got {spec!r}")
    label = str(spec.get("title") or name.replace("_", " "))
    description = str(spec.get("description") or "")
    json_type = spec.get("type", "string")
    if isinstance(json_type, list):  # ["string", "null"]: the non-null member decides
        json_type = next((t for t in json_type if t != "null"), "string")
    if json_type == "array":
        items = spec.get("items")
        if not isinstance(items, Mapping) or not isinstance(items.get("properties"), Mapping):
            raise SchemaError(
                f"array property {name!r} needs 'items' with 'properties' (an array of objects)"
            )
        subs = tuple(_field_from_property(k, v) for k, v in items["properties"].items())
        return Field(name, label, "array", description=description, fields=subs)
    if json_type == "string" and spec.get("format") in ("date", "date-time"):
        field_type = "date"
    elif json_type == "integer":
        field_type = "number"
    else:
        field_type = str(json_type)
    if field_type == "object":
        raise SchemaError(f"property {name!r} is a nested object; flatten it into fields")
    return Field(name, label, _checked_type(field_type, name), description=description)


def _checked_type(value: str, name: str) -> FieldType:
    if value not in FIELD_TYPES:
        raise SchemaError(
            f"field {name!r} has unknown type {value!r}; use one of {', '.join(FIELD_TYPES)}"
        )
    return cast(FieldType, value)
