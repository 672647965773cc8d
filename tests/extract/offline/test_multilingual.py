"""The offline extractor on German, French and Dutch invoices, and line items from tables."""

from __future__ import annotations

from batchnb.documents.parsed import Page, ParsedDocument, Table
from batchnb.extract import schema_from_dict
from batchnb.extract.offline.labels import document_language
from batchnb.extract.offline.layout import PageLines
from batchnb.extract.offline.parties import issuer_line
from batchnb.extract.words import fold
from tests.extract.offline.test_extractor import document, extract

GERMAN = """Beispiel Handel GmbH - Hauptstr. 1 - 10115 Berlin
Seite 1 von 2
Handelsrechnung (380) Nr. 2024-117 vom 05.03.2024
Verkäufer
Nummer: 549910
Name: Beispiel Handel GmbH
USt.-Id.-Nr.: DE123456789
Käufer/Leistungsempfänger
Name:
Herrn
Max Mustermann

Anschrift: Musterstr. 11
Nettobetrag: 1.000,00 €
Umsatzsteuer 19 %: 190,00 €
Gesamtbetrag der Zuschläge 0,00
Bruttosumme 1.190,00
Erhaltene Anzahlungen -190,00
Zahlbetrag 1.000,00
Zahlbar bis 4. April 2024
"""

PROMPT = (
    "invoice number, issue date, due date, seller name, VAT ID, buyer name, net total, "
    "tax total, gross total, amount due"
)


def test_german_invoice() -> None:
    result = extract(document(GERMAN), PROMPT)
    assert result.data() == {
        "invoice_number": "2024-117",
        "issue_date": "2024-03-05",
        "due_date": "2024-04-04",
        "seller_name": "Beispiel Handel GmbH",
        "vat_id": "DE123456789",
        "buyer_name": "Herrn Max Mustermann",
        "net_total": {"amount": 1000.0, "currency": "EUR"},
        "tax_total": {"amount": 190.0, "currency": "EUR"},
        "gross_total": {"amount": 1190.0, "currency": None},
        "amount_due": {"amount": 1000.0, "currency": None},
    }


FRENCH = """Au Bon Moulin SARL - 12 chemin de l'olive - 84340 Malaucène
TVA : FR11999999998 - SIRET : 99999999800010
Facture n° FA-2024-0010
Adresse de facturation
Ma jolie boutique
35 rue de la République
Date de facture 03/02/2024
Date d\u2019échéance 5 mars 2024
N° TVA client FR19787878784
Total HT 624,90 €
Total TVA 46,25 €
Total TTC 671,15 €
Net à payer 470,15 €
"""


def test_french_invoice() -> None:
    result = extract(document(FRENCH), PROMPT)
    assert result.data() == {
        "invoice_number": "FA-2024-0010",
        "issue_date": "2024-02-03",
        "due_date": "2024-03-05",
        "seller_name": "Au Bon Moulin SARL",
        "vat_id": "FR11999999998",
        "buyer_name": "Ma jolie boutique",
        "net_total": {"amount": 624.9, "currency": "EUR"},
        "tax_total": {"amount": 46.25, "currency": "EUR"},
        "gross_total": {"amount": 671.15, "currency": "EUR"},
        "amount_due": {"amount": 470.15, "currency": "EUR"},
    }
    # 03/02/2024 is ambiguous; a document recognised as French reads it day first, surely
    issue = result.values["issue_date"]
    alone = extract(document("Date de facture 03/02/2024"), "issue date").values["issue_date"]
    assert issue is not None and issue.raw == "03/02/2024"
    assert alone is not None and alone.confidence < issue.confidence  # type: ignore[operator]


DUTCH = """FACTUUR
Voorbeeld Winkel B.V.
Weena 664
Factuurnummer: 993548900
Factuurdatum: 19 april 2014
Vervaldatum: 3 mei 2014
BTW-nummer: NL810433941B01
Totaal excl. BTW € 593,36
BTW € 124,61
Totaal € 717,97
"""


def test_dutch_invoice() -> None:
    result = extract(
        document(DUTCH),
        "issuer, invoice number, invoice date, due date, VAT ID, net total, tax, total",
    )
    assert result.data() == {
        "issuer": "Voorbeeld Winkel B.V.",
        "invoice_number": "993548900",
        "invoice_date": "2014-04-19",
        "due_date": "2014-05-03",
        "vat_id": "NL810433941B01",
        "net_total": {"amount": 593.36, "currency": "EUR"},
        "tax": {"amount": 124.61, "currency": "EUR"},
        "total": {"amount": 717.97, "currency": "EUR"},
    }


