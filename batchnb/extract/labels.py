"""Which printed labels can introduce a field's value, and how to find them in a line.

A field is matched to a :class:`Concept` (invoice number, date, total, ...) from the words of
its label; the concept brings synonyms ("amount due", "balance due" for a total) and rules
that keep a label from matching the wrong thing ("total" right after "sub", "date" right after
"due"). :func:`label_variants` turns a field into the ordered list of labels to look for, each
with the confidence a match on it deserves.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Literal

from batchnb.extract.schema import Field

EXACT_CONFIDENCE = 0.9
"""A printed label containing every word of the user's own label."""
SYNONYM_CONFIDENCE = 0.75
"""A built-in synonym of the field's concept."""
HEAD_WORD_CONFIDENCE = 0.5
"""Only the last word of a multi-word label ("address" for "shipping address")."""

_IDENTIFIER_WORDS = frozenset({"number", "no", "nr", "num", "id", "#", "code", "ref", "reference"})
_GENERIC_WORDS = frozenset({"number", "no", "id", "name", "value", "the", "of", "amount", "date"})


@dataclass(frozen=True)
class Concept:
    """A kind of field that invoices and receipts print under well-known labels.

    Parameters
    ----------
    name:
        Identifier of the concept ("total").
    labels:
        Printed labels, lowercase.
    pick:
        Which occurrence wins when the same label appears several times: totals, subtotals
        and taxes are summed up last (after per-group subtotals), most other things come first.
    not_after, not_before:
        Words that disqualify a match when they come right before/after the label on the line.
    identifier:
        The value is a code with digits (INV-001), read as one token.
    """

    name: str
    labels: tuple[str, ...]
    pick: Literal["first", "last"] = "first"
    not_after: frozenset[str] = frozenset()
    not_before: frozenset[str] = frozenset()
    identifier: bool = False


CONCEPTS: dict[str, Concept] = {
    concept.name: concept
    for concept in (
        Concept(
            "invoice_number",
            (
                "invoice number", "invoice no", "invoice #", "invoice nr", "invoice num",
                "invoice id", "inv no", "inv #", "bill number", "bill no", "receipt number",
                "receipt no", "receipt #", "invoice",
            ),
            identifier=True,
        ),
        Concept(
            "order_number",
            ("order number", "order no", "order #", "order id", "po number", "purchase order"),
            identifier=True,
        ),
        Concept(
            "due_date",
            ("due date", "payment due", "date due", "due by", "pay by", "due"),
        ),
        Concept(
            "date",
            (
                "invoice date", "date of issue", "issue date", "date issued", "receipt date",
                "billing date", "issued", "dated", "date",
            ),
            not_after=frozenset(
                {"due", "delivery", "order", "ship", "shipping", "expiry", "expiration", "birth"}
                | {"start", "end", "service", "payment", "check", "departure", "arrival"}
            ),
        ),
        Concept(
            "subtotal",
            ("subtotal", "sub total", "sub-total", "net amount", "net total", "amount before tax"),
            pick="last",
        ),
        Concept(
            "tax",
            ("total tax", "tax amount", "sales tax", "vat amount", "tax", "vat", "gst"),
            pick="last",
            not_after=frozenset({"excl", "excluding", "incl", "including", "before", "after"}),
            not_before=frozenset(
                {"id", "number", "no", "rate", "reg", "registration", "code", "invoice", "exempt"}
            ),
        ),
        Concept(
            "total",
            (
                "grand total", "total due", "amount due", "balance due", "total amount",
                "invoice total", "amount payable", "total payable", "total",
            ),
            pick="last",
            not_after=frozenset({"sub"}),
            not_before=frozenset(
                {"tax", "vat", "gst", "excl", "excluding", "before", "net", "items", "item"}
                | {"quantity", "qty", "weight", "discount", "savings", "hours", "pages"}
            ),
        ),
        Concept(
            "company",
            (
                "company name", "company", "vendor", "seller", "supplier", "sold by", "issuer",
                "merchant", "from",
            ),
        ),
        Concept("customer", ("bill to", "billed to", "customer name", "customer", "sold to")),
        Concept("address", ("address",)),
        Concept("currency", ("currency",)),
    )
}  # fmt: skip

MONEY_CONCEPTS = frozenset({"total", "subtotal", "tax"})


@dataclass(frozen=True)
class LabelVariant:
    """One label to look for, its precompiled pattern and the confidence a match deserves."""

    text: str
    confidence: float
    pattern: re.Pattern[str]
    keyword: str
    """Lowercase first word: text without it cannot match (a cheap test before the regex)."""

    @property
    def specificity(self) -> int:
        """More words = more specific: "grand total" beats "total"."""
        return len(self.text.split())


