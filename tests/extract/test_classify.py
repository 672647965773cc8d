"""The built-in document classifier: types in three languages, "other", confidence, speed."""

from __future__ import annotations

import time

import pytest

from batchnb.documents.parsed import Page, ParsedDocument
from batchnb.extract.classify import DOCUMENT_TYPES, Classification, classify, classify_text


def _document(*pages: str) -> ParsedDocument:
    return ParsedDocument(
        pages=tuple(Page(number=i, text=text) for i, text in enumerate(pages, 1)), parser="text"
    )


SAMPLES = {
    ("invoice", "en"): "INVOICE\nInvoice Number: 2024-17\nBill to: Acme Ltd\nDue date: 2024-04-01\n"
    "VAT 20%\nTotal 120.00",
    ("invoice", "de"): "Rechnung\nRechnungsnummer: R-2024-17\nRechnungsdatum: 01.03.2024\n"
    "Zahlungsziel: 14 Tage\nMwSt 19%\nGesamt 119,00 EUR",
    ("invoice", "fr"): "FACTURE\nNuméro de facture : F-17\nDate d'échéance : 01/04/2024\n"
    "TVA 20 %\nTotal TTC 120,00 €",
    ("receipt", "en"): "SUNNY CAFE\nRECEIPT\nCashier: Tom\nLatte 3.50\nTotal 3.50\nCash 5.00\n"
    "Change 1.50\nThank you!",
    ("receipt", "de"): "Bäckerei Klein\nKassenbon\nBrötchen 2,40\nSumme 2,40\nBar 5,00\n"
    "Rückgeld 2,60\nVielen Dank!",
    ("receipt", "fr"): "Boulangerie Martin\nTicket de caisse\nBaguette 1,20\nEspèces 2,00\n"
    "Rendu 0,80\nMerci de votre visite",
    ("purchase_order", "en"): "PURCHASE ORDER\nPO Number: 4500012\nOrder date: 2024-03-01\n"
    "Vendor: Bolt Supply\nShip to: Warehouse 2",
    ("purchase_order", "de"): "Bestellung\nBestellnummer: 4500012\nBestelldatum: 01.03.2024\n"
    "Lieferant: Schrauben GmbH\nLieferdatum: 15.03.2024",
    ("purchase_order", "fr"): "BON DE COMMANDE\nNuméro de commande : 4500012\n"
    "Date de commande : 01/03/2024\nFournisseur : Vis SARL",
    ("contract", "en"): "SERVICE AGREEMENT\nThis Agreement is made between Acme Ltd (hereinafter "
    "'Client') and Bolt LLC. The parties agree as follows. Governing law: England.",
    (
        "contract",
        "de",
    ): "Dienstleistungsvertrag\nZwischen der Acme GmbH (nachfolgend 'Auftraggeber') "
    "und der Bolt AG wird folgender Vertrag geschlossen. Gerichtsstand ist Berlin.",
    ("contract", "fr"): "CONTRAT DE PRESTATION\nEntre Acme SARL, ci-après 'le Client', et Bolt SA. "
    "Les parties conviennent de ce qui suit. Droit applicable : droit français.",
    ("bank_statement", "en"): "First Bank\nAccount statement\nIBAN GB29 NWBK 6016 1331 9268 19\n"
    "Opening balance 1,000.00\nClosing balance 1,250.00",
    ("bank_statement", "de"): "Sparkasse\nKontoauszug Nr. 3\nIBAN DE89 3704 0044 0532 0130 00\n"
    "Alter Kontostand 1.000,00\nNeuer Kontostand 1.250,00",
    ("bank_statement", "fr"): "Banque Populaire\nRelevé de compte\nIBAN FR76 3000 6000 0112 3456\n"
    "Solde initial 1 000,00\nSolde final 1 250,00",
    ("resume", "en"): "Jane Doe\nCurriculum Vitae\nWork experience\n2019-2024 Engineer\n"
    "Education\nBSc Physics\nSkills\nPython, SQL",
    ("resume", "de"): "Max Mustermann\nLebenslauf\nBerufserfahrung\n2019-2024 Ingenieur\n"
    "Ausbildung\nB.Sc. Physik\nKenntnisse\nPython",
    ("resume", "fr"): "Marie Dupont\nCV\nExpérience professionnelle\n2019-2024 Ingénieure\n"
    "Formation\nLicence de physique\nCompétences\nPython",
}


