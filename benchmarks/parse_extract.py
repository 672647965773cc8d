"""Parse + extract throughput against the PDF parser alone, measured in the same run.

Generates invoice PDFs with a text layer (reportlab), then times, over the same files:

1. baseline: pypdfium2 text extraction alone (open, ``get_text_range`` per page, close);
2. batchnb's parser: ``parse_document(data, "pdf")``;
3. the whole path without queue or database: parse, prompt → schema, offline extraction.

It prints pages per second for each and the ratio of 3 to 1 (aim: within 1.25x).

Run: ``.venv/bin/python benchmarks/parse_extract.py [--documents 200] [--repeat 3] [--smoke]``
(``--smoke``: 3 invoices, one run; checks the script, its figures mean nothing.)
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import time
from collections.abc import Callable

import pypdfium2 as pdfium
from reportlab.lib.pagesizes import A4
from reportlab.pdfgen.canvas import Canvas

from batchnb.documents.parsers import parse_document
from batchnb.extract import get_extractor, schema_from_prompt

PROMPT = "invoice number, invoice date, due date, total amount, tax amount, currency"


def make_invoice(number: int, pages: int) -> bytes:
    """A generated invoice of ``pages`` pages with labelled header fields and item rows."""
    buffer = io.BytesIO()
    canvas = Canvas(buffer, pagesize=A4, invariant=1)
    for page in range(pages):
        canvas.setFont("Helvetica-Bold", 16)
        canvas.drawString(50, 800, f"Northwind Components {number % 17} GmbH")
        canvas.setFont("Helvetica", 10)
        canvas.drawString(50, 780, f"Invoice Number: NW-{number:06d}")
        canvas.drawString(50, 765, f"Invoice Date: 2024-03-{1 + number % 28:02d}")
        canvas.drawString(50, 750, f"Due Date: 2024-04-{1 + number % 28:02d}")
        y = 720
        for item in range(30):
            amount = (number * 7 + item * 13) % 900 + 0.5
            canvas.drawString(50, y, f"Item {page}-{item} widget, grade {item % 5}")
            canvas.drawRightString(400, y, str(1 + item % 9))
            canvas.drawRightString(540, y, f"{amount:,.2f} EUR")
            y -= 18
        if page == pages - 1:
            canvas.drawString(350, y - 10, f"Tax: {number % 300 + 0.25:,.2f} EUR")
            canvas.drawString(350, y - 25, f"Total: {number % 5000 + 1000.75:,.2f} EUR")
        canvas.showPage()
    canvas.save()
    return buffer.getvalue()


def pdfium_alone(documents: list[bytes]) -> int:
    pages = 0
    for data in documents:
        pdf = pdfium.PdfDocument(data)
        try:
            for index in range(len(pdf)):
                page = pdf[index]
                text_page = page.get_textpage()
                text_page.get_text_range()
                text_page.close()
                page.close()
                pages += 1
        finally:
            pdf.close()
    return pages


def batchnb_parser(documents: list[bytes]) -> int:
    return sum(parse_document(data, "pdf").page_count for data in documents)


def parse_and_extract(documents: list[bytes]) -> int:
    extractor = get_extractor("offline")
    pages = 0
    for data in documents:
        parsed = parse_document(data, "pdf")
        extractor.extract(parsed, schema_from_prompt(PROMPT))
        pages += parsed.page_count
    return pages


def rates(
    runs: dict[str, Callable[[list[bytes]], int]], documents: list[bytes], repeat: int
) -> dict[str, float]:
    """Median pages per second of each run; the runs take turns, so load drift hits all."""
    samples: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeat):
        for name, run in runs.items():
            started = time.perf_counter()
            pages = run(documents)
            samples[name].append(pages / (time.perf_counter() - started))
    return {name: statistics.median(values) for name, values in samples.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--documents", type=int, default=200, help="invoices to generate")
    parser.add_argument("--repeat", type=int, default=5, help="runs per measurement (median)")
    parser.add_argument(
        "--smoke", action="store_true", help="3 invoices, one run: checks the script itself"
    )
    args = parser.parse_args()
    if args.smoke:
        args.documents, args.repeat = 3, 1
    documents = [make_invoice(n, pages=1 + n % 3) for n in range(args.documents)]
    page_count = pdfium_alone(documents)
    parse_and_extract(documents[:5])  # warm up: imports, registry, compiled patterns
    print(
        f"{args.documents} generated invoices, {page_count} pages; {os.cpu_count()} CPUs; "
        f"load average {os.getloadavg()[0]:.2f}"
    )
    measured = rates(
        {"pdfium": pdfium_alone, "parser": batchnb_parser, "whole": parse_and_extract},
        documents,
        args.repeat,
    )
    baseline, parser_only, whole = measured["pdfium"], measured["parser"], measured["whole"]
    print(f"{'measurement':<44}{'pages/s':>10}{'vs pypdfium2':>14}")
    print(f"{'1. pypdfium2 get_text_range alone':<44}{baseline:>10.0f}{1.0:>13.2f}x")
    print(
        f"{'2. batchnb parse_document (pdf)':<44}{parser_only:>10.0f}"
        f"{baseline / parser_only:>13.2f}x"
    )
    print(f"{'3. parse + schema + offline extract':<44}{whole:>10.0f}{baseline / whole:>13.2f}x")
    verdict = "OK" if baseline / whole <= 1.25 else "MISS"
    print(f"whole path within 1.25x of the parser alone: {verdict} ({baseline / whole:.2f}x)")


if __name__ == "__main__":
    main()
