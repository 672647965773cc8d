"""Pure scoring: normalisation, comparison, TP/FP/FN counting and micro-F1 arithmetic."""

from __future__ import annotations

import pytest

from batchnb.evaluation.scoring import (
    Counts,
    Kind,
    Mismatch,
    fuzzy_equal,
    kind_of,
    match_items,
    normalise_amount,
    normalise_currency,
    normalise_date,
    score_document,
    score_items,
    score_value,
    total,
    values_equal,
)
from batchnb.extract import Field, schema_from_dict

SCHEMA = schema_from_dict(
    {
        "properties": {
            "invoice_number": {"type": "string"},
            "date": {"type": "string", "format": "date"},
            "total": {"type": "number"},
            "company": {"type": "string"},
            "currency": {"type": "string"},
            "lines": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "name": {"type": "string"},
                        "qty": {"type": "number"},
                        "price": {"type": "number"},
                    },
                },
            },
        }
    }
)
ITEM_KINDS: dict[str, Kind] = {"name": "fuzzy", "qty": "amount", "price": "amount"}


def test_kinds_follow_type_and_name() -> None:
    assert [kind_of(f) for f in SCHEMA.fields[:5]] == [
        "text",
        "date",
        "amount",
        "fuzzy",
        "currency",
    ]
    assert kind_of(Field("address", "address")) == "fuzzy"


@pytest.mark.parametrize(
    ("expected", "predicted"),
    [("25/12/2018", "2018-12-25"), ("10 MAR 2018", "2018-03-10"), ("2014-08-03", "3 Aug 2014")],
)
def test_dates_compare_as_iso(expected: str, predicted: str) -> None:
    assert normalise_date(expected) == normalise_date(predicted)
    assert values_equal(expected, predicted, "date")


def test_dates_that_differ_do_not_match() -> None:
    assert not values_equal("2018-12-25", "2018-12-26", "date")


def test_amounts_within_a_cent_match() -> None:
    assert normalise_amount({"amount": 4.11, "currency": "USD"}) == 4.11
    assert normalise_amount("RM 1,234.50") == 1234.5
    assert normalise_amount("9.00") == 9.0
    assert values_equal("343.95", {"amount": 343.95, "currency": None}, "amount")
    assert values_equal(4.11, 4.12, "amount")
    assert not values_equal(4.11, 4.13, "amount")


def test_strings_ignore_whitespace_and_case() -> None:
    assert values_equal("INV-0042", "  inv-0042 ", "text")
    assert values_equal("Lieferant  GmbH", "lieferant gmbh", "text")
    assert not values_equal("INV-0042", "INV-0043", "text")


def test_names_and_addresses_match_fuzzily() -> None:
    assert fuzzy_equal(
        "S.H.H. MOTOR (SUNGAI RENGIT) SDN. BHD.", "SHH Motor (Sungai Rengit) Sdn Bhd"
    )
    assert fuzzy_equal("Kunden AG Mitte", "Mitte Kunden AG")  # same words, other order
    assert not fuzzy_equal("Amazon Web Services", "Coolblue B.V.")


def test_currency_codes_and_symbols() -> None:
    assert normalise_currency("€") == "EUR"
    assert normalise_currency("usd") == "USD"
    assert values_equal("USD", "$", "currency")
    assert not values_equal("EUR", "USD", "currency")


def test_value_counts() -> None:
    assert score_value("a", "A", "text") == Counts(tp=1)
    assert score_value("a", "b", "text") == Counts(fp=1, fn=1)
    assert score_value("a", None, "text") == Counts(fn=1)
    assert score_value("a", "", "text") == Counts(fn=1)


def test_missing_prediction_is_fn_and_unlabelled_is_not_scored() -> None:
    truth = {"invoice_number": "7", "total": 10}
    predicted = {"total": {"amount": 10.0, "currency": "EUR"}, "company": "Anything", "date": "x"}
    scores = {s.field: s.counts for s in score_document(truth, predicted, SCHEMA)}
    assert scores == {"invoice_number": Counts(fn=1), "total": Counts(tp=1)}


