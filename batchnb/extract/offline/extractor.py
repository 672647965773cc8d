"""The built-in offline extractor: labelled values found in the text, no network, no model.

For each field it looks for the field's label and its synonyms, in English, German, French and
Dutch (see :mod:`batchnb.extract.offline.labels`), at line starts or after whitespace, matching
without accents; then reads a typed value (see :mod:`batchnb.extract.values`) on the same line
after the label, or on the next non-empty line when the label ends its line. When several
labels match, the field's own labels beat its fallback concept's, then the most specific wins
("grand total" over "total"), then the first occurrence, or the last one for totals. A seller or
buyer label heading a section is followed by the party's name (see
:mod:`batchnb.extract.offline.parties`). A few fields fall back to a layout heuristic when no
label is printed: the first date, the largest amount with a currency, the issuer's name and the
address below the first line. Array fields are read from the page's tables (see
:mod:`batchnb.extract.tables`). Net, tax and gross amounts that do not add up are corrected
with the amount the document prints where the arithmetic points (see
:mod:`batchnb.extract.offline.totals`). Every value points at the exact span it was read from.

It is registered through the ``batchnb.extractors`` entry point like any plugin.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from batchnb.documents.parsed import ParsedDocument
from batchnb.documents.text import PDF_TABLES_VERSION
from batchnb.extract.base import ExtractedValue, ExtractionResult
from batchnb.extract.offline.labels import (
    DAY_FIRST_LANGUAGES,
    Concept,
    LabelVariant,
    document_language,
    neighbour_words,
)
from batchnb.extract.offline.layout import Line, PageLines, distinct_words, line_value
from batchnb.extract.offline.parties import issuer_line, party_below
from batchnb.extract.offline.plan import FieldPlan, KeywordPresence, ValueKind, plan_for
from batchnb.extract.offline.receipts import (
    looks_like_receipt,
    receipt_address,
    receipt_company,
    receipt_total,
)
from batchnb.extract.offline.totals import reconcile_totals
from batchnb.extract.registry import RegisterExtractor
from batchnb.extract.schema import Schema
from batchnb.extract.tables import items_from_tables
from batchnb.extract.values import (
    DateOrder,
    DateOrderSource,
    ValueMatch,
    best_money,
    date_order_hint,
    find_boolean,
    find_currencies,
    find_dates,
    find_identifier,
    find_money,
    find_numbers,
    find_text,
    iter_currencies,
)
from batchnb.extract.words import words_of

GAP_FACTOR = 0.85
"""The value is on the label's line but not right after it ("TOTAL DUE ON 3 May $4.11")."""
NEXT_LINE_FACTOR = 0.8
"""The value is on the line below the label."""
FALLBACK_CONFIDENCE = 0.4
"""No label: a layout heuristic (first date, largest amount, first line) found the value."""
RECEIPT_CONFIDENCE = 0.7
"""A till receipt's layout (name on top, "TOTAL" at the bottom) gave the value."""
MAX_BLOCK_LINES = 3
"""Lines an address may span."""

_SAME_LINE_SEPARATOR = re.compile(r"\**[ \t]*(?:[:=\t|]|-[ \t]| {2,})")
_NEXT_LABEL = re.compile(r"\s[A-Z][\w.#°/]*(?: [\w.#°/]+){0,2} ?:(?:\s|$)")
_NOT_A_NAME = frozenset(
    {"invoice", "receipt", "page", "date", "total", "statement", "order", "quotation", "bill"}
    | {"copy", "original", "paid", "payment", "tax", "details", "summary", "description"}
    | {"quantity", "qty", "price", "amount", "item", "items"}
)
_SEPARATOR_CHARS = " \t:=-#.|*"
_WORD = re.compile(r"\S+")
_NOT_AN_ADDRESS = re.compile(r"@|https?:|www\.|\b(?:tel|phone|fax|invoice|receipt)\b", re.I)


