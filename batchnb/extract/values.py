"""Typed parsing of values found in text: dates, money, numbers, booleans, identifiers, text.

Each ``find_*`` function scans a piece of text and returns :class:`ValueMatch` rows with the
typed value and the exact span it was read from, so extractors can ground every value in the
page. The ``parse_*`` functions are the one-value conveniences built on them.

Conventions: dates become ISO ``YYYY-MM-DD``; money becomes ``{"amount": float, "currency":
ISO code or None}``; in amounts, the last ``.`` or ``,`` followed by one or two digits is the
decimal mark and a separator followed by exactly three digits groups thousands. Four to six
digits after the last separator cannot be a thousands group: they are decimals too, as unit
prices print them ("9,9000", "0.4375").
"""

from __future__ import annotations

import bisect
import datetime as dt
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Literal

from batchnb.extract.base import JSONValue

DateOrder = Literal["dmy", "mdy"]
DateOrderSource = DateOrder | Callable[[], DateOrder | None] | None
"""A date order, or a function giving it when a date first needs it (see :func:`find_dates`)."""

MONTHS: dict[str, int] = {
    name: number
    for number, names in enumerate(
        (
            ("jan", "january", "januar", "janvier", "januari", "jänner", "jän"),
            ("feb", "february", "februar", "février", "fevrier", "févr", "fev", "februari"),
            ("mar", "march", "märz", "maerz", "mär", "mars", "maart", "mrt"),
            ("apr", "april", "avril", "avr"),
            ("may", "mai", "mei"),
            ("jun", "june", "juni", "juin"),
            ("jul", "july", "juli", "juillet", "juil"),
            ("aug", "august", "août", "aout", "augustus"),
            ("sep", "sept", "september", "septembre"),
            ("oct", "october", "oktober", "okt", "octobre"),
            ("nov", "november", "novembre"),
            ("dec", "december", "dezember", "dez", "décembre", "decembre", "déc"),
        ),
        start=1,
    )
    for name in names
}
"""Month names and abbreviations in English, German, French and Dutch, lowercase."""

CURRENCY_SYMBOLS: dict[str, str] = {
    "US$": "USD",
    "$": "USD",
    "€": "EUR",
    "£": "GBP",
    "¥": "JPY",
    "₹": "INR",
    "Rs": "INR",
    "Rs.": "INR",
    "RM": "MYR",
}
CURRENCY_CODES: frozenset[str] = frozenset(
    {
        "USD", "EUR", "GBP", "JPY", "INR", "CHF", "CAD", "AUD", "NZD", "SEK", "NOK", "DKK", "PLN",
        "CZK", "HUF", "MYR", "SGD", "HKD", "CNY", "ZAR", "BRL", "MXN", "RUB", "AED", "SAR", "KRW",
        "IDR", "THB", "PHP", "VND", "ILS", "RON", "BGN",
    }
)  # fmt: skip

BOOLEANS: dict[str, bool] = {
    "yes": True,
    "y": True,
    "true": True,
    "paid": True,
    "x": True,
    "✓": True,
    "✔": True,
    "no": False,
    "n": False,
    "false": False,
    "unpaid": False,
    "✗": False,
}


@dataclass(frozen=True)
class ValueMatch:
    """A typed value and the span of the text it came from.

    ``quality`` is 1.0 for a clean read and lower when the read is a guess (an ambiguous date
    order, an amount without currency or decimals); extractors fold it into the confidence.
    """

    value: JSONValue
    start: int
    end: int
    quality: float = 1.0


