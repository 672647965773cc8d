"""Tables read from PDFs: ruled grids, borderless item tables, and their place in the page text."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from reportlab.pdfgen import canvas

from batchnb.documents.parsers import parse_document
from batchnb.documents.pdf_tables import MAX_TABLE_PAGES, clean_table, find_tables
from batchnb.documents.text import PDF_TABLES_VERSION
from tests.conftest import EVAL_DIR

RULED = [
    ["Item", "Qty", "Price"],
    ["Widget", "2", "5.00"],
    ["Gadget", "1", "12.50"],
]
ITEMS = [
    ("Description", "Qty", "Unit price", "Amount"),
    ("Consulting services", "3", "100.00", "300.00"),
    ("Travel expenses", "1", "45.50", "45.50"),
    ("Printed manuals", "10", "2.00", "20.00"),
]
COLUMNS = (72, 300, 360, 460)


def ruled_pdf() -> bytes:
    """A page with a short text and a 3 x 3 table drawn with lines around every cell."""
    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer)
    pdf.drawString(72, 760, "Order confirmation")
    xs, top, height = [72, 222, 302, 402], 700, 20
    for row, cells in enumerate(RULED):
        for col, cell in enumerate(cells):
            pdf.drawString(xs[col] + 4, top - height * row - 14, cell)
    for row in range(len(RULED) + 1):
        pdf.line(xs[0], top - height * row, xs[-1], top - height * row)
    for x in xs:
        pdf.line(x, top, x, top - height * len(RULED))
    pdf.showPage()
    pdf.save()
    return buffer.getvalue()


def borderless_pdf(*, wrapped: bool = False, pages: int = 1) -> bytes:
    """An invoice whose item table has a header and aligned columns but no lines."""
    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer)
    for _ in range(pages):
        pdf.drawString(72, 760, "ACME Ltd")
        pdf.drawString(72, 744, "Invoice Number: INV-7")
        y = 680
        for index, cells in enumerate(ITEMS):
            for x, cell in zip(COLUMNS, cells, strict=True):
                pdf.drawString(x, y, cell)
            y -= 16
            if wrapped and index == 1:
                pdf.drawString(COLUMNS[0], y, "(April, on site)")
                y -= 16
        pdf.drawString(360, y - 8, "Total")
        pdf.drawString(460, y - 8, "365.50")
        pdf.drawString(72, y - 120, "Thank you for your business")
        pdf.showPage()
    pdf.save()
    return buffer.getvalue()


def test_ruled_table_is_read_exactly() -> None:
    assert find_tables(ruled_pdf(), [1]) == {1: [RULED]}


def test_borderless_item_table_from_its_header() -> None:
    assert find_tables(borderless_pdf(), [1]) == {1: [[list(row) for row in ITEMS]]}


def test_wrapped_description_joins_its_row() -> None:
    (table,) = find_tables(borderless_pdf(wrapped=True), [1])[1]
    assert table[1] == ["Consulting services (April, on site)", "3", "100.00", "300.00"]
    assert len(table) == len(ITEMS)


def test_page_without_a_table() -> None:
    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer)
    pdf.drawString(72, 720, "Dear customer, thank you for your order.")
    pdf.showPage()
    pdf.save()
    assert find_tables(buffer.getvalue(), [1, 5]) == {}


def test_pages_are_bounded() -> None:
    data = borderless_pdf(pages=MAX_TABLE_PAGES + 2)
    found = find_tables(data, range(1, MAX_TABLE_PAGES + 3))
    assert sorted(found) == list(range(1, MAX_TABLE_PAGES + 1))


def test_clean_table_drops_empty_rows_and_columns() -> None:
    raw = [["  Item ", None, "Qty"], [None, None, None], ["Two\nlines", "", " 2 "]]
    assert clean_table(raw) == [["Item", "Qty"], ["Two lines", "2"]]


@pytest.mark.parametrize("data", [ruled_pdf(), borderless_pdf(wrapped=True)])
def test_tables_follow_the_unchanged_text_layer(data: bytes) -> None:
    plain = parse_document(data, "pdf")
    parsed = parse_document(data, "pdf", tables=True)
    (page,) = parsed.pages
    (table,) = page.tables
    assert page.text.startswith(plain.pages[0].text + "\n\n")
    assert page.text[table.start : table.end] == table.text
    assert page.text.endswith(table.text)
    assert table.header is not None and len(table.rows) >= 2
    assert parsed.parser == f"{plain.parser}+{PDF_TABLES_VERSION}"
    assert parsed.metadata == plain.metadata


def test_default_parse_has_no_tables() -> None:
    data = borderless_pdf()
    default = parse_document(data, "pdf")
    assert default == parse_document(data, "pdf", tables=False)
    assert all(not page.tables for page in default.pages)
    assert "\t" not in default.text


def test_tables_flag_is_ignored_by_other_kinds() -> None:
    data = b"Description\tQty\nWidget\t2\n"
    assert parse_document(data, "text", tables=True) == parse_document(data, "text")


Line = list[tuple[float, str]]


def drawn_pdf(lines: list[Line]) -> bytes:
    """One page with each line's words drawn at their x, a line every 16 points."""
    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer)
    pdf.drawString(72, 760, "ACME Ltd")
    for index, line in enumerate(lines):
        for x, text in line:
            pdf.drawString(x, 680 - 16 * index, text)
    pdf.showPage()
    pdf.save()
    return buffer.getvalue()


