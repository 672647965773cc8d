"""Generate the sample invoices and receipts shipped for the README demo.

Every company, person, address and number here is invented. The PDFs have a text layer and are
written with reportlab's ``invariant=1``, so running this script again produces byte-identical
files. Run from anywhere::

    python samples/make_samples.py

Each sample shows an invoice number, a date and a total in a different layout (label: value,
label above value, dotted receipt lines, a table total, a two-page invoice, plain text, Markdown
and HTML), so ``batchnb run samples/*.pdf ... --prompt "invoice number, date, total"`` has
something to find in each.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from reportlab.lib.pagesizes import A4, letter
from reportlab.pdfgen.canvas import Canvas

HERE = Path(__file__).resolve().parent / "documents"

Row = tuple[str, str, str, str]


def _canvas(name: str, pagesize: tuple[float, float], title: str) -> Canvas:
    canvas = Canvas(str(HERE / name), pagesize=pagesize, invariant=1)
    canvas.setTitle(title)
    canvas.setAuthor("batchnb samples")
    canvas.setCreator("samples/make_samples.py")
    return canvas


def _table(canvas: Canvas, top: float, header: Row, rows: Sequence[Row]) -> float:
    """Draw a four-column item table; returns the y below it."""
    columns = (50, 330, 410, 540)
    canvas.setFont("Helvetica-Bold", 10)
    canvas.drawString(columns[0], top, header[0])
    for x, text in zip(columns[1:], header[1:], strict=True):
        canvas.drawRightString(x, top, text)
    canvas.line(50, top - 4, 545, top - 4)
    canvas.setFont("Helvetica", 10)
    y = top - 18
    for row in rows:
        canvas.drawString(columns[0], y, row[0])
        for x, text in zip(columns[1:], row[1:], strict=True):
            canvas.drawRightString(x, y, text)
        y -= 15
    canvas.line(50, y + 10, 545, y + 10)
    return y - 6


def bluefin_invoice() -> None:
    """US invoice, "Label: value" header, totals block with "Total:"."""
    canvas = _canvas("bluefin-office-supplies-invoice.pdf", letter, "Invoice BOS-2024-0117")
    canvas.setFont("Helvetica-Bold", 18)
    canvas.drawString(50, 740, "Bluefin Office Supplies Ltd.")
    canvas.setFont("Helvetica", 10)
    canvas.drawString(50, 724, "418 Marlow Street, Suite 9")
    canvas.drawString(50, 710, "Portland, OR 97205")
    canvas.setFont("Helvetica-Bold", 14)
    canvas.drawString(400, 740, "INVOICE")
    canvas.setFont("Helvetica", 10)
    canvas.drawString(400, 722, "Invoice Number: BOS-2024-0117")
    canvas.drawString(400, 708, "Invoice Date: 2024-03-15")
    canvas.drawString(400, 694, "Due Date: 2024-04-14")
    canvas.drawString(50, 670, "Bill To: Tern & Heron Architects, 72 Quay Road, Salem, OR 97301")
    y = _table(
        canvas,
        630,
        ("Description", "Qty", "Unit Price", "Amount"),
        (
            ("Recycled copy paper, A4, box of 5 reams", "12", "$38.50", "$462.00"),
            ("Gel pens, blue, pack of 24", "10", "$14.20", "$142.00"),
            ("Ergonomic desk chair", "1", "$430.00", "$430.00"),
            ("Delivery", "1", "$110.14", "$110.14"),
        ),
    )
    canvas.drawString(400, y, "Subtotal:")
    canvas.drawRightString(540, y, "$1,144.14")
    canvas.drawString(400, y - 15, "Sales Tax (7.9%):")
    canvas.drawRightString(540, y - 15, "$90.36")
    canvas.setFont("Helvetica-Bold", 11)
    canvas.drawString(400, y - 32, "Total:")
    canvas.drawRightString(540, y - 32, "$1,234.50")
    canvas.setFont("Helvetica", 9)
    canvas.drawString(50, 80, "Payment terms: 30 days. Thank you for your business!")
    canvas.showPage()
    canvas.save()


def quillstone_invoice() -> None:
    """European invoice: each label on one line and its value on the next, amounts 1.234,50."""
    canvas = _canvas("quillstone-consulting-invoice.pdf", A4, "Invoice QC-4471")
    canvas.setFont("Helvetica-Bold", 16)
    canvas.drawString(50, 790, "Quillstone Consulting GmbH")
    canvas.setFont("Helvetica", 10)
    canvas.drawString(50, 775, "Lindenallee 12, 50668 Koeln, Germany")
    canvas.setFont("Helvetica-Bold", 22)
    canvas.drawString(50, 730, "Invoice")
    # Labels above their values, stacked in the right-hand column.
    blocks = (("Invoice No.", "QC-4471"), ("Date", "15.03.2024"), ("Customer", "Ostrander AG"))
    for index, (label, value) in enumerate(blocks):
        y = 745 - index * 32
        canvas.setFont("Helvetica-Bold", 9)
        canvas.drawString(400, y, label)
        canvas.setFont("Helvetica", 11)
        canvas.drawString(400, y - 13, value)
    y = _table(
        canvas,
        640,
        ("Service", "Days", "Rate", "Amount"),
        (
            ("Process review workshop", "3", "450,00 EUR", "1.350,00 EUR"),
            ("Data migration plan", "2", "315,00 EUR", "630,00 EUR"),
        ),
    )
    canvas.setFont("Helvetica", 10)
    canvas.drawString(330, y, "Net amount")
    canvas.drawRightString(540, y, "1.980,00 EUR")
    canvas.drawString(330, y - 15, "VAT 19%")
    canvas.drawRightString(540, y - 15, "376,20 EUR")
    canvas.setFont("Helvetica-Bold", 11)
    canvas.drawString(330, y - 34, "Total amount due")
    canvas.drawString(330, y - 48, "2.356,20 EUR")
    canvas.setFont("Helvetica", 9)
    canvas.drawString(50, 80, "Please transfer the amount within 14 days, quoting QC-4471.")
    canvas.showPage()
    canvas.save()


def harbor_lane_receipt() -> None:
    """Narrow till receipt with dotted leader lines and a date like 15 Mar 2024."""
    width, height = 226.0, 420.0
    canvas = _canvas("harbor-lane-bakery-receipt.pdf", (width, height), "Receipt 000482")
    canvas.setFont("Courier-Bold", 11)
    canvas.drawCentredString(width / 2, 395, "HARBOR LANE BAKERY")
    canvas.setFont("Courier", 8)
    canvas.drawCentredString(width / 2, 383, "3 Pier Street, Whitby YO21 3PU")
    lines = (
        "Receipt #: 000482",
        "Date: 15 Mar 2024  09:41",
        "Till 2   Server: Maeve",
        "--------------------------------",
        "2 x Sourdough loaf .......  7.60",
        "6 x Cinnamon bun ......... 13.20",
        "1 x Flat white ...........  2.60",
        "--------------------------------",
        "TOTAL ................ GBP 23.40",
        "Card ..................... 23.40",
        "Change .................... 0.00",
        "",
        "Thank you - see you soon!",
    )
    y = 360.0
    for line in lines:
        canvas.drawString(14, y, line)
        y -= 12
    canvas.showPage()
    canvas.save()


def pinecrest_invoice() -> None:
    """Two pages: header and items on page one, the grand total on page two."""
    canvas = _canvas("pinecrest-garden-invoice.pdf", letter, "Invoice PG-88213")
    canvas.setFont("Helvetica-Bold", 16)
    canvas.drawString(50, 740, "Pinecrest Garden Center")
    canvas.setFont("Helvetica", 10)
    canvas.drawString(50, 724, "9 Juniper Way, Asheville, NC 28801")
    canvas.drawString(50, 700, "Invoice # PG-88213")
    canvas.drawString(50, 686, "Issued: March 15, 2024")
    canvas.drawString(50, 672, "Customer: Wrenfield Community School")
    rows = [(f"Perennial seedlings, tray {n}", "4", "$62.50", "$250.00") for n in range(1, 13)]
    rows.append(("Raised bed kit, cedar", "2", "$205.00", "$410.00"))
    _table(canvas, 640, ("Item", "Qty", "Price", "Line total"), rows)
    canvas.drawString(50, 60, "Continued on page 2")
    canvas.showPage()
    canvas.setFont("Helvetica", 10)
    canvas.drawString(50, 740, "Invoice # PG-88213 (page 2 of 2)")
    summary = (("Items", "$3,410.00"), ("Shipping", "$0.00"), ("Sales tax", "$0.00"))
    y = 700.0
    for label, amount in summary:
        canvas.drawString(330, y, label)
        canvas.drawRightString(540, y, amount)
        y -= 15
    canvas.setFont("Helvetica-Bold", 12)
    canvas.drawString(330, y - 6, "Grand Total")
    canvas.drawRightString(540, y - 6, "USD 3,410.00")
    canvas.setFont("Helvetica", 9)
    canvas.drawString(50, 80, "Questions? Write to accounts@pinecrest.example")
    canvas.showPage()
    canvas.save()


TEXT_INVOICE = """\
MAPLEWOOD PRINT & COPY
27 Orchard Row, Burlington, VT 05401