_YEAR = r"(?P<y>\d{4}|\d{2})"
# The date patterns open with a digit and check the character before it right after it
# ("\d(?<![\d.]\d)" is "(?<![\d.])\d"): a pattern opening with a look-behind is tried at every
# position of the text, one opening with a digit only where there is a digit.
_ISO_DATE = re.compile(r"(?P<y>\d(?<![\d.]\d)\d{3})([-/.])(?P<m>\d{1,2})\2(?P<d>\d{1,2})(?![\d])")
_NUMERIC_DATE = re.compile(
    r"(?P<a>\d(?<![\d./-]\d)\d?)(?P<sep>[./-])(?P<b>\d{1,2})(?P=sep)" + _YEAR + r"(?![\d])"
)
_MONTH_NAME = r"(?P<mon>[^\W\d_]{3,9})"
_DAY_MONTH_DATE = re.compile(
    r"(?P<d>\d(?<!\w\d)\d?)(?:st|nd|rd|th|er)?[ \t\u00a0.\-/]*"
    + _MONTH_NAME
    + r"\.?[ \t\u00a0.\-/,]*"
    + _YEAR
    + r"(?![\d])"
)
_MONTH_DAY_DATE = re.compile(
    r"(?<![\w])" + _MONTH_NAME + r"\.?[ \t]+(?P<d>\d{1,2})(?:st|nd|rd|th)?[ \t]*,?[ \t]*"
    r"(?P<y>\d{4})(?![\d])"
)

_AMOUNT = re.compile(
    r"(?<![\w.,/])(?P<sign>[-\u2212])?"
    r"(?:(?P<grouped>\d{1,3}(?:[,.'\u2019\u00a0\u202f]\d{3})+)(?P<gdec>[.,](?:\d{1,2}|\d{4,6}))?"
    r"|(?<![\d%] )(?P<spaced>\d{1,3}(?: \d{3})+)(?P<sdec>[.,](?:\d{1,2}|\d{4,6}))"
    r"|(?P<plain>\d+)(?P<pdec>[.,](?:\d{1,2}|\d{4,6}))?)"
    r"(?![\d])"
)
_CURRENCY_BEFORE = re.compile(
    r"(?:(?P<sym>US\$|[$€£¥₹])|\b(?P<code>Rs\.?|RM|[A-Z]{3}))[ \t\u00a0]*$"
)
_CURRENCY_AFTER = re.compile(r"^[ \t\u00a0]*(?:(?P<sym>[$€£¥₹])|(?P<code>[A-Z]{3}|Rs)\b)")
_SIGN_BEFORE = re.compile(r"[-\u2212][ \t]*$")
_GROUPING = str.maketrans("", "", ",.'\u2019 \u00a0\u202f")
_AMOUNT_NEXT = re.compile(r"[ \t\u00a0]*[-\u2212]?\d")
_CURRENCY = re.compile(r"(?P<sym>US\$|[$€£¥₹])|\b(?P<code>[A-Z]{3}|Rs\.?|RM)\b")
_IDENTIFIER = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9\-/._#]*[A-Za-z0-9])?")
_LEADING_SEPARATORS = re.compile(r"^(?:[^\S\r\n]*[:#=\-\u2013.|*])*[^\S\r\n]*")
# Where a text value ends: a tab, a wide gap, a table cell border, or the next "Label:".
_TEXT_END = re.compile(
    r"\t| {2,}| ?[|*]{1,2}(?:\s|$)|\s(?=[A-Z][\w.#°/]*(?: [\w.#°/]+){0,2} ?:(?:\s|$))"
)


def find_dates(text: str, order: DateOrderSource = None) -> list[ValueMatch]:
    """Every date in ``text``, in order: ISO, numeric (d/m/y or m/d/y), and with month names.

    ``order`` settles numeric dates like 03/04/2024 where both readings are valid; without it
    they are read day-first with a lower quality. A dotted date (15.03.2024) is always day-first.
    ``order`` may be a function: it is called only when such a date is met, so a caller need
    not work out a whole document's order (:func:`date_order_hint`) for text without one.
    """
    found: list[ValueMatch] = []
    for match in _ISO_DATE.finditer(text):
        _add_date(found, match, int(match["y"]), int(match["m"]), int(match["d"]))
    for match in _NUMERIC_DATE.finditer(text):
        a, b, year = int(match["a"]), int(match["b"]), _full_year(match["y"])
        if callable(order) and a <= 12 and b <= 12 and a != b and match["sep"] != ".":
            order = order()
        if a > 12 or (b <= 12 and (a == b or match["sep"] == "." or order != "mdy")):
            quality = 1.0 if a > 12 or a == b or match["sep"] == "." or order else 0.8
            _add_date(found, match, year, b, a, quality)
        else:
            _add_date(found, match, year, a, b, 1.0 if b > 12 or order else 0.8)
    for match in _DAY_MONTH_DATE.finditer(text):
        month = MONTHS.get(match["mon"].lower())
        if month:
            _add_date(found, match, _full_year(match["y"]), month, int(match["d"]))
    for match in _MONTH_DAY_DATE.finditer(text):
        month = MONTHS.get(match["mon"].lower())
        if month:
            _add_date(found, match, int(match["y"]), month, int(match["d"]))
    return _without_overlaps(found)


