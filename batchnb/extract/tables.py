"""Line items from tables: an array field's rows read from a page's :class:`Table`.

Each sub-field of the array field is given a role (description, quantity, unit price, amount,
date, balance) from its own words; each table column gets a role from its header cell, in
English, German, French or Dutch ("Menge", "Prix unitaire", "Omschrijving", "Saldo"). The
header is the first row of the table that names at least two of the field's columns, whatever
the parser marked as header: Word's "repeat as header row" flag is rarely set, and a sheet often
opens with the seller's address above its item table. The table whose header covers the most
sub-fields is read row by row below it; a row without a description and without any number, or
a row that is a total line ("Subtotal", "Summe"), is not an item. The value is grounded in the
table's span of the page text.

This reader sits at the framework's root, not in the offline backend, because it is not a
backend's guess: a parsed table is the document's own statement of its rows. The offline
extractor reads line items with it, and validation uses it to tell when any extractor returned
fewer items than the table has (see :func:`batchnb.extract.validation.completeness_flags`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from batchnb.documents.parsed import Page, Table
from batchnb.extract.base import ExtractedValue, JSONValue
from batchnb.extract.schema import Field
from batchnb.extract.values import best_money, find_dates, find_money, find_numbers
from batchnb.extract.words import words_of

Rows = tuple[tuple[str, ...], ...]
Role = Literal["description", "quantity", "unit_price", "amount", "date", "balance"]

TABLE_CONFIDENCE = 0.8
"""Rows read from a table whose header named every column asked for."""
MIN_HEADER_COLUMNS = 2
"""Columns of the field a row must name to be read as the table's header."""
MAX_HEADER_ROW = 50
"""Rows searched for the header: a sheet's preamble (seller, buyer, dates) is shorter."""

# Header words per role, folded lowercase; checked in this order (a "unit price" column is
# not the amount even though "price" might be read that way).
_HEADER_WORDS: tuple[tuple[Role, frozenset[str]], ...] = (
    ("quantity", frozenset(
        {"quantity", "qty", "qte", "quantite", "menge", "anzahl", "stk", "stuck", "nombre"}
        | {"aantal", "hoeveelheid", "units", "count", "hours", "pcs"}
    )),
    ("unit_price", frozenset(
        {"unit", "rate", "einzelpreis", "stuckpreis", "nettopreis", "preis", "unitaire", "pu"}
        | {"prijs", "stukprijs", "eenheidsprijs", "price"}
    )),
    ("date", frozenset(
        {"date", "datum", "buchungstag", "buchungsdatum", "valuta", "wertstellung", "boekdatum"}
        | {"valutadatum"}
    )),
    ("balance", frozenset({"balance", "saldo", "solde", "kontostand"})),
    ("amount", frozenset(
        {"amount", "total", "subtotal", "betrag", "nettobetrag", "gesamt", "gesamtpreis"}
        | {"summe", "montant", "ht", "bedrag", "totaal", "net", "nettowert", "line"}
    )),
    ("description", frozenset(
        {"description", "desc", "item", "items", "name", "product", "article", "service"}
        | {"artikel", "bezeichnung", "beschreibung", "produkt", "leistung", "artikelbezeichnung"}
        | {"designation", "libelle", "produit", "omschrijving", "details", "particulars"}
        | {"transaction", "buchungstext", "verwendungszweck", "operation", "mededeling"}
    )),
)  # fmt: skip
_SUB_FIELD_WORDS: tuple[tuple[Role, frozenset[str]], ...] = (
    ("date", frozenset({"date", "dated"})),
    ("balance", frozenset({"balance"})),
    ("unit_price", frozenset({"unit", "rate", "each"})),
    ("quantity", frozenset({"quantity", "qty", "count", "units", "hours"})),
    ("amount", frozenset({"amount", "total", "subtotal", "net", "line"})),
    ("unit_price", frozenset({"price"})),
    ("description", frozenset({"description", "desc", "item", "name", "product", "service"})),
)
_TOTAL_ROW = frozenset(
    {"total", "subtotal", "summe", "gesamt", "totaal", "sous", "zwischensumme"}
    # A statement's opening and closing balance lines are not bookings.
    | {"opening", "closing", "anfangssaldo", "endsaldo", "beginsaldo", "eindsaldo", "carried"}
    | {"brought"}
)
_FIGURES = frozenset({"number", "money"})


def items_from_tables(field: Field, pages: Sequence[Page]) -> ExtractedValue | None:
    """The rows of ``field`` (an array field) from the best-matching table, or ``None``."""
    roles = {sub.name: role for sub in field.fields if (role := _sub_field_role(sub))}
    best: tuple[int, int, Page, Table, dict[str, int], Rows] | None = None
    for page in pages:
        for table in page.tables:
            if page.text[table.start : table.end] != table.text:
                continue
            found = _header_and_rows(table, roles)
            if found is None:
                continue
            columns, body = found
            if best is None or (len(columns), len(body)) > best[:2]:
                best = (len(columns), len(body), page, table, columns, body)
    if best is None:
        return None
    covered, _, page, table, columns, body = best
    subs = {sub.name: sub for sub in field.fields}
    rows = [row for cells in body if (row := _row(cells, columns, subs)) is not None]
    if not rows:
        return None
    confidence = TABLE_CONFIDENCE * covered / max(len(field.fields), 1)
    return ExtractedValue(
        value=list(rows),
        raw=table.text,
        page=page.number,
        start=table.start,
        end=table.end,
        confidence=round(min(1.0, max(0.1, confidence)), 2),
    )


