"""Tables on PDF pages, read with pdfplumber: ruled grids first, then borderless item tables.

pdfplumber reads ruled tables exactly but finds no borderless table by default, and costs about
0.1 s a page (against about 2 ms for the text layer), so :func:`find_tables` is only called when
a schema asks for line items (``parse_document(..., tables=True)``). A page whose ruled tables
hold no item table is searched for a borderless one: a line of words reading like an item-table
header ("Description Qty Unit price Amount", "Menge Preis Gesamtbetrag") gives the column edges,
and the lines below it, up to a total line or a wide vertical gap, are the rows; a row may span
several lines (a wrapped description, numbers on a second line).
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
_WORD = re.compile(r"[a-z]+")
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


def _clusters(line: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Header words grouped into cells: words closer than :data:`COLUMN_GAP` belong together."""
    cells = [[line[0]]]
    for word in line[1:]:
        previous = cells[-1][-1]
        if word["x0"] - previous["x1"] > COLUMN_GAP * _height(word):
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
        edges = [(a[-1]["x1"] + b[0]["x0"]) / 2 for a, b in pairwise(cells)]
        table = clean_table(_table_below(lines[index + 1 :], edges, line, header))
        return table if _is_table(table) else None
    return None


def _table_below(
    lines: list[list[dict[str, Any]]],
    edges: list[float],
    header_line: list[dict[str, Any]],
    header: list[str],
) -> Rows:
    """The header and the rows of the lines below it, up to a total line or a wide gap.

    Lines before the first one with a digit continue the header. The first row's leftmost
    cell is the anchor: a later line starts a row when it fills the anchor column and has a
    digit somewhere; any other line continues the row above (wrapped text, a second line of
    numbers).
    """
    rows: Rows = []
    anchor = 0
    previous_bottom = max(float(w["bottom"]) for w in header_line)
    height = max(_height(w) for w in header_line)
    for line in lines:
        if float(line[0]["top"]) - previous_bottom > ROW_GAP * height:
            break
        if _TOTAL_WORDS.intersection(_folded_words(line[0]["text"])):
            break
        previous_bottom = max(float(w["bottom"]) for w in line)
        cells = [""] * (len(edges) + 1)
        for word in line:
            centre = (float(word["x0"]) + float(word["x1"])) / 2
            column = sum(centre > edge for edge in edges)
            cells[column] = f"{cells[column]} {word['text']}".strip()
        digits = any(_has_digit(cell) for cell in cells)
        if not rows and not digits:
            header = _joined(header, cells)
        elif rows and not (cells[anchor] and digits):
            rows[-1] = _joined(rows[-1], cells)
        else:
            anchor = anchor if rows else min(i for i, cell in enumerate(cells) if cell)
            rows.append(cells)
    return [header, *rows]


def _joined(row: list[str], more: list[str]) -> list[str]:
    return [f"{a} {b}".strip() for a, b in zip(row, more, strict=True)]


def _has_digit(text: str) -> bool:
    return any(char.isdigit() for char in text)
