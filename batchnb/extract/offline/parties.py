"""Who issued a document and who receives it: names read from the page layout.

Two readers, both grounded in the page text:

* :func:`party_below` reads the name under a section heading ("Verkäufer", "Bill to",
  "Adresse de livraison"): a ``Name:`` line if the section has one, else the first line that
  reads like a name, skipping ``Key: value`` lines and numbers (customer numbers, GLNs).
* :func:`issuer_line` guesses the issuer when no label names it: the first line of the first
  page that carries a legal form (GmbH, SARL, B.V., Inc ...), else the first line that reads
  like a name and is not a document title, page number, date or address.
"""

from __future__ import annotations

import re

from batchnb.extract.offline.layout import Line, PageLines, line_value, span_value
from batchnb.extract.values import ValueMatch
from batchnb.extract.words import fold, words_of

SECTION_LINES = 7
"""Lines below a section heading searched for the party's name."""
ISSUER_LINES = 40
"""Lines of the first page searched for a name with a legal form."""

LEGAL_FORM = re.compile(
    r"(?<![\w.])(?:GmbH|AG|KG|OHG|UG|e\.\s?K\.|a\.\s?G\.|SARL|S\.A\.R\.L\.|SAS|SASU|SA|EURL"
    r"|B\.\s?V\.?|BV|N\.\s?V\.?|Ltd|Limited|Inc|LLC|LLP|PLC|Corp|Corporation|Pvt"
    r"|S\.?p\.?A|S\.?r\.?l|Sdn\.?\s?Bhd|Oy|AB|ApS|A/S)(?![\w])\.?",
)
"""Company legal forms: a line carrying one is very likely a company name."""

_NAME_KEY = re.compile(
    r"^\s*(?:name|firma|firmenname|nom|raison sociale|naam|bedrijf)\s*:\s*", re.I
)
_SALUTATION = frozenset({"herrn", "herr", "frau", "mr", "mrs", "ms", "m", "mme", "dhr", "mevr"})
_SEGMENT_BREAK = re.compile(r"\s+[-\u2013\u2014\u25cf\u2022|\u00b7]\s+|\t| {3,}")
_NOT_A_NAME = frozenset(
    {"invoice", "receipt", "page", "date", "total", "statement", "order", "quotation", "bill"}
    | {"copy", "original", "paid", "payment", "tax", "details", "summary", "description"}
    | {"quantity", "qty", "price", "amount", "item", "items"}
    | {"rechnung", "handelsrechnung", "gutschrift", "seite", "datum", "beispiel", "menge"}
    | {"facture", "avoir", "devis", "adresse", "livraison", "facturation", "client"}
    | {"factuur", "pagina", "bladzijde", "stylesheet", "rechnungen"}
)
_PAGE_MARK = re.compile(r"\b(?:seite|page|pagina|blatt)\s*\d", re.I)


def party_below(page: PageLines, index: int) -> ValueMatch | None:
    """The party name in the lines under the section heading ``page.lines[index]``."""
    below = page.lines[index + 1 : index + 1 + SECTION_LINES]
    for offset, line in enumerate(below):
        key = _NAME_KEY.match(line.folded)
        if key is not None:
            value = span_value(line, key.end(), len(line.text))
            if value is not None:
                return value
            return _name_block(below[offset + 1 :])
        if ":" in line.text or _digit_heavy(line.text):
            continue
        return _name_block(below[offset:])
    return None


def issuer_line(page: PageLines) -> ValueMatch | None:
    """The issuer's name on a first page without a seller label (see the module docstring)."""
    for line in page.lines[:ISSUER_LINES]:
        segment = _first_segment(line)
        if (
            segment is not None
            and LEGAL_FORM.search(str(segment.value))
            and _name_like(str(segment.value), allow_legal_words=True)
        ):
            return segment
    for line in page.lines[:5]:
        segment = _first_segment(line)
        if segment is not None and _name_like(str(segment.value)):
            return segment
    return None


def _name_block(lines: tuple[Line, ...]) -> ValueMatch | None:
    """The name opening ``lines``, continued on the next line after a salutation ("Herrn")
    or when the next line finishes it with a legal form ("Musterhafter / Verein a.G.")."""
    if not lines or not _name_like(lines[0].text):
        return None
    first = line_value(lines[0])
    if len(lines) < 2:
        return first
    following = lines[1].text.strip()
    salutation = words_of(str(first.value)) and words_of(str(first.value))[0] in _SALUTATION
    finishes = LEGAL_FORM.search(following) and not LEGAL_FORM.search(str(first.value))
    if (
        (salutation or finishes)
        and ":" not in following
        and not any(c.isdigit() for c in following)
    ):
        second = line_value(lines[1])
        return ValueMatch(f"{first.value} {second.value}", first.start, second.end)
    return first


def _first_segment(line: Line) -> ValueMatch | None:
    """The line up to a wide gap or a " - " / " ● " separator ("Acme SARL - 12 rue ...")."""
    cut = _SEGMENT_BREAK.search(line.text.strip())
    offset = len(line.text) - len(line.text.lstrip())
    end = offset + cut.start() if cut else len(line.text)
    return span_value(line, 0, end)


def _name_like(text: str, allow_legal_words: bool = False) -> bool:
    text = text.strip()
    words = words_of(text)
    if not text[:1].isalpha() or not 1 <= len(words) <= 8 or len(text) > 60:
        return False
    if ":" in text or "@" in text or "http" in text.lower() or "www." in text.lower():
        return False
    if _digit_heavy(text) or _PAGE_MARK.search(text):
        return False
    return allow_legal_words or not _NOT_A_NAME.intersection(words_of(fold(text)))


def _digit_heavy(text: str) -> bool:
    return sum(char.isdigit() for char in text) > len(text.strip()) // 5