INVOICE

Invoice Number    TXT-0042
Date              03/22/2024
Customer          Larkspur Theatre Company

Description                         Qty      Amount
Event posters, A2, full colour      150     $525.00
Programme booklets, 16 pages        200     $320.00

TOTAL DUE                                   $845.00

Paid by bank transfer within 30 days, please.
"""

MARKDOWN_INVOICE = """\
# Invoice from Copperleaf Web Studio

**Invoice number:** MD-2024-07
**Date:** 2 May 2024
**Client:** Saltmarsh Kayak Club

| Item                         | Hours | Rate    | Amount    |
|------------------------------|------:|--------:|----------:|
| Website redesign             |    18 | €75.00  | €1,350.00 |
| Booking calendar integration |     6 | €75.00  |   €450.00 |

| | |
|---|---:|
| Subtotal | €1,800.00 |
| VAT (10%) | €180.00 |
| **Total** | **€1,980.00** |

Thank you for choosing Copperleaf Web Studio.
"""

HTML_INVOICE = """\
<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>Invoice INV-H-311 - Ridgeback Bicycle Repair</title></head>
<body>
<h1>Ridgeback Bicycle Repair</h1>
<p>55 Canal Street, Leeds LS1 4AB</p>
<table>
  <tr><th>Invoice number</th><td>INV-H-311</td></tr>
  <tr><th>Invoice date</th><td>12 April 2024</td></tr>
  <tr><th>Customer</th><td>Fenwick Couriers</td></tr>