def date_order_hint(text: str) -> DateOrder | None:
    """Whether the numeric dates of a document are day-first or month-first, if it shows.

    Counts the dates that can only be read one way (15/03/2024 vs 03/15/2024); a document that
    writes one unambiguous date month-first probably writes all its dates that way. Dotted
    dates do not count: :func:`find_dates` reads them day-first whatever the order, and a
    dotted number that is no date ("2.13.12", a code or a price) must not tip it.
    """
    dmy = mdy = 0
    for match in _NUMERIC_DATE.finditer(text):
        if match["sep"] == ".":
            continue
        a, b = int(match["a"]), int(match["b"])
        dmy += a > 12 >= b
        mdy += b > 12 >= a
    if dmy == mdy:
        return None
    return "dmy" if dmy > mdy else "mdy"


def find_money(text: str) -> list[ValueMatch]:
    """Every amount in ``text`` with its currency when one is written next to it.

    Amounts inside dates and percentages are skipped. Quality: 1.0 with a currency marker,
    0.8 with decimals only, 0.6 for a bare integer.
    """
    dates = find_dates(text)  # sorted and disjoint
    date_starts = [date.start for date in dates]
    found = []
    for match in _AMOUNT.finditer(text):
        start, end = match.span()
        if text[end : end + 1] == "%":
            continue
        previous = bisect.bisect_left(date_starts, end) - 1  # the last date starting before end
        if previous >= 0 and dates[previous].end > start:
            continue
        amount = _amount_value(match)
        before = _CURRENCY_BEFORE.search(text, max(0, start - 6), start)
        currency = _currency(before) if before else None
        if before and currency:
            start = before.start()
            sign = _SIGN_BEFORE.search(text, max(0, start - 2), start)
            if sign and amount > 0:
                amount, start = -amount, start - len(sign.group())
        else:
            after = _CURRENCY_AFTER.match(text[end : end + 6])
            currency = _currency(after) if after else None
            # "2015 € 9,32": a symbol between two numbers belongs to the one it precedes.
            if after and currency and not _AMOUNT_NEXT.match(text, end + after.end()):
                end += after.end()
            else:
                currency = None
        decimals = any(match[group] for group in ("gdec", "sdec", "pdec"))
        quality = 1.0 if currency else 0.8 if decimals or match["grouped"] else 0.6
        found.append(ValueMatch({"amount": amount, "currency": currency}, start, end, quality))
    return found


def find_numbers(text: str) -> list[ValueMatch]:
    """Every number in ``text`` (thousands separators and decimal commas understood)."""
    return [
        ValueMatch(_amount_value(match), match.start(), match.end())
        for match in _AMOUNT.finditer(text)
    ]


def find_currencies(text: str) -> list[ValueMatch]:
    """Every currency symbol or ISO code in ``text``, as ISO codes ("$" → "USD")."""
    return list(iter_currencies(text))


def iter_currencies(text: str) -> Iterator[ValueMatch]:
    """:func:`find_currencies` one at a time: who wants the first one reads no further."""
    for match in _CURRENCY.finditer(text):
        code = _currency(match)
        if code is not None:
            yield ValueMatch(code, match.start(), match.end())