@dataclass(frozen=True)
class _Candidate:
    found: ExtractedValue
    strong: bool
    specificity: int
    position: tuple[int, int]
    tier: int = 1

    @property
    def rank(self) -> tuple[bool, int, int]:
        return (self.strong, self.tier, self.specificity)


class OfflineExtractor:
    """Finds labelled values in a document's text; needs no network and no API key.

    It keeps no state between documents, so one instance serves every worker thread.
    """

    name = "offline"
    # 2: tables' header rows found whatever the parser marked, an unnamed description column
    # found by its words, HTML tables, bank statements' dates and balances (results cached
    # under version 1 would keep their missing rows). 3: net + tax = gross reconciled with
    # an amount the document prints, unit prices with four decimals ("9,9000") read whole.
    # 4: description and amount columns chosen by their cells (see extract/tables.py).
    version = "4"
    needs = "nothing (no network, no API key)"

    def extract(self, document: ParsedDocument, schema: Schema) -> ExtractionResult:
        """Fill each field of ``schema`` from ``document``; fields not found are ``None``."""
        plan = plan_for(schema)
        texts = _text_layers(document)
        pairs = zip(document.pages, texts, strict=True)
        pages = [PageLines.of(page.number, text) for page, text in pairs]
        # A label whose first word the document lacks cannot match: those are never searched.
        lower = "\f".join(page.lower for page in pages)
        vocabulary = distinct_words(lower)
        signals = _Signals("\f".join(texts), vocabulary)
        present = plan.keywords_in(vocabulary)
        # A label's other words must be in the text too, where its lowercase matches the
        # patterns' case-insensitive reading letter for letter (see PageLines.lines_with).
        contains = None
        if len(lower) == sum(len(text) + 1 for text in texts) - 1 and "\u0131" not in lower:
            contains = functools.lru_cache(maxsize=None)(vocabulary.__contains__)
        values: dict[str, ExtractedValue | None] = {}
        notes: list[str] = []
        for field_plan in plan.fields:
            field = field_plan.field
            if field.type == "array":
                values[field.name] = items_from_tables(field, document.pages)
                if values[field.name] is None:
                    notes.append(f"no table with columns for {field.name!r} was found")
                continue
            found = None
            if field_plan.receipt_reader and signals.receipt:
                found = _receipt_field(field_plan, pages)
            # Only dates are read with the date order, and only an ambiguous one (03/04/2024)
            # asks for it: most documents never need it worked out.
            order = signals.date_order if field_plan.kind == "date" else None
            values[field.name] = found or _find_field(field_plan, pages, order, present, contains)
        reconcile_totals(plan.fields, values, pages)
        return ExtractionResult(values=values, extractor=self.name, notes=tuple(notes))


class _Signals:
    """Document-wide hints, each worked out on first use: a document without an ambiguous
    numeric date never needs the date order, and a schema without a shop name, address or
    total never asks whether the document is a receipt."""

    def __init__(self, text: str, vocabulary: str) -> None:
        self.text = text
        self.vocabulary = vocabulary  # its folded lowercase words, each once

    @functools.cached_property
    def receipt(self) -> bool:
        return looks_like_receipt(self.text, self.vocabulary)

    @functools.cached_property
    def order(self) -> DateOrder | None:
        order = date_order_hint(self.text)
        if order is None and (self.receipt or document_language(self.text) in DAY_FIRST_LANGUAGES):
            order = "dmy"  # the receipts these readers know (Malaysia, Europe) are day-first
        return order

    def date_order(self) -> DateOrder | None:
        """:attr:`order`, as a function for :func:`~batchnb.extract.values.find_dates`."""
        return self.order


def register(register_extractor: RegisterExtractor) -> None:
    """Entry point of the ``batchnb.extractors`` group: registers ``offline``."""
    register_extractor(OfflineExtractor.name, OfflineExtractor)


