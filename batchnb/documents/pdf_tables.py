"""Tables on PDF pages, read with pdfplumber: ruled grids first, then borderless item tables.

pdfplumber reads ruled tables exactly but finds no borderless table by default, and costs about
0.1 s a page (against about 2 ms for the text layer), so :func:`find_tables` is only called when
a schema asks for line items (``parse_document(..., tables=True)``). A page whose ruled tables
hold no item table is searched for a borderless one: a line of words reading like an item-table
header ("Description Qty Unit price Amount", "Menge Preis Gesamtbetrag") gives the column edges,
split where the rows below keep a gap under two of its words, and the lines below it, up to a
total line, a wide vertical gap or another header, are the rows; a row is the lines around one
amount in the last column (a wrapped description, an amount on the item's second line).
"""

from __future__ import annotations

import io
import re
import unicodedata
from collections.abc import Iterable, Sequence
from itertools import pairwise
from typing import Any, BinaryIO

from batchnb.errors import DocumentError

Rows = list[list[str]]
"""One table: its rows of cleaned cells, the first row being the header when there is one."""

MAX_TABLE_PAGES = 20
"""Pages searched per document: tables are the slow part of reading a PDF."""
HEADER_MIN_WORDS = 2
"""Item-table header words a line needs to be read as a header."""
COLUMN_GAP = 0.6
"""A gap wider than this many word heights separates two header cells."""
ROW_GAP = 5.0
"""A gap taller than this many header heights between two lines ends a borderless table."""
SENTENCE_GAP = 1.0
"""Word heights between a sentence's words at most: a word space, narrower than a column gap."""
SPLIT_MIN_LINES = 2
"""Body lines that must keep a gap under two header words for them to head two columns."""

_HEADER_WORDS = frozenset(
    {"description", "desc", "item", "product", "article", "service", "designation", "libelle"}
    | {"produit", "artikel", "bezeichnung", "beschreibung", "produkt", "leistung", "omschrijving"}
    | {"quantity", "qty", "qte", "quantite", "menge", "anzahl", "aantal", "hours", "units"}
    | {"unit", "price", "rate", "preis", "einzelpreis", "nettopreis", "prix", "unitaire", "prijs"}
    | {"amount", "total", "betrag", "nettobetrag", "gesamtbetrag", "montant", "bedrag", "totaal"}
)
_TOTAL_WORDS = frozenset(
    {"total", "subtotal", "summe", "gesamt", "gesamtsumme", "zwischensumme", "totaal", "sous"}
)
_SUBTOTAL_WORDS = frozenset({"subtotal", "zwischensumme", "sous"})
_SUMMARY_WORDS = frozenset(
    {"net", "netto", "nettobetrag", "vat", "tax", "mwst", "ust", "btw", "tva", "gst", "iva"}
)
"""First words of a totals block's lines; they end a table only where they start right of
its first column (an item in the first column may be called "Tax advice")."""
_WORD = re.compile(r"[a-z]+")
_DETAIL = re.compile(r"^[^\d:]{1,40}?\s*:")
"""A line opening with a short label and a colon: an item's detail ("Serienummer: 123")."""
_SPACES = re.compile(r"\s+")


def find_tables(source: bytes | BinaryIO, page_numbers: Iterable[int]) -> dict[int, list[Rows]]:
    """The tables on the pages ``page_numbers`` (from 1) of the PDF ``source``, page by page.

    ``source`` is the PDF's bytes or a seekable binary stream (read from its start).

    Only the first :data:`MAX_TABLE_PAGES` of the requested pages are read. Each table has at
    least two rows and two columns; cells are stripped, a cell's lines are joined by spaces,
    and empty rows and columns are dropped. Pages without tables are left out.

    Raises
    ------
    DocumentError
        pdfplumber cannot read the PDF.
    """
    import pdfplumber
    from pdfminer.pdfparser import PDFSyntaxError

    wanted = sorted(set(page_numbers))[:MAX_TABLE_PAGES]
    found: dict[int, list[Rows]] = {}
    try:
        if isinstance(source, bytes):
            stream: BinaryIO = io.BytesIO(source)
        else:
            stream = source
            stream.seek(0)
        with pdfplumber.open(stream) as pdf:  # type: ignore[arg-type]  # any seekable stream
            for number in wanted:
                if not 1 <= number <= len(pdf.pages):
                    continue
                page = pdf.pages[number - 1]
                tables = _page_tables(page)
                page.close()
                if tables:
                    found[number] = tables
    except PDFSyntaxError as exc:
        raise DocumentError(f"not a readable PDF: its tables cannot be read ({exc})") from None
    return found


