"""Typed parsing: dates, money, numbers, booleans, identifiers and text, with exact spans."""

from __future__ import annotations

import pytest

from batchnb.extract.values import (
    date_order_hint,
    find_boolean,
    find_currencies,
    find_dates,
    find_identifier,
    find_money,
    find_numbers,
    find_text,
    parse_date,
    parse_money,
    parse_number,
)


@pytest.mark.parametrize(
    ("text", "iso"),
    [
        ("2024-03-15", "2024-03-15"),
        ("2024/03/15", "2024-03-15"),
        ("15/03/2024", "2024-03-15"),
        ("03/15/2024", "2024-03-15"),
        ("15.03.2024", "2024-03-15"),
        ("15-03-2024", "2024-03-15"),
        ("15 Mar 2024", "2024-03-15"),
        ("15 March 2024", "2024-03-15"),
        ("15th March, 2024", "2024-03-15"),
        ("March 15, 2024", "2024-03-15"),
        ("Mar. 15 2024", "2024-03-15"),
        ("August 3 , 2014", "2014-08-03"),
        ("15-Mar-24", "2024-03-15"),
        ("1 Sept 1999", "1999-09-01"),
        ("Issued on 15/03/24 at 10:00", "2024-03-15"),
    ],
)
def test_dates(text: str, iso: str) -> None:
    assert parse_date(text) == iso


@pytest.mark.parametrize("text", ["31/02/2024", "2024-13-01", "45/45/2024", "15 Foo 2024", "1939"])
def test_not_dates(text: str) -> None:
    assert parse_date(text) is None


def test_ambiguous_numeric_date_is_day_first_with_lower_quality() -> None:
    [found] = find_dates("03/04/2024")
    assert (found.value, found.quality) == ("2024-04-03", 0.8)
    [found] = find_dates("03/04/2024", order="mdy")
    assert (found.value, found.quality) == ("2024-03-04", 1.0)
    [found] = find_dates("03.04.2024", order="mdy")  # dots are day-first everywhere
    assert found.value == "2024-04-03"


def test_date_order_hint_from_unambiguous_dates() -> None:
    assert date_order_hint("Date: 03/20/2023 Due: 04/04/2023") == "mdy"
    assert date_order_hint("Date: 20/03/2023") == "dmy"
    assert date_order_hint("Date: 03/04/2023") is None


def test_date_spans_point_at_the_date() -> None:
    text = "Invoice Date: August 3 , 2014 (billing period)"
    [found] = find_dates(text)
    assert text[found.start : found.end] == "August 3 , 2014"


@pytest.mark.parametrize(
    ("text", "amount", "currency"),
    [
        ("$1,234.50", 1234.5, "USD"),
        ("1.234,50 EUR", 1234.5, "EUR"),
        ("EUR 1 234,50", 1234.5, "EUR"),
        ("€12.00", 12.0, "EUR"),
        ("12,00 €", 12.0, "EUR"),
        ("£ 7.5", 7.5, "GBP"),
        ("US$ 99", 99.0, "USD"),
        ("Rs 1939", 1939.0, "INR"),
        ("RM 9.00", 9.0, "MYR"),
        ("CHF 1'250.00", 1250.0, "CHF"),
        ("1,234", 1234.0, None),
        ("46,68", 46.68, None),
        ("-$5.00", -5.0, "USD"),
        ("-12.50 EUR", -12.5, "EUR"),
    ],
)
def test_money(text: str, amount: float, currency: str | None) -> None:
    assert parse_money(text) == {"amount": amount, "currency": currency}


def test_money_prefers_marked_amounts_and_the_last_of_equals() -> None:
    assert parse_money("TOTAL DUE ON August 3 , 2014 $4.11") == {"amount": 4.11, "currency": "USD"}
    assert parse_money("Tax 15% on $ 112.90 $ 16.94") == {"amount": 16.94, "currency": "USD"}
    assert parse_money("2 items $20.00") == {"amount": 20.0, "currency": "USD"}


def test_money_skips_percentages_and_dates() -> None:
    amounts = [m.value for m in find_money("VAT 21% on 03/20/2023: 12.50")]
    assert amounts == [{"amount": 12.5, "currency": None}]


def test_symbol_between_numbers_belongs_to_the_next_one() -> None:
    found = find_money("stuks 25 ref 2015 € 9,32")
    assert [m.value for m in found] == [
        {"amount": 25.0, "currency": None},
        {"amount": 2015.0, "currency": None},
        {"amount": 9.32, "currency": "EUR"},
    ]
    # "25 mei 2015" is a Dutch date: no amount is read inside it
    assert [m.value for m in find_money("op 25 mei 2015 € 9,32")] == [
        {"amount": 9.32, "currency": "EUR"}
    ]


def test_money_span_includes_the_currency() -> None:
    text = "Total:   USD 3,410.00 (paid)"
    [found] = find_money(text)
    assert text[found.start : found.end] == "USD 3,410.00"
    assert found.quality == 1.0


def test_money_quality() -> None:
    assert [m.quality for m in find_money("$5 5.00 5")] == [1.0, 0.8, 0.6]


def test_numbers() -> None:
    assert parse_number("Qty: 12") == 12.0
    assert parse_number("1.234,5 kg") == 1234.5
    assert parse_number("none") is None
    assert [m.value for m in find_numbers("3 x 2.50")] == [3.0, 2.5]


def test_currencies() -> None:
    assert [m.value for m in find_currencies("Paid $4 and EUR 5, ABC 6, Rs. 7")] == [
        "USD",
        "EUR",
        "INR",
    ]


@pytest.mark.parametrize(
    ("text", "value"),
    [(" yes", True), ("No", False), ("PAID in full", True), ("unpaid", False), ("maybe", None)],
)
def test_boolean(text: str, value: bool | None) -> None:
    found = find_boolean(text)
    assert (found.value if found else None) == value


def test_identifier_is_the_first_token_with_a_digit() -> None:
    text = ": INV/2023/03/0008 issued"
    found = find_identifier(text)
    assert found is not None
    assert text[found.start : found.end] == "INV/2023/03/0008"
    assert find_identifier(" Summary 123") is None
    assert find_identifier("**: | MD-2024-07 |") is not None


def test_text_stops_at_the_next_label_or_gap() -> None:
    text = ": Sanjay Date: 31/12/2017"
    found = find_text(text)
    assert found is not None and text[found.start : found.end] == "Sanjay"
    found = find_text("\tAcme Corp   Phone 555")
    assert found is not None and found.value == "Acme Corp"
    found = find_text("| Acme Corp |")
    assert found is not None and found.value == "Acme Corp"
    assert find_text(" : --") is None