def _text_layers(document: ParsedDocument) -> list[str]:
    """Each page's text without the PDF tables appended to it (``parse_document(tables=True)``).

    Labelled values are read from the text layer only: the appended rendering repeats the
    table's words ("Total") and would move "last occurrence" picks into it.
    """
    if PDF_TABLES_VERSION not in document.parser:
        return [page.text for page in document.pages]
    return [
        page.text[: max(min(t.start for t in page.tables) - 2, 0)] if page.tables else page.text
        for page in document.pages
    ]


def _receipt_field(plan: FieldPlan, pages: list[PageLines]) -> ExtractedValue | None:
    """The shop's name, address or total read from a till receipt's layout (first page)."""
    concept, kind = plan.concept, plan.kind
    if concept is None or not pages:
        return None
    page = pages[0]
    found: ValueMatch | None = None
    if concept.name == "company" and kind == "text":
        company = receipt_company(page)
        found = company[0] if company is not None else None
    elif concept.name == "address" and kind == "text":
        found = receipt_address(page)
    elif concept.name in ("total", "amount_due") and kind in ("money", "amount"):
        found = receipt_total(page)
        if found is not None and kind == "amount" and isinstance(found.value, dict):
            found = ValueMatch(found.value["amount"], found.start, found.end)
    return None if found is None else _grounded(page, found, RECEIPT_CONFIDENCE)


def _find_field(
    plan: FieldPlan,
    pages: list[PageLines],
    order: DateOrderSource,
    present: KeywordPresence,
    contains: Callable[[str], bool] | None = None,
) -> ExtractedValue | None:
    """The best labelled value of a field, else its layout fallback.

    Only the variants whose first word is ``present`` in the document, and whose other words
    it ``contains`` (when given), are searched.

    The search stops early, without changing the result. A label's occurrences are read in
    the order the field picks from (first or last), and the first strong value ends that
    label's search: its other occurrences rank no higher and come after it in that order. The
    variants come most specific first, so once a strong value was found, variants of a lower
    (tier, specificity) can only give lower-ranked candidates and are not searched, and those
    of the same rank are searched only up to that value: past it they would lose the tie.
    """
    concept, kind = plan.concept, plan.kind
    backward = concept is not None and concept.pick == "last"
    candidates: list[_Candidate] = []
    strongest: tuple[int, int] | None = None
    bound: tuple[int, int] | None = None
    for variant in plan.variants:
        if strongest is not None and variant.order < strongest:
            break
        if not present[variant.keyword] or (
            contains is not None and not all(map(contains, variant.other_words))
        ):
            continue
        for candidate in _labelled(variant, plan, pages, order, backward, bound):
            candidates.append(candidate)
            if candidate.strong:
                # Variants come in falling order: after the first strong value, every variant
                # searched has its order, and a strong value found is nearer the pick's end.
                strongest, bound = variant.order, candidate.position
                break
    if candidates:
        best_key = max(c.rank for c in candidates)
        best = sorted(
            (c for c in candidates if c.rank == best_key),
            key=lambda c: c.position,
        )
        return best[-1 if concept is not None and concept.pick == "last" else 0].found
    return _fallback(concept, kind, pages, order)