def clean_table(raw: Sequence[Sequence[str | None]]) -> Rows:
    """Cells stripped and their lines joined; empty rows and columns dropped."""
    rows = [[_SPACES.sub(" ", cell or "").strip() for cell in row] for row in raw]
    rows = [row for row in rows if any(row)]
    width = max((len(row) for row in rows), default=0)
    rows = [row + [""] * (width - len(row)) for row in rows]
    keep = [i for i in range(width) if any(row[i] for row in rows)]
    return [[row[i] for i in keep] for row in rows]


def _page_tables(page: Any) -> list[Rows]:
    ruled = [table for raw in page.extract_tables() if _is_table(table := clean_table(raw))]
    if any(reads_like_header(table[0]) for table in ruled):
        return ruled
    borderless = _borderless_table(page)
    return ruled + ([borderless] if borderless is not None else [])


def _is_table(rows: Rows) -> bool:
    return len(rows) >= 2 and len(rows[0]) >= 2


def _folded_words(text: str) -> list[str]:
    plain = unicodedata.normalize("NFKD", text.lower())
    return _WORD.findall("".join(c for c in plain if not unicodedata.combining(c)))


def reads_like_header(cells: Sequence[str]) -> bool:
    """At least two cells name item-table columns."""
    found = sum(bool(_HEADER_WORDS.intersection(_folded_words(cell))) for cell in cells)
    return found >= HEADER_MIN_WORDS