def only_table(lines: list[Line]) -> list[list[str]]:
    (table,) = find_tables(drawn_pdf(lines), [1])[1]
    return table


def test_header_words_set_close_head_the_columns_the_rows_keep_apart() -> None:
    # "VAT" and "Price incl. VAT" are closer than a column gap; the rows below are not.
    header: Line = [(72, "Item"), (250, "Qty"), (300, "VAT"), (330, "Price incl. VAT")]
    rows: list[Line] = [
        [(72, "Tablet"), (250, "1"), (300, "21%"), (380, "399.00")],
        [(72, "Cover"), (250, "2"), (300, "21%"), (386, "39.98")],
    ]
    assert only_table([header, *rows]) == [
        ["Item", "Qty", "VAT", "Price incl. VAT"],
        ["Tablet", "1", "21%", "399.00"],
        ["Cover", "2", "21%", "39.98"],
    ]


def test_header_words_over_one_wrapped_column_stay_one_cell() -> None:
    header: Line = [(72, "Item description"), (300, "Qty"), (460, "Amount")]
    rows: list[Line] = [
        [(72, "Consulting on site"), (300, "3"), (460, "300.00")],
        [(72, "Pen"), (300, "1"), (460, "2.00")],
    ]
    assert only_table([header, *rows])[0] == ["Item description", "Qty", "Amount"]


HEADER: Line = [(72, "Description"), (300, "Qty"), (360, "Price"), (460, "Amount")]


def test_an_amount_on_the_line_below_completes_its_row() -> None:
    # Quantity and price on the item's first line, its amount (and a code) on the second.
    lines: list[Line] = [
        HEADER,
        [(72, "Artificial turf 3m"), (300, "3"), (360, "3.3333")],
        [(72, "GTIN 4012345001235"), (460, "10.00")],
        [(72, "Pork steak"), (300, "5"), (360, "5.50")],
        [(72, "GTIN 4000050986428"), (460, "27.50")],
    ]
    assert only_table(lines)[1:] == [
        ["Artificial turf 3m", "3", "3.3333", "10.00"],
        ["Pork steak", "5", "5.50", "27.50"],
    ]


def test_a_detail_line_is_neither_a_row_nor_part_of_the_description() -> None:
    lines: list[Line] = [
        HEADER,
        [(72, "Tablet 16 GB"), (300, "1"), (360, "399.00"), (460, "399.00")],
        [(72, "Serial number: SDMPP373MPP15")],
        [(72, "Cover for the"), (300, "1"), (360, "69.99"), (460, "69.99")],
        [(72, "tablet, black")],
    ]
    assert only_table(lines)[1:] == [
        ["Tablet 16 GB", "1", "399.00", "399.00"],
        ["Cover for the tablet, black", "1", "69.99", "69.99"],
    ]


def test_a_section_subtotal_and_title_do_not_end_the_table_but_a_totals_block_does() -> None:
    lines: list[Line] = [
        HEADER,
        [(72, "Office chair"), (300, "1"), (360, "70.00"), (460, "70.00")],
        [(360, "Subtotal"), (460, "70.00")],
        [(72, "--- Food ---")],
        [(72, "Olive oil"), (300, "15"), (360, "10.00"), (460, "150.00")],
        [(360, "Subtotal"), (460, "150.00")],
        [(360, "Tax 15%"), (460, "33.00")],
        [(360, "Amount due"), (460, "253.00")],
    ]
    assert only_table(lines)[1:] == [
        ["Office chair", "1", "70.00", "70.00"],
        ["Olive oil", "15", "10.00", "150.00"],
    ]


def test_lines_after_the_last_amount_are_not_items() -> None:
    # An invoice discount under the items: figures, but no line amount.
    lines: list[Line] = [
        HEADER,
        [(72, "Widget"), (300, "2"), (360, "5.00"), (460, "10.00")],
        [(72, "Gadget"), (300, "1"), (360, "12.50"), (460, "12.50")],
        [(72, "Invoice discount 2% of 22.50"), (360, "-0.45")],
    ]
    assert only_table(lines)[1:] == [
        ["Widget", "2", "5.00", "10.00"],
        ["Gadget", "1", "12.50", "12.50"],
    ]


def _eval_document(name: str) -> bytes:
    path = EVAL_DIR / "documents" / name
    if not path.is_file():
        pytest.skip(f"the evaluation folder has no {name} ({EVAL_DIR}, docs/evaluation.md)")
    return path.read_bytes()


