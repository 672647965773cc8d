"""Amounts with four decimals and the date order hint (batchnb/extract/values.py)."""

from __future__ import annotations

import pytest

from batchnb.documents.parsers import parse_document
from batchnb.extract import OfflineExtractor, schema_from_prompt
from batchnb.extract.values import date_order_hint, find_dates, find_money, find_numbers
from tests.conftest import EVAL_DIR


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("9,9000", [9.9]),
        ("0.4375", [0.4375]),
        ("1.234,5678 EUR", [1234.5678]),
        ("5,5000 : 5,5000", [5.5, 5.5]),
        # Three digits after a separator still group thousands; one or two are decimals.
        ("1,000", [1000.0]),
        ("1.234.567,89", [1234567.89]),
        ("12.50", [12.5]),
    ],
)
def test_numbers_with_up_to_six_decimals(text: str, expected: list[float]) -> None:
    assert [match.value for match in find_numbers(text)] == expected


def test_a_four_decimal_price_is_read_whole_and_grounded() -> None:
    text = "Nettopreis 9,9000 EUR"
    (money,) = find_money(text)
    assert money.value == {"amount": 9.9, "currency": "EUR"}
    assert text[money.start : money.end] == "9,9000 EUR"


def test_dotted_numbers_do_not_tip_the_date_order() -> None:
    # "2.13.12" reads as month 13 day-first; it is a code, and dotted dates are read
    # day-first anyway: the slashed date keeps the day-first default of its reader.
    text = "Date: 06/08/2017\nREF 2.13.12\n"
    assert date_order_hint(text) is None
    assert date_order_hint("Date: 08/13/2017") == "mdy"
    assert [d.value for d in find_dates("06/08/2017", order=date_order_hint(text))] == [
        "2017-08-06"
    ]


@pytest.mark.skipif(
    not (EVAL_DIR / "documents" / "zugferd__EN16931_Einfach.pdf").is_file(),
    reason="shared/eval is not available",
)
def test_real_invoice_unit_prices_with_four_decimals() -> None:
    pdf = (EVAL_DIR / "documents" / "zugferd__EN16931_Einfach.pdf").read_bytes()
    schema = schema_from_prompt("line items (description, quantity, unit price, net amount)")
    result = OfflineExtractor().extract(parse_document(pdf, "pdf", tables=True), schema)
    (items,) = (value for value in result.data().values() if isinstance(value, list))
    prices = [
        item["unit_price"]["amount"] if isinstance(item["unit_price"], dict) else item
        for item in items
        if isinstance(item, dict)
    ]
    assert prices == [9.9, 5.5]
