"""HTML tables: written like Word tables (tab-separated rows) and recorded at their offsets."""

from __future__ import annotations

from batchnb.documents import parse_document
from batchnb.documents.parsed import Page

from .grounding import assert_table_grounded


def _page(html: str) -> Page:
    (page,) = parse_document(html.encode(), "html").pages
    for table in page.tables:
        assert_table_grounded(page, table)
    return page


def test_a_header_like_first_row_of_td_cells_is_the_header() -> None:
    page = _page(
        "<p>Invoice 7</p><table>"
        "<tr><td>Description</td><td>Qty</td><td>Amount</td></tr>"
        "<tr><td>Tea</td><td>2</td><td>7.00</td></tr></table><p>Thanks</p>"
    )
    assert page.text == "Invoice 7\nDescription\tQty\tAmount\nTea\t2\t7.00\nThanks"
    (table,) = page.tables
    assert table.header == ("Description", "Qty", "Amount")
    assert table.rows == (("Tea", "2", "7.00"),)


def test_a_label_column_of_th_cells_is_no_header() -> None:
    page = _page(
        "<table><tr><th>Invoice number</th><td>INV-1</td></tr>"
        "<tr><th>Date</th><td>1 May 2024</td></tr></table>"
    )
    (table,) = page.tables
    assert table.header is None
    assert table.rows == (("Invoice number", "INV-1"), ("Date", "1 May 2024"))


def test_cells_stay_on_their_row_and_optional_end_tags_may_be_left_out() -> None:
    page = _page(
        "<table><caption>Items</caption>"
        "<thead><tr><th>Item<th>Price</thead>"
        "<tr><td>Tea<br>green,\n  loose<td>3.50"
        "<tr><td><p>Cake</p><td>\t2.00"
        "<tr><td></td><td></td></tr>"
        "</table>After"
    )
    assert page.text == "Items\nItem\tPrice\nTea green, loose\t3.50\nCake\t2.00\nAfter"
    (table,) = page.tables
    assert table.header == ("Item", "Price")
    assert table.rows == (("Tea green, loose", "3.50"), ("Cake", "2.00"))


def test_a_layout_table_stays_text_and_the_table_inside_it_is_recorded() -> None:
    page = _page(
        "<table><tr><td><h1>ACME</h1><p>Invoice number: 9</p></td><td>Logo</td></tr>"
        "<tr><td><table><tr><th>Product</th><th>Price</th></tr>"
        "<tr><td>Pen</td><td>1.00</td></tr></table></td></tr></table>"
        "<table><tr><td>Second</td><td>table</td></tr></table>"
    )
    assert page.text == "ACME\nInvoice number: 9\nLogo\nProduct\tPrice\nPen\t1.00\nSecond\ttable"
    inner, second = page.tables
    assert (inner.header, inner.rows) == (("Product", "Price"), (("Pen", "1.00"),))
    assert (second.header, second.rows) == (None, (("Second", "table"),))


def test_an_unclosed_table_ends_with_the_page() -> None:
    page = _page("<p>Top</p><table><tr><td>Item</td><td>Amount<tr><td>Pen<td>1.00")
    assert page.text == "Top\nItem\tAmount\nPen\t1.00"
    (table,) = page.tables
    assert table.header == ("Item", "Amount")