def _labelled(
    variant: LabelVariant,
    plan: FieldPlan,
    pages: list[PageLines],
    order: DateOrderSource,
    backward: bool = False,
    bound: tuple[int, int] | None = None,
) -> Iterator[_Candidate]:
    """Values introduced by one label variant, wherever the label occurs, in page order (or
    from the end of the document with ``backward``), up to the position ``bound`` (page,
    offset; excluded going forward, included going backward: a later variant's value at the
    same place loses a tie for the first and wins it for the last).

    Only the lines holding the label's first word are matched (see
    :meth:`PageLines.lines_with`). A seller or buyer label alone on its line heads a section:
    the name is read from the section's lines (see
    :func:`batchnb.extract.offline.parties.party_below`).
    """
    concept, kind, party = plan.concept, plan.kind, plan.party
    for page in reversed(pages) if backward else pages:
        if bound is not None and (page.number < bound[0] if backward else page.number > bound[0]):
            continue
        indexes = page.lines_with(variant.keyword, word_start=not variant.compound)
        for index in reversed(indexes) if backward else indexes:
            line = page.line(index)
            if bound is not None and (
                (page.number, line.start + len(line.text)) < bound
                if backward
                else (page.number, line.start) >= bound
            ):
                break
            matches: Iterable[re.Match[str]] = variant.pattern.finditer(line.folded)
            if backward:
                matches = reversed(list(matches))
            for match in matches:
                position = (line.page, line.start + match.start())
                if bound is not None and (position < bound if backward else position >= bound):
                    break
                if concept is not None and _disqualified(concept, line.folded, match):
                    continue
                if party and _heading(line.text):
                    name = party_below(page, index)
                    found = (name, NEXT_LINE_FACTOR) if name is not None else None
                else:
                    found = _value_after(page, index, match.end(), kind, order)
                if found is None:
                    continue
                value, factor = found
                if concept is not None and concept.name == "address":
                    value = _extend_block(page, value)
                yield _Candidate(
                    found=_grounded(page, value, variant.confidence * factor),
                    strong=value.quality >= 0.8,
                    specificity=variant.specificity,
                    position=position,
                    tier=variant.tier,
                )


def _heading(text: str) -> bool:
    """A section heading: a few words, no digits, a colon only at the end ("Käufer/Empfänger")."""
    body = text.strip().rstrip(":").strip()
    return len(words_of(body)) <= 3 and ":" not in body and not any(c.isdigit() for c in body)


def _disqualified(concept: Concept, line: str, match: re.Match[str]) -> bool:
    before, after = neighbour_words(line, match.start(), match.end())
    return before in concept.not_after or after in concept.not_before


def _value_after(
    page: PageLines, index: int, label_end: int, kind: ValueKind, order: DateOrderSource
) -> tuple[ValueMatch, float] | None:
    """The value after a label, in page offsets: on the rest of its line, else on the next
    non-blank line. The float is the position factor of the confidence."""
    line = page.line(index)
    region = line.text[label_end:]
    cut = _NEXT_LABEL.search(region, _first_word_end(region))
    if cut is not None:
        region = region[: cut.start()]
    if any(char.isalnum() for char in region):
        if kind == "text" and not _SAME_LINE_SEPARATOR.match(region):
            return None  # "from" or "company" inside a sentence is not a label
        value = _read(kind, region, order, anchored=False)
        if value is None:
            return None
        gap = region[: value.start].strip(_SEPARATOR_CHARS)
        return _shifted(value, line.start + label_end), GAP_FACTOR if gap else 1.0
    if index + 1 >= page.line_count:
        return None
    below = page.line(index + 1)
    value = _read(kind, below.text, order, anchored=True)
    return (_shifted(value, below.start), NEXT_LINE_FACTOR) if value is not None else None


def _first_word_end(region: str) -> int:
    match = _WORD.search(region)
    return match.end() if match else 0


def _read(kind: ValueKind, text: str, order: DateOrderSource, anchored: bool) -> ValueMatch | None:
    """Read a value of ``kind`` from ``text``; ``anchored``: it must open the text."""
    matches: list[ValueMatch]
    if kind == "date":
        matches = find_dates(text, order)
    elif kind in ("money", "amount"):
        matches = find_money(text)
        best = best_money(matches)
        if best is not None and not anchored:
            matches = [best]
    elif kind == "number":
        matches = find_numbers(text)
    elif kind == "currency":
        matches = find_currencies(text)
    else:
        readers = {"boolean": find_boolean, "identifier": find_identifier, "text": find_text}
        single = readers[kind](text)
        matches = [single] if single is not None else []
    if not matches:
        return None
    value = matches[0]
    if anchored and text[: value.start].strip(_SEPARATOR_CHARS):
        return None
    if kind == "amount" and isinstance(value.value, dict):
        return ValueMatch(value.value["amount"], value.start, value.end, value.quality)
    return value