def words_of(text: str) -> list[str]:
    """Lowercase words of a label; ``#`` counts as a word ("invoice #")."""
    return re.findall(r"[a-z0-9]+|#", text.lower())


def concept_for(field: Field) -> Concept | None:
    """The concept a field stands for, judged from the words of its label, name and hint."""
    for text in (field.label, field.name.replace("_", " "), field.description):
        words = set(words_of(text))
        concept = _concept_from_words(words, field.type) if words else None
        if concept is not None:
            return concept
    return None


def _concept_from_words(words: set[str], field_type: str) -> Concept | None:
    identifier = bool(words & _IDENTIFIER_WORDS)
    money_like = field_type in ("money", "number")
    rules: tuple[tuple[str, bool], ...] = (
        ("invoice_number", bool(words & {"invoice", "inv", "bill", "receipt"}) and identifier),
        ("invoice_number", words == {"invoice"}),
        ("order_number", "order" in words and identifier),
        ("due_date", "due" in words and field_type in ("date", "string")),
        ("date", field_type == "date" and bool(words & {"date", "issued", "dated"})),
        (
            "subtotal",
            (money_like and bool(words & {"subtotal", "untaxed", "net"}))
            or {"sub", "total"} <= words
            or {"before", "tax"} <= words,
        ),
        ("tax", money_like and bool(words & {"tax", "vat", "gst"}) and not identifier),
        (
            "total",
            money_like
            and bool(words & {"total", "amount", "grand", "balance", "due", "payable", "sum"}),
        ),
        (
            "company",
            bool(words & {"company", "vendor", "seller", "supplier", "issuer", "merchant"})
            or words & {"store", "shop", "business"} == words,
        ),
        ("customer", bool(words & {"customer", "buyer", "client"})),
        ("address", "address" in words),
        ("currency", "currency" in words),
    )
    return next((CONCEPTS[name] for name, matched in rules if matched), None)


@functools.lru_cache(maxsize=1024)
def label_variants(field: Field) -> tuple[LabelVariant, ...]:
    """Labels to look for, most specific first: the user's label, its concept's synonyms,
    the field description, and for unknown multi-word labels their head word.

    Cached: every document of a batch asks for the same fields, and compiling the patterns
    cost more than searching with them.
    """
    user_label = " ".join(words_of(field.label.rstrip("?"))) or field.name.replace("_", " ")
    user_words = set(user_label.split())
    concept = concept_for(field)
    texts = [user_label, field.name.replace("_", " ")]
    if field.description and len(field.description.split()) <= 4:
        texts.append(" ".join(words_of(field.description)))
    if concept is not None:
        texts.extend(concept.labels)
    variants: dict[str, float] = {}
    for text in texts:
        text = text.strip()
        if text and text not in variants:
            exact = user_words <= set(words_of(text)) or text == user_label
            variants[text] = EXACT_CONFIDENCE if exact else SYNONYM_CONFIDENCE
    head = user_label.split()[-1] if user_label else ""
    if concept is None and len(user_words) > 1 and head not in _GENERIC_WORDS | variants.keys():
        variants[head] = HEAD_WORD_CONFIDENCE
    ordered = sorted(variants.items(), key=lambda item: -len(item[0].split()))
    return tuple(
        LabelVariant(text, conf, label_pattern(text), text.split()[0]) for text, conf in ordered
    )


def label_pattern(label: str) -> re.Pattern[str]:
    """Case-insensitive pattern for a label at a line start or after whitespace.

    Words may be separated by spaces, dots, dashes or nothing ("Inv. No.", "sub-total"); the
    label must not run on into a longer word ("total" does not match "totally").
    """
    words = [re.escape(word) for word in label.split()]
    body = r"\.?(?:[ \t]*[-_]?[ \t]*)".join(words)
    return re.compile(r"(?:^|(?<=[\s(\[|*]))" + body + r"\.?(?![A-Za-z0-9])", re.IGNORECASE)


def neighbour_words(line: str, start: int, end: int) -> tuple[str, str]:
    """The word right before ``line[start:end]`` and the word right after it, lowercase."""
    before = re.findall(r"[A-Za-z0-9]+", line[:start])
    after = re.search(r"[A-Za-z0-9%]+", line[end:])
    return (before[-1].lower() if before else "", after.group().lower() if after else "")
