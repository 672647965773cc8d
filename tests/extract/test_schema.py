"""Prompts and dicts to schemas: field names, labels, inferred types, validation, hashing."""

from __future__ import annotations

import json

import pytest

from batchnb.errors import SchemaError
from batchnb.extract import (
    MAX_PROMPT_CHARS,
    Field,
    Schema,
    schema_from_dict,
    schema_from_prompt,
)
from batchnb.extract.schema import infer_type, to_field_name


def _shape(schema: Schema) -> list[tuple[str, str]]:
    return [(field.name, field.type) for field in schema.fields]


@pytest.mark.parametrize(
    ("prompt", "expected"),
    [
        (
            "invoice number, date, total",
            [("invoice_number", "string"), ("date", "date"), ("total", "money")],
        ),
        (
            "Extract the company name, date, address and total.",
            [
                ("company_name", "string"),
                ("date", "date"),
                ("address", "string"),
                ("total", "money"),
            ],
        ),
        (
            "invoice number; due date and total amount",
            [("invoice_number", "string"), ("due_date", "date"), ("total_amount", "money")],
        ),
        (
            "Please get the invoice #\nthe order number\nfind the quantity",
            [("invoice_number", "string"), ("order_number", "string"), ("quantity", "number")],
        ),
        (
            "issuer, tax, subtotal from each invoice",
            [("issuer", "string"), ("tax", "money"), ("subtotal", "money")],
        ),
    ],
)
def test_example_prompts(prompt: str, expected: list[tuple[str, str]]) -> None:
    assert _shape(schema_from_prompt(prompt)) == expected


def test_labels_keep_the_users_words() -> None:
    schema = schema_from_prompt("Invoice No., VAT ID and Paid?")
    assert [(f.name, f.label, f.type) for f in schema.fields] == [
        ("invoice_no", "Invoice No", "string"),
        ("vat_id", "VAT ID", "string"),
        ("paid", "Paid?", "boolean"),
    ]


@pytest.mark.parametrize(
    ("label", "expected"),
    [
        ("date", "date"),
        ("due date", "date"),
        ("issued", "date"),
        ("payment due", "date"),
        ("total", "money"),
        ("amount due", "money"),
        ("balance due", "money"),
        ("unit price", "money"),
        ("grand total", "money"),
        ("subtotal", "money"),
        ("shipping cost", "money"),
        ("quantity", "number"),
        ("qty", "number"),
        ("number of pages", "number"),
        ("tax rate", "number"),
        ("invoice number", "string"),
        ("order number", "string"),
        ("phone number", "string"),
        ("tax id", "string"),
        ("invoice #", "string"),
        ("paid?", "boolean"),
        ("is signed", "boolean"),
        ("has attachments", "boolean"),
        ("company name", "string"),
        ("currency", "string"),
    ],
)
def test_type_inference(label: str, expected: str) -> None:
    assert infer_type(label) == expected


def test_parenthesis_with_several_items_is_an_array() -> None:
    schema = schema_from_prompt("invoice number, line items (description, quantity, unit price)")
    items = schema.field("line_items")
    assert items.type == "array"
    assert [(f.name, f.type) for f in items.fields] == [
        ("description", "string"),
        ("quantity", "number"),
        ("unit_price", "money"),
    ]


def test_parenthesis_with_one_phrase_is_a_description() -> None:
    prompt = (
        "Extract the issuer (vendor name), invoice number, invoice date, due date, total amount, "
        "amount before tax, tax amount, currency, and the line items (name, quantity, unit "
        "price, subtotal)."
    )
    schema = schema_from_prompt(prompt)
    assert schema.field("issuer").description == "vendor name"
    assert schema.names == (
        "issuer",
        "invoice_number",
        "invoice_date",
        "due_date",
        "total_amount",
        "amount_before_tax",
        "tax_amount",
        "currency",
        "line_items",
    )
    assert [f.type for f in schema.field("line_items").fields] == [
        "string",
        "number",
        "money",
        "money",
    ]


@pytest.mark.parametrize("prompt", ["", "   ", "\n\t"])
def test_empty_prompt_is_refused(prompt: str) -> None:
    with pytest.raises(SchemaError, match="prompt is empty"):
        schema_from_prompt(prompt)


