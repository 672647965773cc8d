"""Till receipts: the shop's name, address and total read from a receipt's fixed layout.

A receipt opens with the shop's name (often with a legal form: "SDN BHD", "ENTERPRISE"),
its registration and tax ids, and the address lines down to the phone or "TAX INVOICE" line;
the amount paid follows a "TOTAL" label near the bottom, after any sub-totals and rounding.
OCR of such scans is noisy ("64. 15", "T0TAL"), so the readers here are more tolerant than the
labelled readers of :mod:`batchnb.extract.offline.extractor`. Every value points at its page span.
"""

from __future__ import annotations

import re

from batchnb.extract.offline.layout import Line, PageLines, line_value, span_value
from batchnb.extract.values import ValueMatch

HEAD_LINES = 8
"""Lines at the top of a receipt searched for the shop's name."""
ADDRESS_LINES = 5
"""Lines an address may span."""

LABEL_START = 12
"""A total's label opens its line ("GST included in total RM 1.19" is not the total)."""

_RECEIPT_WORD_LIST = (
    "cash", "change", "rounding", "gst", "receipt", "sdn", "bhd", "tunai", "baki", "cashier", "qty"
)  # fmt: skip
_RECEIPT_WORDS = re.compile(r"\b(?:" + "|".join(_RECEIPT_WORD_LIST) + r")\b", re.I)
_RECEIPT_WORDS_NEEDED = 3
# Non-ASCII letters that case-insensitive patterns match as ASCII ones (the long s, U+017F, as
# "s"): text holding one is not judged by its lowercase substrings.
_CASELESS_ASCII_LOOKALIKES = ("\u0130", "\u0131", "\u017f", "\u212a")
_SHOP_FORM = re.compile(
    r"(?<![\w.])(?:S(?:DN|ON|IN)\.?\s?BHD|BHD|S/B|ENTERPRISES?|TRADING|RESTAURANT|RESTORAN"
    r"|HARDWARE|\(M\)|MART|STATIONERY|BAKERIES|HOLDINGS)(?![\w])\.?",
    re.I,
)
_ID_LINE = re.compile(
    r"^\W*(?:(?:co\.?|company)[\s-]*(?:reg|no)\b|\d[\d/]*-?\s?[A-Z]?\W*$)"
    r"|\b(?:gst|reg)\b.*\d{6}",
    re.I,
)
_ADDRESS_STOP = re.compile(
    r"\b(?:tel|tei|phone|fax|h/?p|gst|tax|invoice|receipt|email|date|tarikh|cashier|www)\b"
    r"|@|\d{1,2}[/-]\d{1,2}[/-]\d{2,4}|\d{1,2}:\d{2}",
    re.I,
)
_POSTCODE = re.compile(r"(?<!\d)\d{5}(?!\d)")
_TOTAL = re.compile(r"\bT[O0]TA[L1I]\b|\bAMOUNT\s+DUE\b|\bJUMLAH\b", re.I)
_TOTAL_BEST = re.compile(
    r"\b(?:ROUND(?:ED|ING)?\s+T|GRAND|NETT?|FINAL|AFTER\s+ADJ|PAYABLE|AMOUNT\s+DUE)", re.I
)
_NOT_THE_TOTAL = re.compile(
    r"\b(?:SUB|QTY|QUANTITY|ITEMS?|DISCOUNTS?|SAVINGS?|EXCL\w*)"
    r"|\bSUB[\s-]?TOTAL|TOTAL\s+(?:GST|TAX|DISCOUNT|QTY|ITEM)",
    re.I,
)
_OCR_AMOUNT = re.compile(r"(?<![\d.,])(?P<int>\d{1,6})\s?[.,]\s?(?P<dec>\d{2})(?![\d%])")


def looks_like_receipt(text: str, lower: str | None = None) -> bool:
    """A till receipt: at least three receipt words ("CASH", "CHANGE", "GST", "SDN BHD"...).

    Most documents are not receipts and lack three of the words even as substrings of their
    lowercase text, which is much quicker to ask than the word pattern. ``lower`` may stand
    in for that text: any lowercase text holding every ASCII word of ``text.lower()`` (its
    folded distinct words, say), as only the pattern decides that a document is a receipt.
    """
    if not any(char in text for char in _CASELESS_ASCII_LOOKALIKES):
        lower = text.lower() if lower is None else lower
        if sum(word in lower for word in _RECEIPT_WORD_LIST) < _RECEIPT_WORDS_NEEDED:
            return False
    found = {word.lower() for word in _RECEIPT_WORDS.findall(text)}
    return len(found) >= _RECEIPT_WORDS_NEEDED