</table>
<table>
  <thead><tr><th>Work</th><th>Qty</th><th>Amount</th></tr></thead>
  <tbody>
    <tr><td>Full service, cargo bike</td><td>3</td><td>&pound;285.00</td></tr>
    <tr><td>Brake pads, hydraulic</td><td>6</td><td>&pound;96.00</td></tr>
    <tr><td>Chain and cassette</td><td>2</td><td>&pound;179.25</td></tr>
  </tbody>
  <tfoot><tr><th>Total due</th><td></td><td>&pound;560.25</td></tr></tfoot>
</table>
<p>Payment due within 14 days.</p>
</body>
</html>
"""


def text_samples() -> None:
    """The plain text, Markdown and HTML invoices."""
    for name, content in (
        ("maplewood-print-invoice.txt", TEXT_INVOICE),
        ("copperleaf-web-invoice.md", MARKDOWN_INVOICE),
        ("ridgeback-bicycle-invoice.html", HTML_INVOICE),
    ):
        (HERE / name).write_text(content, encoding="utf-8", newline="\n")


def main() -> None:
    """Write every sample into the folder of this script."""
    bluefin_invoice()
    quillstone_invoice()
    harbor_lane_receipt()
    pinecrest_invoice()
    text_samples()


if __name__ == "__main__":
    main()