def test_too_long_prompt_is_refused() -> None:
    with pytest.raises(SchemaError, match=f"over the limit of {MAX_PROMPT_CHARS}"):
        schema_from_prompt("total, " * (MAX_PROMPT_CHARS // 7 + 1))


def test_prompt_at_the_limit_is_accepted() -> None:
    prompt = "total".ljust(MAX_PROMPT_CHARS, " ")
    assert schema_from_prompt(prompt).names == ("total",)


def test_duplicate_field_is_refused_with_both_labels() -> None:
    with pytest.raises(SchemaError, match=r"'date' twice .*'date' and 'Date'"):
        schema_from_prompt("date, total, Date")


@pytest.mark.parametrize("prompt", ["please extract the", ", ; and ,", "..."])
def test_prompt_without_fields_is_refused(prompt: str) -> None:
    with pytest.raises(SchemaError, match="no fields found"):
        schema_from_prompt(prompt)


def test_field_validation() -> None:
    with pytest.raises(SchemaError, match=r"snake_case.*'invoice_number'"):
        Field("invoiceNumber", "invoice number")
    with pytest.raises(SchemaError, match="unknown type 'text'"):
        Field("total", "total", "text")  # type: ignore[arg-type]
    with pytest.raises(SchemaError, match="needs at least one sub-field"):
        Field("lines", "lines", "array")
    with pytest.raises(SchemaError, match="cannot have sub-fields"):
        Field("total", "total", "money", fields=(Field("a", "a"),))
    with pytest.raises(SchemaError, match="at least one field"):
        Schema(())


def test_to_field_name() -> None:
    assert to_field_name("Invoice #") == "invoice_number"
    assert to_field_name("invoiceNumber") == "invoice_number"
    assert to_field_name("VAT %") == "vat_percent"
    assert to_field_name("2nd address") == "field_2nd_address"


def test_dict_round_trip_and_json() -> None:
    schema = schema_from_prompt("issuer (vendor name), total, line items (name, quantity)")
    data = schema.to_dict()
    assert json.loads(json.dumps(data)) == data
    assert Schema.from_dict(data) == schema
    assert schema_from_dict(data).hash() == schema.hash()


def test_hash_is_stable_and_sensitive() -> None:
    first = schema_from_prompt("invoice number, date, total")
    again = schema_from_prompt("Invoice number; date and total.")
    assert first.hash() != again.hash()  # the label differs ("Invoice number")
    assert first.hash() == schema_from_prompt("invoice number, date, total").hash()
    assert len(first.hash()) == 64
    reordered = {
        "fields": [
            {"type": "string", "label": "invoice number", "name": "invoice_number"},
            {"name": "date", "type": "date", "label": "date"},
            {"label": "total", "name": "total", "type": "money"},
        ]
    }
    assert schema_from_dict(reordered).hash() == first.hash()
    assert schema_from_prompt("date, invoice number, total").hash() != first.hash()


def test_fields_dict_accepts_names_and_infers_types() -> None:
    schema = schema_from_dict(
        {"fields": ["due date", {"name": "total"}, {"label": "Invoice #", "type": "string"}]}
    )
    assert _shape(schema) == [
        ("due_date", "date"),
        ("total", "money"),
        ("invoice_number", "string"),
    ]


def test_json_schema_properties() -> None:
    schema = schema_from_dict(
        {
            "type": "object",
            "properties": {
                "invoice_number": {"type": "string"},
                "date": {"type": "string", "format": "date", "description": "invoice date"},
                "amount": {"type": "number", "description": "total amount including tax"},
                "pages": {"type": "integer"},
                "paid": {"type": ["boolean", "null"]},
                "total": {"type": "money"},
                "lines": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {"name": {"type": "string"}, "qty": {"type": "number"}},
                    },
                },
            },
        }
    )
    assert _shape(schema) == [
        ("invoice_number", "string"),
        ("date", "date"),
        ("amount", "number"),
        ("pages", "number"),
        ("paid", "boolean"),
        ("total", "money"),
        ("lines", "array"),
    ]
    assert schema.field("date").description == "invoice date"
    assert schema.field("invoice_number").label == "invoice number"
    assert [f.name for f in schema.field("lines").fields] == ["name", "qty"]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({}, "needs 'fields'"),
        ({"fields": "total"}, "must be a list"),
        ({"fields": [{"type": "money"}]}, "needs a 'name'"),
        ({"fields": [{"name": "a", "type": "decimal"}]}, "unknown type 'decimal'"),
        ({"fields": []}, "at least one field"),
        ({"properties": {"a": {"type": "object"}}}, "nested object"),
        ({"properties": {"a": {"type": "array", "items": {"type": "string"}}}}, "array of objects"),
        ({"properties": {"Bad Name": {"type": "string"}}}, "snake_case"),
        ({"fields": [{"name": "a"}, {"name": "a"}]}, "twice"),
    ],
)
def test_invalid_dicts(data: dict[str, object], message: str) -> None:
    with pytest.raises(SchemaError, match=message):
        schema_from_dict(data)