def receipt_company(page: PageLines) -> tuple[ValueMatch, int] | None:
    """The shop's name and the index of its last line.

    The first of the top lines with a shop form ("SDN BHD", "ENTERPRISE", "(M)") wins, joined
    with the line above when the form line only finishes the name ("POPULAR BOOK" / "CO. (M)
    SDN BHD"); else the first line in capitals that reads like a name.
    """
    head = page.lines[:HEAD_LINES]
    for index, line in enumerate(head):
        form = _SHOP_FORM.search(line.text)
        if form is None or not _name_like(line.text[: form.end()]):
            continue
        name = _without_registration(line)
        if name is None:
            continue
        before = words_before(line.text[: form.start()])
        if index and before <= 1 and _capital_name(page.lines[index - 1].text):
            first = line_value(page.lines[index - 1])
            return ValueMatch(f"{first.value} {name.value}", first.start, name.end), index
        return name, index
    for index, line in enumerate(head[:5]):
        if _capital_name(line.text):
            return line_value(line), index
    return None


def receipt_address(page: PageLines) -> ValueMatch | None:
    """The address lines under the shop's name, up to the phone, tax id or date line."""
    company = receipt_company(page)
    if company is None:
        return None
    lines: list[Line] = []
    for line in page.lines[company[1] + 1 :]:
        if _ID_LINE.search(line.text):
            if lines:
                break
            continue
        if _ADDRESS_STOP.search(line.text) or len(lines) == ADDRESS_LINES:
            break
        lines.append(line)
        if _POSTCODE.search(line.text):
            break
    if not lines:
        return None
    parts = [line_value(line) for line in lines]
    text = " ".join(str(part.value) for part in parts)
    return ValueMatch(text, parts[0].start, parts[-1].end)


def receipt_total(page: PageLines) -> ValueMatch | None:
    """The amount after the last "TOTAL" label, a rounded or grand total first.

    Sub-totals, item counts, tax and discount totals are skipped, and so are GST summary rows
    (two amounts on the line).
    """
    best: tuple[int, int, ValueMatch] | None = None
    for index, line in enumerate(page.lines):
        label = _TOTAL.search(line.text)
        if label is None or label.start() > LABEL_START or _NOT_THE_TOTAL.search(line.text):
            continue
        amounts = list(_OCR_AMOUNT.finditer(line.text, label.end()))
        if len(amounts) != 1:
            continue
        amount = amounts[0]
        currency = "MYR" if re.search(r"\bR[MH]\b", line.text) else None
        value = ValueMatch(
            {"amount": float(f"{amount['int']}.{amount['dec']}"), "currency": currency},
            line.start + amount.start(),
            line.start + amount.end(),
        )
        rank = 2 if _TOTAL_BEST.search(line.text) else 1
        if best is None or (rank, index) >= best[:2]:
            best = (rank, index, value)
    return best[2] if best is not None else None


def words_before(text: str) -> int:
    """Words of letters in ``text`` (the part of a line before its shop form)."""
    return len(re.findall(r"[A-Za-z]{2,}", text))


def _without_registration(line: Line) -> ValueMatch | None:
    """The line without a trailing registration number ("... SDN BHD (1248446-V)")."""
    cut = re.search(r"\s*\(?\s*(?:co\.?\s*(?:reg|no)\b|\d{4,}-?\s?[A-Z]\)?\s*$)", line.text, re.I)
    return span_value(line, 0, cut.start() if cut else len(line.text))


def _name_like(text: str) -> bool:
    letters = [char for char in text if char.isalpha()]
    return len(letters) >= 3 and sum(char.isdigit() for char in text) <= len(text) // 4


def _capital_name(text: str) -> bool:
    """A line in capitals with at least one real word: receipts print the shop's name so."""
    letters = [char for char in text if char.isalpha()]
    words = re.findall(r"[A-Za-z]{3,}", text)
    return (
        len(letters) >= 4
        and sum(char.isupper() for char in letters) >= 0.8 * len(letters)
        and len(letters) >= 0.6 * len(text.replace(" ", ""))
        and bool(words)
        and _ADDRESS_STOP.search(text) is None
        and not _TOTAL.search(text)
    )