def test_accents_are_folded_for_matching_only() -> None:
    assert fold("Fälligkeitsdatum N° Échéance") == "Falligkeitsdatum No Echeance"
    assert len(fold("ß ﬁ é")) == len("ß ﬁ é")
    result = extract(
        document("FALLIGKEITSDATUM: 01.02.2024\nFälligkeitsdatum 2024-03-01"), "due date"
    )
    found = result.values["due_date"]
    assert found is not None and found.raw == "01.02.2024"


def test_european_numbers_in_totals() -> None:
    for text, amount in (
        ("Gesamtbetrag: 1.234,56 €", 1234.56),
        ("Total TTC : 1 234,56 €", 1234.56),
        ("Totalbetrag CHF 1'234.56", 1234.56),
        ("Rechnungsbetrag 12.345.678,90 EUR", 12345678.9),
    ):
        money = extract(document(text), "total").data()["total"]
        assert money is not None and money["amount"] == amount, text  # type: ignore[index]


def test_numbers_in_a_row_are_not_one_spaced_number() -> None:
    result = extract(document("Umsatzsteuer 858,75 19 163,16"), "tax total")
    assert result.data()["tax_total"] == {"amount": 163.16, "currency": None}


def test_language_guess() -> None:
    assert document_language("Rechnung Nr. 1\nNettobetrag 10\nMwSt 1,90") == "de"
    assert document_language("Facture n° 1\nTotal HT 10\nTVA 2") == "fr"
    assert document_language("Factuur 1\nBTW 21%\nTotaal 10") == "nl"
    assert document_language("Invoice 1\nTotal HT 10") is None


def test_issuer_skips_titles_and_page_marks() -> None:
    page = PageLines.of(1, "RECHNUNG\nSeite 1 von 2\n05.03.2024\nMuster Werkstatt\nAm Markt 3\n")
    found = issuer_line(page)
    assert found is not None and found.value == "Muster Werkstatt"
    legal = PageLines.of(1, "Invoice\nBill to\nJane Roe\n\nAcme Widgets Ltd | 1 Main St\n")
    found = issuer_line(legal)
    assert found is not None and found.value == "Acme Widgets Ltd"


def test_an_invoice_date_is_not_the_invoice_number() -> None:
    result = extract(document("Factuur 8-9-2022\nFactuurnummer VF100519"), "invoice number")
    assert result.data()["invoice_number"] == "VF100519"


def _table_document() -> ParsedDocument:
    header = ("Pos", "Bezeichnung", "Menge", "Einzelpreis", "Betrag")
    rows = (
        ("1", "Trennblätter A4", "20", "9,90 €", "198,00 €"),
        ("2", "Joghurt Banane", "50", "5,50", "275,00"),
        ("", "Summe", "", "", "473,00"),
    )
    before = "Rechnung Nr. 17\n"
    table = Table(rows=rows, header=header, start=len(before))
    text = before + table.text + "\nGesamtbetrag 473,00 €\n"
    table = Table(rows=rows, header=header, start=len(before), end=len(before) + len(table.text))
    return ParsedDocument(pages=(Page(1, text, (table,)),), parser="test")


def test_line_items_from_a_table() -> None:
    doc = _table_document()
    result = extract(doc, "total, line items (description, quantity, unit price, net amount)")
    assert result.data()["line_items"] == [
        {
            "description": "Trennblätter A4",
            "quantity": 20.0,
            "unit_price": {"amount": 9.9, "currency": "EUR"},
            "net_amount": {"amount": 198.0, "currency": "EUR"},
        },
        {
            "description": "Joghurt Banane",
            "quantity": 50.0,
            "unit_price": {"amount": 5.5, "currency": None},
            "net_amount": {"amount": 275.0, "currency": None},
        },
    ]
    items = result.values["line_items"]
    assert items is not None and items.raw == doc.pages[0].tables[0].text
    assert not result.notes


def test_line_items_from_a_schema_with_number_columns() -> None:
    schema = schema_from_dict(
        {
            "properties": {
                "lines": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "name": {"type": "string"},
                            "qty": {"type": "number"},
                            "price_unit": {"type": "number"},
                        },
                    },
                }
            }
        }
    )
    result = extract(_table_document(), schema)
    assert result.data()["lines"] == [
        {"name": "Trennblätter A4", "qty": 20.0, "price_unit": 9.9},
        {"name": "Joghurt Banane", "qty": 50.0, "price_unit": 5.5},
    ]


def test_a_table_without_matching_columns_gives_no_items() -> None:
    table = Table(rows=(("a", "b"),), header=("Foo", "Bar"), start=0, end=len("Foo\tBar\na\tb"))
    doc = ParsedDocument(pages=(Page(1, table.text, (table,)),), parser="test")
    result = extract(doc, "line items (description, quantity)")
    assert result.data()["line_items"] is None
    assert result.notes
