"""Till receipt readers: shop name, address and total from a receipt's layout."""

from __future__ import annotations

from batchnb.documents.parsed import Page, ParsedDocument
from batchnb.extract import schema_from_prompt
from batchnb.extract.offline import OfflineExtractor
from batchnb.extract.offline.layout import PageLines
from batchnb.extract.offline.receipts import (
    looks_like_receipt,
    receipt_address,
    receipt_company,
    receipt_total,
)

RECEIPT = """\
POPULAR BOOK
CO. (M) SDN BHD
(Co. No. 113824-W)
(GST Reg No. 001492992596)
NO 8, JALAN 7/118B,
DESA TUN RAZAK
56000 KUALA LUMPUR
Tel : 03-55235214
27/02/18 21:22 Slip No.: 8020188757
Sub Total 38.90
Total RM Incl. of GST 40.99
Rounding Adj 0. 01
Total RM 41. 00
Cash 51.00
CHANGE 10.00
GST Summary Amount Tax
Total 33.95 2.04
"""


def _page(text: str) -> PageLines:
    return PageLines.of(1, text)


def test_receipt_is_recognised_by_its_words() -> None:
    assert looks_like_receipt(RECEIPT)
    assert not looks_like_receipt("INVOICE\nAcme GmbH\nTotal EUR 12.00\nDue date 01.02.2024")


def test_company_joins_a_name_finished_by_its_legal_form() -> None:
    found = receipt_company(_page(RECEIPT))
    assert found is not None
    assert found[0].value == "POPULAR BOOK CO. (M) SDN BHD"
    assert found[1] == 1


def test_company_drops_a_trailing_registration_number() -> None:
    page = _page("SUSHI - CHERAS\nMIZU MENTAI SDN. BHD. (1248446-V)\nNO 1, JALAN 13/9\n")
    found = receipt_company(page)
    assert found is not None
    assert found[0].value == "MIZU MENTAI SDN. BHD."
    assert page.text[found[0].start : found[0].end] == "MIZU MENTAI SDN. BHD."


def test_company_without_legal_form_is_the_first_line_in_capitals() -> None:
    found = receipt_company(_page("ee severe. ee\nGOLDEN KEY MAKER\nNO 5, JALAN KENARI 2\n"))
    assert found is not None
    assert found[0].value == "GOLDEN KEY MAKER"


def test_address_skips_ids_and_stops_at_the_postcode() -> None:
    page = _page(RECEIPT)
    found = receipt_address(page)
    assert found is not None
    assert found.value == "NO 8, JALAN 7/118B, DESA TUN RAZAK 56000 KUALA LUMPUR"
    assert page.text[found.start : found.end].startswith("NO 8")
    assert page.text[found.start : found.end].endswith("KUALA LUMPUR")


def test_address_stops_at_the_phone_line() -> None:
    page = _page("SYARIKAT GIN KEE\n(81109-A)\nNO 290, JALAN AIR PANAS,\nSETAPAK,\nTEL : 03-4021\n")
    found = receipt_address(page)
    assert found is not None
    assert found.value == "NO 290, JALAN AIR PANAS, SETAPAK,"


def test_total_is_the_last_total_read_through_ocr_spaces() -> None:
    page = _page(RECEIPT)
    found = receipt_total(page)
    assert found is not None
    assert found.value == {"amount": 41.0, "currency": "MYR"}
    assert page.text[found.start : found.end] == "41. 00"


def test_total_prefers_a_rounded_total_and_skips_sub_totals() -> None:
    text = "Nett Total: 9.20\nTotal Qty 3\nSUB TOTAL 9.18\nTotal GST: 0.52\nT0TAL 9,18\n"
    found = receipt_total(_page(text))
    assert found is not None
    assert found.value == {"amount": 9.2, "currency": None}


def test_offline_extractor_reads_a_receipt_day_first() -> None:
    text = RECEIPT.replace("27/02/18", "06/08/2017")
    document = ParsedDocument(pages=(Page(1, text),), parser="test")
    schema = schema_from_prompt("Extract the company name, date, address and total.")
    result = OfflineExtractor().extract(document, schema).data()
    assert result["company_name"] == "POPULAR BOOK CO. (M) SDN BHD"
    assert result["date"] == "2017-08-06"
    assert result["total"] == {"amount": 41.0, "currency": "MYR"}
    assert str(result["address"]).startswith("NO 8, JALAN")


def test_total_label_must_open_its_line() -> None:
    text = "Total After Adj Incl GST 26.10\nGST @6% included in total RM 1.48\nA Total 24.63 1.48\n"
    found = receipt_total(_page(text))
    assert found is not None
    assert found.value == {"amount": 26.1, "currency": None}