def find_boolean(text: str) -> ValueMatch | None:
    """A yes/no word at the start of ``text`` (yes, no, true, false, paid, unpaid, ✓ ...)."""
    offset = _LEADING_SEPARATORS.match(text)
    pattern = r"(?P<word>[A-Za-z]+|[✓✔✗])(?![A-Za-z])"
    match = re.compile(pattern).match(text, offset.end() if offset else 0)
    if match is None or match["word"].lower() not in BOOLEANS:
        return None
    return ValueMatch(BOOLEANS[match["word"].lower()], match.start("word"), match.end("word"))


def find_identifier(text: str) -> ValueMatch | None:
    """The first token of ``text`` when it looks like an identifier (has a digit): INV-001."""
    offset = _LEADING_SEPARATORS.match(text)
    start = offset.end() if offset else 0
    match = _IDENTIFIER.match(text, start)
    if match is None or not any(char.isdigit() for char in match.group()):
        return None
    token = match.group()
    if any(date.start == 0 and date.end == len(token) for date in find_dates(token)):
        return None  # "8-9-2022" after "Invoice" is the invoice date, not its number
    return ValueMatch(match.group(), match.start(), match.end())


def find_text(text: str) -> ValueMatch | None:
    """The text value at the start of ``text``, up to a tab, a wide gap or the next label."""
    offset = _LEADING_SEPARATORS.match(text)
    start = offset.end() if offset else 0
    stop = _TEXT_END.search(text, start)
    end = stop.start() if stop else len(text)
    value = text[start:end].rstrip(" ,;|*")
    if not any(char.isalnum() for char in value):
        return None
    return ValueMatch(value, start, start + len(value))


def parse_date(text: str, order: DateOrderSource = None) -> str | None:
    """The first date in ``text`` as ISO ``YYYY-MM-DD``, or ``None``."""
    found = find_dates(text, order)
    return str(found[0].value) if found else None


def parse_money(text: str) -> dict[str, float | str | None] | None:
    """The best amount in ``text`` (currency-marked first) as ``{"amount", "currency"}``."""
    best = best_money(find_money(text))
    return dict(best.value) if best is not None and isinstance(best.value, dict) else None


def parse_number(text: str) -> float | None:
    """The first number in ``text``, or ``None``."""
    found = find_numbers(text)
    return float(found[0].value) if found and isinstance(found[0].value, float) else None


def best_money(candidates: Iterable[ValueMatch]) -> ValueMatch | None:
    """The most amount-like candidate; the last one wins ties (totals sit right-most)."""
    best = None
    for candidate in candidates:
        if best is None or candidate.quality >= best.quality:
            best = candidate
    return best


def _full_year(text: str) -> int:
    year = int(text)
    if len(text) == 2:
        year += 2000 if year < 70 else 1900
    return year


def _add_date(
    found: list[ValueMatch],
    match: re.Match[str],
    year: int,
    month: int,
    day: int,
    quality: float = 1.0,
) -> None:
    try:
        value = dt.date(year, month, day)
    except ValueError:
        return
    if 1900 <= value.year <= 2100:
        found.append(ValueMatch(value.isoformat(), match.start(), match.end(), quality))


def _without_overlaps(found: list[ValueMatch]) -> list[ValueMatch]:
    """Keep the earliest, then longest, of overlapping matches."""
    kept: list[ValueMatch] = []
    for candidate in sorted(found, key=lambda m: (m.start, -(m.end - m.start))):
        if not kept or candidate.start >= kept[-1].end:
            kept.append(candidate)
    return kept


def _amount_value(match: re.Match[str]) -> float:
    digits = match["grouped"] or match["spaced"] or match["plain"]
    decimals = match["gdec"] or match["sdec"] or match["pdec"] or ""
    number = float(digits.translate(_GROUPING) + ("." + decimals[1:] if decimals else ""))
    return -number if match["sign"] else number


def _currency(match: re.Match[str]) -> str | None:
    if match["sym"]:
        return CURRENCY_SYMBOLS[match["sym"]]
    code = match["code"]
    if code in CURRENCY_SYMBOLS:
        return CURRENCY_SYMBOLS[code]
    return code if code in CURRENCY_CODES else None