def test_real_invoice_whose_amount_column_shares_its_header_line() -> None:
    (table,) = find_tables(_eval_document("i2d__coolblue1.pdf"), [1])[1]
    assert table[0][-1] == "Prijs incl. BTW"
    assert [row[-1] for row in table[1:]] == [
        "€ 399,00", "€ 4,24", "€ 69,99", "€ 189,00", "€ 14,99", "€ 44,99"
    ]  # fmt: skip


def test_real_invoice_whose_amounts_sit_on_each_items_second_line() -> None:
    (table,) = find_tables(_eval_document("zugferd__EN16931_Rabatte.pdf"), [2])[2]
    assert [row[-1] for row in table[1:]] == ["10,00", "27,50", "109,80", "55,40"]
    descriptions = [row[2] for row in table[1:]]
    assert [text.split()[0] for text in descriptions] == [
        "Kunstrasen", "Schweinesteak", "Mineralwasser", "Pfand"
    ]  # fmt: skip
    assert not any("Bruttopreis" in text for text in descriptions)


def test_real_invoice_with_section_subtotals() -> None:
    (table,) = find_tables(_eval_document("i2d__AzureInterior.pdf"), [1])[1]
    assert [row[-1] for row in table[1:]] == ["$ 42.00", "$ 70.00", "$ 0.90", "$ 150.00"]


def test_a_currency_sign_set_apart_does_not_split_its_columns_header() -> None:
    header: Line = [(72, "Description"), (300, "Unit Price"), (460, "Amount")]
    rows: list[Line] = [
        [(72, "Widget"), (300, "$"), (340, "12.00"), (460, "24.00")],
        [(72, "Gadget"), (300, "$"), (346, "8.50"), (460, "8.50")],
    ]
    assert only_table([header, *rows]) == [
        ["Description", "Unit Price", "Amount"],
        ["Widget", "$ 12.00", "24.00"],
        ["Gadget", "$ 8.50", "8.50"],
    ]


def test_net_and_tax_lines_under_the_amounts_end_the_table_an_item_named_so_does_not() -> None:
    lines: list[Line] = [
        HEADER,
        [(72, "Tax advice"), (300, "2"), (360, "150.00"), (460, "300.00")],
        [(72, "Bookkeeping"), (300, "1"), (360, "80.00"), (460, "80.00")],
        [(300, "Net amount"), (460, "380.00")],
        [(300, "VAT 19%"), (460, "72.20")],
    ]
    assert only_table(lines)[1:] == [
        ["Tax advice", "2", "150.00", "300.00"],
        ["Bookkeeping", "1", "80.00", "80.00"],
    ]


def test_sample_invoice_items_without_its_totals() -> None:
    sample = Path(__file__).resolve().parents[2] / "samples" / "documents"
    data = (sample / "quillstone-consulting-invoice.pdf").read_bytes()
    (table,) = find_tables(data, [1])[1]
    assert [row[0] for row in table[1:]] == ["Process review workshop", "Data migration plan"]


POSITIONS: Line = [(72, "Pos"), (110, "Description"), (300, "Qty"), (360, "Price"), (460, "Amount")]


def test_one_figure_and_a_total_word_right_of_the_first_column_end_the_table() -> None:
    lines: list[Line] = [
        POSITIONS,
        [(72, "1"), (110, "Total Care kit"), (300, "2"), (360, "9.50"), (460, "19.00")],
        [(72, "2"), (110, "Cleaning tablets"), (300, "1"), (360, "5.00"), (460, "5.00")],
        [(110, "Prices include VAT"), (300, "Invoice total EUR"), (460, "24.00")],
    ]
    assert [row[1] for row in only_table(lines)[1:]] == ["Total Care kit", "Cleaning tablets"]


def test_real_invoice_whose_total_line_starts_with_a_note() -> None:
    (table,) = find_tables(_eval_document("i2d__saeco.pdf"), [1])[1]
    assert table[0][-2:] == ["Hoeveelheid", "Bedrag"]
    assert [row[-2:] for row in table[1:]] == [["1 PCS", "49,99"], ["1 PCS", "0,00"]]


def test_a_sentence_across_the_table_is_neither_a_row_nor_part_of_one() -> None:
    # Figures in the sentence (dates) would make it a row waiting for its amount.
    note = "Important: orders placed by 19.12. are delivered by 23.12. at the latest."
    lines: list[Line] = [
        HEADER,
        [(72, note)],
        [(72, "Lemon juice 100ml"), (300, "100"), (360, "1.00"), (460, "100.00")],
        [(72, "Jam sugar 250g"), (300, "50"), (360, "1.45"), (460, "72.50")],
    ]
    assert only_table(lines)[1:] == [
        ["Lemon juice 100ml", "100", "1.00", "100.00"],
        ["Jam sugar 250g", "50", "1.45", "72.50"],
    ]


def test_real_invoice_with_a_notice_set_across_its_item_table() -> None:
    (table,) = find_tables(_eval_document("zugferd__additional-data-sample-1.pdf"), [1])[1]
    assert table[1][1].startswith("ZS997 Zitronensäure 100ml")
    assert not any("Bestellungen" in cell for row in table for cell in row)