ITEMS = [
    ("description", "string"),
    ("quantity", "number"),
    ("unit_price", "money"),
    ("amount", "money"),
]
TRANSACTIONS = [
    ("date", "date"),
    ("description", "string"),
    ("amount", "money"),
    ("balance", "money"),
]


def _columns(schema: Schema, name: str) -> list[tuple[str, str]]:
    field = schema.field(name)
    assert field.type == "array"
    return [(sub.name, sub.type) for sub in field.fields]


@pytest.mark.parametrize(
    ("prompt", "name", "expected"),
    [
        ("invoice number, date, total, line items", "line_items", ITEMS),
        ("Extract the invoice number and all the Line Items.", "line_items", ITEMS),
        ("order number, products", "products", ITEMS),
        ("positions and total", "positions", ITEMS),
        ("services", "services", ITEMS),
        ("Rechnungsnummer, Positionen", "positionen", ITEMS),
        ("numéro de facture, lignes de facture", "lignes_de_facture", ITEMS),
        ("iban, transactions", "transactions", TRANSACTIONS),
        ("account holder, Umsätze", "umsatze", TRANSACTIONS),
        ("opérations", "operations", TRANSACTIONS),
    ],
)
def test_a_well_known_list_is_an_array_with_default_columns(
    prompt: str, name: str, expected: list[tuple[str, str]]
) -> None:
    assert _columns(schema_from_prompt(prompt), name) == expected


def test_listed_columns_win_over_the_defaults() -> None:
    schema = schema_from_prompt("line items (description, amount), transactions (date, amount)")
    assert _columns(schema, "line_items") == [("description", "string"), ("amount", "money")]
    assert _columns(schema, "transactions") == [("date", "date"), ("amount", "money")]


def test_a_hint_keeps_the_default_columns() -> None:
    items = schema_from_prompt("line items (the goods sold)").field("line_items")
    assert items.description == "goods sold"
    assert [(sub.name, sub.type) for sub in items.fields] == ITEMS


@pytest.mark.parametrize("prompt", ["number of items", "item count", "line item", "item"])
def test_only_a_whole_list_label_makes_an_array(prompt: str) -> None:
    assert schema_from_prompt(prompt).fields[0].type != "array"


def test_default_arrays_in_dict_schemas_but_never_as_columns() -> None:
    schema = schema_from_dict(
        {
            "fields": [
                "products",
                {"name": "line_items"},
                {"name": "items", "type": "string"},
                {"name": "orders", "type": "array", "fields": ["date", "items", {"name": "lines"}]},
            ]
        }
    )
    assert _columns(schema, "products") == ITEMS
    assert _columns(schema, "line_items") == ITEMS
    assert schema.field("items").type == "string"
    assert _columns(schema, "orders") == [
        ("date", "date"),
        ("items", "string"),
        ("lines", "string"),
    ]


def test_field_names_drop_accents() -> None:
    assert to_field_name("Umsätze") == "umsatze"
    assert to_field_name("Quantité") == "quantite"
    assert to_field_name("Straße") == "strasse"