def _shifted(value: ValueMatch, offset: int) -> ValueMatch:
    return ValueMatch(value.value, value.start + offset, value.end + offset, value.quality)


def _grounded(page: PageLines, value: ValueMatch, confidence: float) -> ExtractedValue:
    """An extracted value pointing at ``page.text[value.start:value.end]``."""
    return ExtractedValue(
        value=value.value,
        raw=page.text[value.start : value.end],
        page=page.number,
        start=value.start,
        end=value.end,
        confidence=round(confidence * value.quality, 2),
    )


def _fallback(
    concept: Concept | None, kind: ValueKind, pages: list[PageLines], order: DateOrderSource
) -> ExtractedValue | None:
    """A layout heuristic, for the few fields where one is reliable enough to be worth showing."""
    if concept is None or not pages:
        return None
    found: ValueMatch | None = None
    page = pages[0]
    if concept.name == "date" and kind == "date":
        page, found = _first_match(pages, lambda text: find_dates(text, order))
    elif concept.name == "currency" and kind == "currency":
        page, found = _first_match(pages, iter_currencies)
    elif concept.name in ("total", "amount_due") and kind in ("money", "amount"):
        page, found = _largest_amount(pages, as_float=kind == "amount")
    elif concept.name == "company" and kind == "text":
        found = issuer_line(page)
    elif concept.name == "address" and kind == "text":
        name = _name_line(page)
        if name is not None:
            below = page.lines.index(name) + 1
            if below < len(page.lines) and _address_like(page.lines[below].text):
                found = _extend_block(page, line_value(page.lines[below]))
    return None if found is None else _grounded(page, found, FALLBACK_CONFIDENCE)


def _first_match(
    pages: list[PageLines], finder: Callable[[str], Iterable[ValueMatch]]
) -> tuple[PageLines, ValueMatch | None]:
    """The first value ``finder`` reads on any page; a lazy finder stops at the first."""
    for page in pages:
        first = next(iter(finder(page.text)), None)
        if first is not None:
            return page, first
    return pages[0], None


def _largest_amount(pages: list[PageLines], as_float: bool) -> tuple[PageLines, ValueMatch | None]:
    """The largest amount with a currency or decimals: on a receipt, almost always the total."""
    best: tuple[float, PageLines, ValueMatch] | None = None
    for page in pages:
        for money in find_money(page.text):
            if not isinstance(money.value, dict) or money.quality < 0.8:
                continue
            amount = float(money.value["amount"])
            if best is None or amount > best[0]:
                best = (amount, page, money)
    if best is None:
        return pages[0], None
    amount, page, money = best
    return page, ValueMatch(amount, money.start, money.end) if as_float else money


def _name_line(page: PageLines) -> Line | None:
    """The first of the opening lines that reads like a name: short, letters, no label."""
    for line in page.lines[:5]:
        text = line.text.strip()
        words = words_of(text)
        if (
            text[:1].isalpha()
            and 1 <= len(words) <= 8
            and len(text) <= 60
            and ":" not in text
            and sum(char.isdigit() for char in text) <= len(text) // 5
            and not _NOT_A_NAME.intersection(words)
        ):
            return line
    return None


def _extend_block(page: PageLines, first: ValueMatch) -> ValueMatch:
    """An address: the value's line and up to two lines below it that read like address lines.

    Only a value that runs to the end of its line continues below. The value joins the lines
    with ", "; the span covers them all, line breaks included.
    """
    index = page.line_index(first.start)
    line = page.line(index)
    if page.text[first.end : line.start + len(line.text)].strip():
        return first
    parts, end = [str(first.value)], first.end
    for line in page.lines[index + 1 : index + MAX_BLOCK_LINES]:
        if not _address_like(line.text):
            break
        value = line_value(line)
        parts.append(str(value.value))
        end = value.end
    return ValueMatch(", ".join(parts), first.start, end, first.quality)


def _address_like(text: str) -> bool:
    return ":" not in text and _NOT_AN_ADDRESS.search(text) is None