@pytest.mark.parametrize(("expected", "language"), sorted(SAMPLES))
def test_each_type_is_recognised_in_each_language(expected: str, language: str) -> None:
    found = classify(_document(SAMPLES[expected, language]))
    assert found.type == expected, found.scores
    assert found.confidence >= 0.5
    assert set(found.scores) == set(DOCUMENT_TYPES)


def test_unrelated_text_is_other() -> None:
    found = classify(_document("The quick brown fox jumps over the lazy dog.", "Page two."))
    assert found == Classification("other", found.confidence, found.scores)
    assert all(score == 0 for score in found.scores.values())
    assert found.confidence == pytest.approx(1 / len(DOCUMENT_TYPES), abs=1e-3)


def test_empty_document_is_other() -> None:
    assert classify(_document("")).type == "other"


def test_more_evidence_means_more_confidence() -> None:
    weak = classify_text("Paid in cash")
    some = classify_text("RECEIPT\nTotal 3.50")
    strong = classify_text(SAMPLES["receipt", "en"])
    assert weak.type == some.type == strong.type == "receipt"
    assert weak.confidence < 0.5 < some.confidence < strong.confidence <= 1.0


def test_mixed_evidence_lowers_confidence() -> None:
    pure = classify_text(SAMPLES["invoice", "en"])
    mixed = classify_text(SAMPLES["invoice", "en"] + "\nOpening balance\nClosing balance")
    assert mixed.type == "invoice"
    assert mixed.confidence < pure.confidence


def test_heading_and_case_and_line_breaks_do_not_matter() -> None:
    assert classify_text("purchase\norder 77").type == "purchase_order"
    assert classify_text("P.O.# 77 and PO#78").type == "purchase_order"
    assert classify_text("INVOICE NUMBER 5").scores == classify_text("invoice number 5").scores


def test_deterministic_and_reads_only_the_first_pages() -> None:
    document = _document(*(["Weather report"] * 5), SAMPLES["invoice", "en"])
    assert classify(document).type == "other"
    assert classify(document) == classify(document)


def test_fast_enough_for_every_document() -> None:
    page = SAMPLES["invoice", "en"] * 20  # ~2,000 characters, a dense page
    document = _document(*([page] * 5))
    timings = []
    for _ in range(5):  # the best of several runs, so a busy machine does not fail the test
        started = time.perf_counter()
        for _ in range(10):
            classify(document)
        timings.append((time.perf_counter() - started) * 1000 / 10 / 5)
    assert min(timings) < 1.0


def test_german_compounds_count_as_their_stem() -> None:
    # "Handelsrechnung", "Rechnungssumme": German writes its terms as one word.
    found = classify_text("Handelsrechnung Nr. 5\nRechnungssumme 100,00\nBestellung vom 01.03.")
    assert found.type == "invoice"
    assert classify_text("Handelsrechnung").scores == classify_text("Rechnung").scores


def test_an_invoice_citing_its_order_is_not_a_purchase_order() -> None:
    text = "Rechnung\nRechnung gemäß Bestellung vom 01.03.2018\nLieferant GmbH\nBestellung 77"
    assert classify_text(text).type == "invoice"


def test_a_till_receipt_titled_tax_invoice_is_a_receipt() -> None:
    till = "SHOP SDN BHD\nTAX INVOICE\nInvoice No: 123\n2 x Tea 4.00\nTotal 8.00\n"
    paid = till + "Cash 10.00\nChange 2.00\n12/03/2018 15:35\nThank you"
    assert classify_text(paid).type == "receipt"
    # Without the till's signs the same words are an invoice's.
    billed = till + "Bill to: Acme Ltd\nDue date: 2018-04-01\nPayment terms: 30 days"
    assert classify_text(billed).type == "invoice"


def test_only_a_time_of_day_counts_as_a_sale_timestamp() -> None:
    assert classify_text("Total 12:30").scores["receipt"] > 0
    for not_a_time in ("Total 12.30", "Ref 123:45", "Version 1:2:3:4", "25:99"):
        assert classify_text(not_a_time).scores["receipt"] == 0, not_a_time
