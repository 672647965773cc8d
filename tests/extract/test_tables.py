"""The table reader: the header row is found whatever the parser marked, and bookings too."""

from __future__ import annotations

from typing import Any

from batchnb.documents.parsed import Page, Table
from batchnb.extract import schema_from_prompt
from batchnb.extract.tables import items_from_tables

ITEMS = schema_from_prompt("line items").field("line_items")
TRANSACTIONS = schema_from_prompt("transactions").field("transactions")


def _page(rows: list[tuple[str, ...]], *, header: bool = False, before: str = "") -> Page:
    table = Table.of(rows, header=header).at(len(before))
    return Page(1, before + table.text + "\nThank you", (table,))


def test_an_unmarked_first_row_reading_like_a_header_is_the_header() -> None:
    page = _page(
        [("Item", "Qty", "Price", "Total"), ("Tea", "2", "3.50", "7.00"), ("Total", "", "", "7.00")]
    )
    found = items_from_tables(ITEMS, [page])
    assert found is not None
    assert found.value == [
        {
            "description": "Tea",
            "quantity": 2.0,
            "unit_price": {"amount": 3.5, "currency": None},
            "amount": {"amount": 7.0, "currency": None},
        }
    ]
    assert page.text[found.start : found.end] == found.raw


def test_the_header_below_a_preamble_wins_over_the_marked_one() -> None:
    # A sheet's first row is its marked header; the item table starts further down.
    rows = [
        ("ACME Ltd", ""),
        ("Invoice number", "INV-7"),
        ("", ""),
        ("Description", "Amount"),
        ("Design", "500.00"),
        ("Hosting", "20.00"),
    ]
    found = items_from_tables(ITEMS, [_page(rows, header=True, before="Sheet: Invoice\n")])
    assert found is not None and isinstance(found.value, list)
    assert [(row["description"], row["amount"]) for row in found.value] == [
        ("Design", {"amount": 500.0, "currency": None}),
        ("Hosting", {"amount": 20.0, "currency": None}),
    ]


def test_a_table_naming_one_column_has_no_header() -> None:
    page = _page([("Description", "Consulting"), ("Amount", "300.00")])
    assert items_from_tables(ITEMS, [page]) is None


def test_bank_statement_bookings_with_dates_and_balances() -> None:
    rows = [
        ("Buchungstag", "Verwendungszweck", "Betrag", "Saldo"),
        ("01.05.2024", "Anfangssaldo", "", "1.000,00"),
        ("02.05.2024", "Miete Mai", "-750,00", "250,00"),
        ("03.05.2024", "Gehalt", "2.100,00", "2.350,00"),
        ("", "Endsaldo", "", "2.350,00"),
    ]
    found = items_from_tables(TRANSACTIONS, [_page(rows)])
    assert found is not None
    assert found.value == [
        {
            "date": "2024-05-02",
            "description": "Miete Mai",
            "amount": {"amount": -750.0, "currency": None},
            "balance": {"amount": 250.0, "currency": None},
        },
        {
            "date": "2024-05-03",
            "description": "Gehalt",
            "amount": {"amount": 2100.0, "currency": None},
            "balance": {"amount": 2350.0, "currency": None},
        },
    ]


def test_a_total_line_is_found_in_a_column_the_field_did_not_ask_for() -> None:
    rows = [
        ("Pos", "Qty", "Amount"),
        ("1", "2", "10.00"),
        ("Total", "", "10.00"),
    ]
    found = items_from_tables(ITEMS, [_page(rows)])
    assert found is not None and isinstance(found.value, list) and len(found.value) == 1


def test_a_description_column_no_header_word_names_is_the_column_of_words() -> None:
    # "Work" is in no word list; the column holding words beside the named figures is it.
    rows = [
        ("Pos", "Work", "Qty", "Amount"),
        ("1", "Full service, cargo bike", "3", "£285.00"),
        ("2", "Chain and cassette 11s", "2", "£179.25"),
        ("", "Total due", "", "£464.25"),
    ]
    found = items_from_tables(ITEMS, [_page(rows)])
    assert found is not None
    assert [item["description"] for item in found.value] == [
        "Full service, cargo bike",
        "Chain and cassette 11s",
    ]
    assert [item["quantity"] for item in found.value] == [3.0, 2.0]


def test_a_column_of_codes_is_not_taken_for_the_description() -> None:
    rows = [("Code", "Qty", "Amount"), ("A-1002", "3", "9.00"), ("B-2203", "1", "4.00")]
    found = items_from_tables(ITEMS, [_page(rows)])
    assert found is not None
    assert [item["description"] for item in found.value] == [None, None]


def _items(rows: list[tuple[str, ...]]) -> list[Any]:
    """The items read from a table of ``rows``, which must give some."""
    found = items_from_tables(ITEMS, [_page(rows)])
    assert found is not None and isinstance(found.value, list)
    return found.value


def test_the_description_is_the_column_of_words_not_the_article_number() -> None:
    rows = [
        ("Artikel", "Omschrijving", "Prijs", "Bedrag"),
        ("E103184", "Onderhoudsset CA6707/10", "49,99", "49,99"),
        ("E103560", "SX Flyer SAECO", "0,00", "0,00"),
    ]
    items = _items(rows)
    assert [row["description"] for row in items] == [
        "Onderhoudsset CA6707/10",
        "SX Flyer SAECO",
    ]


def test_a_last_column_headed_as_a_price_is_the_line_amount_when_none_is_named() -> None:
    rows = [
        ("Artikel", "Aantal", "Prijs per stuk", "BTW", "Prijs incl. BTW"),
        ("Apple iPad Air", "2", "€ 399,00", "21%", "€ 798,00"),
        ("Mario Kart 7", "1", "€ 44,99", "21%", "€ 44,99"),
    ]
    items = _items(rows)
    assert [(row["unit_price"], row["amount"]) for row in items] == [
        ({"amount": 399.0, "currency": "EUR"}, {"amount": 798.0, "currency": "EUR"}),
        ({"amount": 44.99, "currency": "EUR"}, {"amount": 44.99, "currency": "EUR"}),
    ]


def test_a_last_column_of_tax_rates_is_not_taken_for_the_amount() -> None:
    rows = [
        ("Description", "Qty", "Unit price", "VAT"),
        ("Widget", "2", "5.00", "21 %"),
        ("Gadget", "1", "12.50", "9 %"),
    ]
    items = _items(rows)
    assert [row["amount"] for row in items] == [None, None]
    assert [row["quantity"] for row in items] == [2.0, 1.0]