def _lines(words: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Words grouped into lines by their top edge, top to bottom, left to right."""
    lines: list[list[dict[str, Any]]] = []
    for word in sorted(words, key=lambda w: (round(w["top"]), w["x0"])):
        if lines and abs(lines[-1][0]["top"] - word["top"]) <= 0.5 * _height(word):
            lines[-1].append(word)
        else:
            lines.append([word])
    return [sorted(line, key=lambda w: w["x0"]) for line in lines]


def _height(word: dict[str, Any]) -> float:
    return max(float(word["bottom"]) - float(word["top"]), 1.0)


def _clusters(line: list[dict[str, Any]], gap: float = COLUMN_GAP) -> list[list[dict[str, Any]]]:
    """Words grouped into cells: words closer than ``gap`` word heights belong together."""
    cells = [[line[0]]]
    for word in line[1:]:
        previous = cells[-1][-1]
        if word["x0"] - previous["x1"] > gap * _height(word):
            cells.append([word])
        else:
            cells[-1].append(word)
    return cells


def _borderless_table(page: Any) -> Rows | None:
    """The item table under the first header-like line, read with column edges from it."""
    # Rotated text (a copyright line up the margin) would scatter letters into the columns.
    lines = _lines([word for word in page.extract_words() if word.get("upright", True)])
    for index, line in enumerate(lines):
        cells = _clusters(line)
        header = [" ".join(w["text"] for w in cell) for cell in cells]
        if len(cells) < 2 or not reads_like_header(header):
            continue
        body = _body_lines(lines[index + 1 :], line)
        cells = [part for cell in cells for part in _split_by_body(cell, body)]
        header = [" ".join(w["text"] for w in cell) for cell in cells]
        edges = [(a[-1]["x1"] + b[0]["x0"]) / 2 for a, b in pairwise(cells)]
        table = clean_table(_table_below(body, edges, header))
        return table if _is_table(table) else None
    return None


def _body_lines(
    lines: list[list[dict[str, Any]]], header_line: list[dict[str, Any]]
) -> list[list[dict[str, Any]]]:
    """The lines under a header up to a total line, a wide vertical gap or another header.

    A line opening with a net or tax label right of the first column ("Net amount", "VAT
    19%"), or with one figure and a total word right of that column ("Factuur totaal EUR
    49,99"), starts the totals block and ends the table. A section's subtotal ("Subtotal $
    112.00" under the amounts) is not a row, and the table goes on when the line after it
    starts in the first column, as an item or a section's title does (a title, a line without
    a digit, is left out too); a totals block, set under the amounts, ends the table there.
    """
    body: list[list[dict[str, Any]]] = []
    previous_bottom = max(float(w["bottom"]) for w in header_line)
    height = max(_height(w) for w in header_line)
    first_column_end = float(_clusters(header_line)[1][0]["x0"])
    section_title = False
    for index, line in enumerate(lines):
        if float(line[0]["top"]) - previous_bottom > ROW_GAP * height:
            break
        first_words = set(_folded_words(line[0]["text"]))
        if first_words & _SUMMARY_WORDS and float(line[0]["x0"]) >= first_column_end:
            break  # "Net amount", "VAT 19%" under the amounts: the totals block
        if first_words & _TOTAL_WORDS:
            following = lines[index + 1] if index + 1 < len(lines) else None
            if not first_words & _SUBTOTAL_WORDS or following is None:
                break
            if float(following[0]["x0"]) >= first_column_end:
                break
            previous_bottom = max(float(w["bottom"]) for w in line)
            section_title = not any(_has_digit(w["text"]) for w in following)
            continue
        if section_title:
            section_title = False
            previous_bottom = max(float(w["bottom"]) for w in line)
            continue
        cells = [" ".join(w["text"] for w in cell) for cell in _clusters(line)]
        if _total_right_of(line, first_column_end, cells):
            break  # "Prijzen zijn inclusief BTW   Factuur totaal EUR   49,99"
        if not any(_has_digit(cell) for cell in cells) and reads_like_header(cells):
            break
        previous_bottom = max(float(w["bottom"]) for w in line)
        body.append(line)
    return body


def _total_right_of(line: list[dict[str, Any]], first_column_end: float, cells: list[str]) -> bool:
    """A line with one figure and a total word in a phrase right of the first column.

    An item may be called "Total Care" (in a description column right of a position number),
    but its row has a quantity and an amount; a total line has its one amount.
    """
    if sum(_has_digit(cell) for cell in cells) > 1:
        return False
    right = [w["text"] for w in line if float(w["x0"]) >= first_column_end]
    return bool(_TOTAL_WORDS.intersection(_folded_words(" ".join(right))))


def _split_by_body(
    cell: list[dict[str, Any]], body: list[list[dict[str, Any]]]
) -> list[list[dict[str, Any]]]:
    """A header cell split where the rows below it keep a gap: "BTW Prijs" over "21 %  9,99".

    Header words of neighbouring columns are often set closer than the columns' own gap. A
    gap between two header words is a column edge when, on most body lines with words under
    the cell (and at least :data:`SPLIT_MIN_LINES`), a gap between phrases lies under it.
    """
    if len(cell) < 2:
        return [cell]
    left, right = float(cell[0]["x0"]), float(cell[-1]["x1"])
    under: list[list[list[dict[str, Any]]]] = []  # per body line, its phrases under the cell
    for line in body:
        phrases = [p for p in _clusters(line) if p[-1]["x1"] > left and p[0]["x0"] < right]
        if phrases:
            under.append(phrases)
    parts = [[cell[0]]]
    for previous, word in pairwise(cell):
        a, b = float(previous["x1"]), float(word["x0"])
        gapped = sum(
            any(float(p["x1"]) <= b and float(q["x0"]) >= a for p, q in _phrase_gaps(phrases))
            and not any(float(p[0]["x0"]) < a and float(p[-1]["x1"]) > b for p in phrases)
            for phrases in under
        )
        if gapped >= SPLIT_MIN_LINES and gapped * 5 >= len(under) * 4:
            parts.append([word])
        else:
            parts[-1].append(word)
    return _without_empty_parts(parts, under)


def _without_empty_parts(
    parts: list[list[dict[str, Any]]], under: list[list[list[dict[str, Any]]]]
) -> list[list[dict[str, Any]]]:
    """Header words over no body phrase (or only a currency sign) joined to the part on their
    right.

    A right-aligned column's values sit under the last words of its header ("Prijs incl.
    BTW" over "€ 399,00"), so words over nothing belong to the header on their right.
    """
    edges = [(a[-1]["x1"] + b[0]["x0"]) / 2 for a, b in pairwise(parts)]
    filled = [False] * len(parts)
    for phrases in under:
        for phrase in phrases:
            if not any(char.isalnum() for word in phrase for char in word["text"]):
                continue  # a currency sign set apart from its amount ("$      12.00")
            centre = (float(phrase[0]["x0"]) + float(phrase[-1]["x1"])) / 2
            filled[sum(centre > edge for edge in edges)] = True
    joined: list[list[dict[str, Any]]] = []
    pending: list[dict[str, Any]] = []
    for part, has_body in zip(parts, filled, strict=True):
        if has_body:
            joined.append(pending + part)
            pending = []
        else:
            pending += part
    if pending:
        if not joined:
            return [pending]
        joined[-1] += pending
    return joined


def _phrase_gaps(
    phrases: list[list[dict[str, Any]]],
) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """The word ending each phrase and the word starting the next."""
    return [(p[-1], q[0]) for p, q in pairwise(phrases)]


def _table_below(lines: list[list[dict[str, Any]]], edges: list[float], header: list[str]) -> Rows:
    """The header and the rows of ``lines``, cut into cells at ``edges``.

    A sentence set across the table (see :func:`_prose`) is skipped. Lines before the first
    one with a digit continue the header. The last column holds each
    row's amount, and a row is the lines around one amount: a line with an amount starts a
    row, unless the row above is still waiting for its amount (its numbers on one line, its
    amount on the next); a line without an amount but with figures in two cells or more (a
    quantity and a price) starts a row that waits for its amount, and the line bringing the
    amount fills the row's empty cells only; any other line continues the row above (wrapped
    text), unless it opens with a label and a colon: a detail such as "Serienummer: 123" or
    "Bruttopreis: 5,50" belongs to the item but is not its text, and is left out. Rows after
    the last one with an amount are discounts, notes or a footer; when most rows have an
    amount, a row that never got one is a note or a sub-item. Neither is an item, and both
    are dropped.
    """
    rows: list[tuple[list[str], bool]] = []
    waiting = False
    for line in lines:
        if _prose(line, edges):
            continue
        cells = [""] * (len(edges) + 1)
        for word in line:
            centre = (float(word["x0"]) + float(word["x1"])) / 2
            column = sum(centre > edge for edge in edges)
            cells[column] = f"{cells[column]} {word['text']}".strip()
        figures = sum(_has_digit(cell) for cell in cells)
        has_amount = _has_digit(cells[-1])
        if not rows and not figures:
            header = _joined(header, cells)
        elif has_amount and waiting:
            rows[-1] = (_completed(rows[-1][0], cells), True)
            waiting = False
        elif has_amount or not rows:
            rows.append((cells, has_amount))
            waiting = not has_amount
        elif figures >= 2:
            rows.append((cells, False))
            waiting = True
        elif not _DETAIL.match(" ".join(cell for cell in cells if cell)):
            rows[-1] = (_joined(rows[-1][0], cells), rows[-1][1])
    while rows and not rows[-1][1] and any(amount for _, amount in rows):
        rows.pop()  # lines after the last amount: discounts, notes, the footer
    if sum(amount for _, amount in rows) * 2 > len(rows):
        rows = [(cells, amount) for cells, amount in rows if amount]
    return [header, *(cells for cells, _ in rows)]


def _prose(line: list[dict[str, Any]], edges: list[float]) -> bool:
    """A sentence set across the table ("Important: orders placed by 19.12. arrive by
    23.12."): its words, a space apart (:data:`SENTENCE_GAP`), run across two column edges,
    which a row's cells never do."""
    return any(
        sum(float(phrase[0]["x0"]) < edge < float(phrase[-1]["x1"]) for edge in edges) >= 2
        for phrase in _clusters(line, SENTENCE_GAP)
    )


def _completed(row: list[str], more: list[str]) -> list[str]:
    """``row``'s empty cells filled from ``more``: a row's amount on the line below it."""
    return [cell or other for cell, other in zip(row, more, strict=True)]


def _joined(row: list[str], more: list[str]) -> list[str]:
    return [f"{a} {b}".strip() for a, b in zip(row, more, strict=True)]


def _has_digit(text: str) -> bool:
    return any(char.isdigit() for char in text)