def _header_and_rows(table: Table, roles: dict[str, Role]) -> tuple[dict[str, int], Rows] | None:
    """The columns named by the table's header row and the rows below it, or ``None``.

    The header is the first of the table's lines (its marked header, then its rows) naming
    :data:`MIN_HEADER_COLUMNS` of the field's columns.
    """
    lines = ((table.header,) if table.header is not None else ()) + table.rows
    for index, cells in enumerate(lines[:MAX_HEADER_ROW]):
        columns = _columns(cells, roles)
        if len(columns) >= MIN_HEADER_COLUMNS:
            body = lines[index + 1 :]
            columns = _wordiest_description(columns, roles, cells, body)
            columns = _with_text_column(columns, roles, len(cells), body)
            return _with_amount_column(columns, roles, len(cells), body), body
    return None


def _wordiest_description(
    columns: dict[str, int], roles: dict[str, Role], header: tuple[str, ...], body: Rows
) -> dict[str, int]:
    """Of the columns headed like a description, the one whose cells are words.

    "Artikel" heads an article number beside "Omschrijving"; "Item" a code beside
    "Description". The description is the column holding words on the most rows.
    """
    claimed = set(columns.values())
    for name, index in columns.items():
        if roles[name] != "description":
            continue
        candidates = [
            other
            for other, cell in enumerate(header)
            if _header_role(cell) == "description" and (other == index or other not in claimed)
        ]
        best = max(candidates, key=lambda other: (_words_in_column(body, other), -other))
        if best != index:
            return {**columns, name: best}
    return columns


def _words_in_column(body: Rows, index: int) -> int:
    return sum(_is_words(row[index]) for row in body if index < len(row))


def _with_amount_column(
    columns: dict[str, int], roles: dict[str, Role], width: int, body: Rows
) -> dict[str, int]:
    """Give an unnamed line amount the table's last column when it holds figures.

    An item table ends with the line's amount, whatever its header says ("Prijs incl. BTW"
    reads as a price); so when no column is named as the amount, an unclaimed last column
    with a figure on most rows is it, unless its figures are rates ("21 %").
    """
    wanted = [name for name, role in roles.items() if role == "amount" and name not in columns]
    last = width - 1
    if not wanted or not body or last in columns.values():
        return columns
    figures = sum(
        any(char.isdigit() for char in row[last]) and "%" not in row[last]  # not a tax rate
        for row in body
        if last < len(row)
    )
    return {**columns, wanted[0]: last} if figures * 2 > len(body) else columns


def _with_text_column(
    columns: dict[str, int], roles: dict[str, Role], width: int, body: Rows
) -> dict[str, int]:
    """Give an unnamed description the leftmost unclaimed column whose cells are words.

    Headers name descriptions in too many ways ("Work", "Leistungen", "What") for a word list;
    the column that holds words on most rows, beside columns named as figures, is it.
    """
    wanted = [name for name, role in roles.items() if role == "description" and name not in columns]
    if not wanted or not body:
        return columns
    for index in range(width):
        if index in columns.values():
            continue
        cells = [row[index] if index < len(row) else "" for row in body]
        if sum(_is_words(cell) for cell in cells) * 2 > len(cells):
            return {**columns, wanted[0]: index}
    return columns


def _is_words(cell: str) -> bool:
    letters = sum(char.isalpha() for char in cell)
    return letters >= 3 and letters > sum(char.isdigit() for char in cell)


def _sub_field_role(sub: Field) -> Role | None:
    words = set(words_of(f"{sub.label} {sub.name.replace('_', ' ')}"))
    for role, role_words in _SUB_FIELD_WORDS:
        if words & role_words:
            return role
    return None


def _header_role(cell: str) -> Role | None:
    words = set(words_of(cell))
    for role, role_words in _HEADER_WORDS:
        if words & role_words:
            return role
    return None


def _columns(header: tuple[str, ...], roles: dict[str, Role]) -> dict[str, int]:
    """Sub-field name → column index, each column used once, leftmost first."""
    column_roles = [_header_role(cell) for cell in header]
    columns: dict[str, int] = {}
    for name, role in roles.items():
        for index, column_role in enumerate(column_roles):
            if column_role == role and index not in columns.values():
                columns[name] = index
                break
    return columns


def _row(
    cells: tuple[str, ...], columns: dict[str, int], subs: dict[str, Field]
) -> dict[str, JSONValue] | None:
    row: dict[str, JSONValue] = {name: None for name in subs}
    for name, index in columns.items():
        cell = cells[index].strip() if index < len(cells) else ""
        if cell:
            row[name] = _cell_value(subs[name], cell)
    if not any(row.values()):
        return None
    # A total or balance line fills one figure ("Total ... 320.00", "01.05. Opening balance
    # 1,000.00"); its words are the row's first, which may sit in a column the field did not
    # ask for (a position number's, a merged cell's).
    figures = [name for name, value in row.items() if subs[name].type in _FIGURES and value]
    label = next((cell for cell in cells if any(char.isalpha() for char in cell)), "")
    first_words = words_of(label)
    if first_words and first_words[0] in _TOTAL_ROW and len(figures) <= 1:
        return None
    return row


def _cell_value(sub: Field, cell: str) -> JSONValue:
    if sub.type == "money":
        money = best_money(find_money(cell))
        return money.value if money is not None else None
    if sub.type == "number":
        numbers = find_numbers(cell)
        return numbers[0].value if numbers else None
    if sub.type == "date":
        dates = find_dates(cell)
        return dates[0].value if dates else None
    return cell