def test_line_items_are_matched_item_by_item() -> None:
    truth = [
        {"name": "Widget", "qty": 2, "price": 5},
        {"name": "Gadget", "qty": 1, "price": 7},
        {"note": "serial 123"},  # no scored key: not an item
    ]
    predicted = [
        {"name": "Gadget", "qty": 1, "price": 7},
        {"name": "Widgets", "qty": 3, "price": 5},
        {"name": "Spurious", "qty": 9},
    ]
    assert match_items(truth[:2], predicted, ITEM_KINDS) == [(0, 1), (1, 0)]
    counts = score_items(truth, predicted, ITEM_KINDS)
    # Gadget: 3 TP. Widget vs Widgets: name TP, qty FP+FN, price TP. Spurious: name FP, qty FP.
    assert counts == {
        "name": Counts(tp=2, fp=1),
        "qty": Counts(tp=1, fp=2, fn=1),
        "price": Counts(tp=2),
    }


def test_unmatched_truth_items_are_fn_and_only_labelled_keys_scored() -> None:
    truth = [{"name": "A"}, {"name": "B"}]
    predicted = [{"name": "A", "qty": 4}]
    assert score_items(truth, predicted, ITEM_KINDS) == {"name": Counts(tp=1, fn=1)}


def test_every_fp_and_fn_keeps_the_values_behind_it() -> None:
    truth = {
        "invoice_number": "7",
        "total": 10,
        "company": "Acme",
        "lines": [{"name": "Widget", "qty": 2}, {"name": "Gadget", "qty": 1}],
    }
    predicted = {
        "invoice_number": "7",
        "total": {"amount": 12.0, "currency": "EUR"},
        "lines": [{"name": "Widget", "qty": 3}, {"name": "Spurious", "qty": 9}],
    }
    found = {s.field: s.mismatches for s in score_document(truth, predicted, SCHEMA)}
    assert found["invoice_number"] == ()
    assert found["total"] == (Mismatch(10, {"amount": 12.0, "currency": "EUR"}),)
    assert found["total"][0].kind == "wrong"
    assert found["company"] == (Mismatch("Acme", None),)
    assert found["company"][0].kind == "missing"
    # Widget is paired with Widget (qty wrong); Gadget is missed; Spurious matched nothing.
    assert found["lines.name"] == (Mismatch("Gadget", None, 2), Mismatch(None, "Spurious", 2))
    assert found["lines.qty"] == (
        Mismatch(2, 3, 1),
        Mismatch(1, None, 2),
        Mismatch(None, 9, 2),
    )
    assert [m.kind for m in found["lines.qty"]] == ["wrong", "missing", "spurious"]
    # The counts agree with the mismatches: one FP or FN (or both) per mismatch.
    scores = {s.field: s.counts for s in score_document(truth, predicted, SCHEMA)}
    assert scores["lines.qty"] == Counts(fp=2, fn=2)


def test_document_line_item_rows_are_named_after_the_array() -> None:
    truth = {"lines": [{"name": "A", "price": 1}]}
    scores = score_document(truth, {}, SCHEMA)
    assert [(s.section, s.field, s.counts) for s in scores] == [
        ("line_items", "lines.name", Counts(fn=1)),
        ("line_items", "lines.price", Counts(fn=1)),
    ]


def test_micro_f1_arithmetic() -> None:
    # Per field: (tp, fp, fn) = (3, 1, 0) and (1, 1, 2): micro adds the counts first.
    combined = total([Counts(3, 1, 0), Counts(1, 1, 2)])
    assert combined == Counts(4, 2, 2)
    assert combined.precision == pytest.approx(4 / 6)
    assert combined.recall == pytest.approx(4 / 6)
    assert combined.f1 == pytest.approx(2 * 4 / (2 * 4 + 2 + 2))  # not the mean of 6/7 and 2/5
    assert Counts().f1 is None
    assert Counts(fn=3).f1 == 0.0
