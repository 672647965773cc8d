"""First parsers: a document's bytes to :class:`~batchnb.documents.parsed.ParsedDocument`.

PDF text layers go through pypdfium2 (it kept label/value pairs and table rows intact and was
the fastest of the PDF libraries measured, about 500 pages/s; ``benchmarks/parse_extract.py``
measures it); plain text and markdown are decoded here, HTML pages in
:mod:`~batchnb.documents.html`. Word documents are read by :mod:`~batchnb.documents.office`,
Excel workbooks and CSV files by :mod:`~batchnb.documents.spreadsheets` (imported on first use:
they load python-docx and openpyxl). Images, and PDF pages without a text layer (scans), are
read by OCR in :mod:`~batchnb.documents.ocr` (``batchnb[ocr]`` and the tesseract program); a
PDF with a text layer never touches it. Every failure a document can cause is a
``DocumentError`` whose message names the problem, because it is shown to the user on the
document's row.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import replace
from types import MappingProxyType
from typing import TYPE_CHECKING, BinaryIO

import pypdfium2

from batchnb.documents.parsed import Page, ParsedDocument, Table
from batchnb.documents.text import (
    MAX_TEXT_BYTES,
    PARSER_VERSION,
    PDF_TABLES_VERSION,
    decode_text,
    normalise_newlines,
)
from batchnb.errors import DocumentError, MissingDependencyError

if TYPE_CHECKING:
    from PIL import Image

#: PDFs with more pages are refused, so one document cannot hold a worker for hours.
MAX_PDF_PAGES = 2000
#: PDFs with more pages without a text layer are refused: OCR takes 2-3 s a page.
MAX_OCR_PAGES = 50
#: Scanned PDF pages are rendered at this resolution for OCR: Tesseract reads printed text
#: well at 200 dpi, and rendering a page takes about 0.2 s.
OCR_DPI = 200

#: Documents of kinds other than PDF are read into memory whole; larger files are refused
#: unread (text kinds at ``MAX_TEXT_BYTES``). PDFs are read from their stream on demand.
MAX_IN_MEMORY_BYTES = 256 * 1024 * 1024
_TEXT_KINDS = frozenset({"text", "markdown", "html", "csv"})

#: What a parser reads: a document's bytes, or a seekable binary stream (e.g.
#: ``Storage.open(key)``), which must stay open until parsing returns.
DocumentSource = bytes | BinaryIO

# PDFium is not thread-safe, not even across different documents: worker threads take turns.
_PDFIUM_LOCK = threading.Lock()
# PDFium load error codes (FPDF_ERR_PASSWORD, FPDF_ERR_SECURITY).
_PDF_PASSWORD_ERRORS = frozenset({4, 5})


def parse_document(source: DocumentSource, kind: str, *, tables: bool = False) -> ParsedDocument:
    """Parse ``source`` as a document of ``kind`` (a :class:`FileType` kind, e.g. ``"pdf"``).

    ``source`` is the document's bytes or a seekable binary stream. A PDF stream is read on
    demand, so a large (or large and broken) PDF never sits in memory whole; other kinds are
    read whole, and a stream larger than their limit is refused before a byte is read.

    ``tables=True`` also reads the tables of a PDF's pages (see
    :mod:`~batchnb.documents.pdf_tables`; about 0.1 s a page, so ask only when a schema has
    array fields). The text layer stays first and unchanged; each table found is appended to
    its page's text after a blank line, as tab-separated lines, and ``Page.tables`` points at
    it. Other kinds ignore ``tables`` (their parsers always fill ``Page.tables``).

    Raises
    ------
    DocumentError
        The document cannot be parsed: corrupt or encrypted file, no text (not even by OCR),
        too many pages or cells, a ZIP or decompression bomb, or no parser for ``kind``. The
        message says which.
    MissingDependencyError
        An image or a scanned PDF needs OCR, and Pillow, pytesseract or the tesseract program
        is not installed. The message says what to install.
    """
    parser = _PARSERS.get(kind)
    if parser is None:
        supported = ", ".join(sorted(_PARSERS))
        raise DocumentError(
            f"no parser for {kind!r} documents; parsable kinds: {supported}", kind="unsupported"
        )
    if kind != "pdf":
        return parser(_read_whole(source, kind))
    document = _parse_pdf(source)
    if tables:
        return _with_pdf_tables(source, document)
    return document


def _read_whole(source: DocumentSource, kind: str) -> bytes:
    if isinstance(source, bytes):
        return source
    limit = MAX_TEXT_BYTES if kind in _TEXT_KINDS else MAX_IN_MEMORY_BYTES
    size = source.seek(0, os.SEEK_END)
    if size > limit:
        raise DocumentError(
            f"the file is too large to parse: {size / 1024 / 1024:,.1f} MiB (the limit for "
            f"{kind} documents is {limit // 1024 // 1024} MiB)",
            kind="too_large",
        )
    source.seek(0)
    return source.read()


def _with_pdf_tables(source: DocumentSource, document: ParsedDocument) -> ParsedDocument:
    """``document`` with the PDF's tables appended to their pages' text (see parse_document)."""
    from batchnb.documents.pdf_tables import find_tables

    found = find_tables(source, [page.number for page in document.pages if page.text.strip()])
    pages = list(document.pages)
    for number, tables in found.items():
        page = pages[number - 1]
        text, placed = page.text, list(page.tables)
        for rows in tables:
            table = Table.of([tuple(row) for row in rows], header=True)
            text = f"{text}\n\n" if text else text
            placed.append(table.at(len(text)))
            text += table.text
        pages[number - 1] = replace(page, text=text, tables=tuple(placed))
    return replace(document, pages=tuple(pages), parser=f"{document.parser}+{PDF_TABLES_VERSION}")


def _parse_pdf(source: DocumentSource) -> ParsedDocument:
    with _PDFIUM_LOCK:
        document = _open_pdf(source)
        try:
            page_count = len(document)
            if page_count == 0:
                raise DocumentError("not a readable PDF: it has no pages", kind="empty")
            if page_count > MAX_PDF_PAGES:
                raise DocumentError(
                    f"too many pages: {page_count:,} (the limit is {MAX_PDF_PAGES:,}); "
                    "split the PDF into smaller files",
                    kind="too_large",
                )
            pages = [
                Page(number, _pdf_page_text(document, number))
                for number in range(1, page_count + 1)
            ]
        except BaseException:
            document.close()
            raise
    empty = [page.number for page in pages if not page.text.strip()]
    metadata = {"pages": str(page_count), "pages_without_text": str(len(empty))}
    parser = PARSER_VERSION["pdf"]
    try:
        if empty:
            ocr_parser = _ocr_pdf_pages(document, pages, empty, all_empty=len(empty) == page_count)
            if ocr_parser is not None:
                parser = ocr_parser
                metadata["pages_ocr"] = str(len(empty))
                metadata["pages_without_text"] = str(sum(not p.text.strip() for p in pages))
    finally:
        with _PDFIUM_LOCK:
            document.close()
    if all(not page.text.strip() for page in pages):
        raise DocumentError(
            f"the PDF has no text layer on any of its {page_count} page(s) (a scanned "
            "document?) and OCR found no text on them either",
            kind="empty",
        )
    return ParsedDocument(pages=tuple(pages), parser=parser, metadata=metadata)


def _open_pdf(source: DocumentSource) -> pypdfium2.PdfDocument:
    if not isinstance(source, bytes):
        source.seek(0)
    try:
        return pypdfium2.PdfDocument(source)
    except pypdfium2.PdfiumError as exc:
        if getattr(exc, "err_code", None) in _PDF_PASSWORD_ERRORS:
            raise DocumentError(
                "the PDF is encrypted/password-protected: save an unprotected copy and "
                "add that instead",
                kind="encrypted",
            ) from None
        raise DocumentError(f"not a readable PDF: {exc}") from None


def _ocr_pdf_pages(
    document: pypdfium2.PdfDocument, pages: list[Page], numbers: list[int], *, all_empty: bool
) -> str | None:
    """OCR the pages ``numbers`` (no text layer) in place; returns the parser version.

    A PDF that has text elsewhere keeps its empty pages when OCR is not installed (``None``),
    as before OCR existed; a PDF with no text at all needs OCR, and says what to install.
    """
    from batchnb.documents import ocr, ocr_policy

    try:
        engine = ocr_policy.default_engine()
    except MissingDependencyError as exc:
        if not all_empty:
            return None
        exc.args = (
            f"the PDF has no text layer on any of its {len(pages)} page(s) (a scanned "
            f"document?); reading it needs OCR: {exc}",
        )
        raise
    if len(numbers) > MAX_OCR_PAGES:
        raise DocumentError(
            f"too many pages without a text layer: {len(numbers):,} (OCR reads at most "
            f"{MAX_OCR_PAGES} per document); split the PDF into smaller files",
            kind="too_large",
        )
    for number in numbers:
        # Render under the lock, recognise outside it: OCR is the slow part.
        with _PDFIUM_LOCK:
            image = _render_pdf_page(document, number)
        low, high = image.getextrema()
        if low == high:  # a blank page: nothing to read
            continue
        result = engine.recognize(image)
        pages[number - 1] = Page(number, result.text, words=result.words)
    return f"{PARSER_VERSION['pdf']}+{ocr.parser_version(engine)}"


def _render_pdf_page(document: pypdfium2.PdfDocument, number: int) -> Image.Image:
    page = document[number - 1]
    try:
        bitmap = page.render(scale=OCR_DPI / 72, grayscale=True)
        try:
            image: Image.Image = bitmap.to_pil().convert("L")
        finally:
            bitmap.close()
    finally:
        page.close()
    return image


def _pdf_page_text(document: pypdfium2.PdfDocument, number: int) -> str:
    try:
        page = document[number - 1]
    except pypdfium2.PdfiumError as exc:
        raise DocumentError(f"not a readable PDF: page {number} cannot be loaded ({exc})") from None
    try:
        textpage = page.get_textpage()
        try:
            text: str = textpage.get_text_range()
        finally:
            textpage.close()
    finally:
        page.close()
    # A form feed inside a page would read as a page break in ParsedDocument.text.
    return normalise_newlines(text).replace("\f", "\n")


def _parse_text(data: bytes) -> ParsedDocument:
    text, encoding = decode_text("text file", data)
    # A form feed is a page break in text files and in ParsedDocument.text alike.
    pages = tuple(Page(number, page) for number, page in enumerate(text.split("\f"), start=1))
    return ParsedDocument(
        pages=pages, parser=PARSER_VERSION["text"], metadata={"encoding": encoding}
    )


def _parse_docx(data: bytes) -> ParsedDocument:
    from batchnb.documents.office import parse_docx

    return parse_docx(data)


def _parse_xlsx(data: bytes) -> ParsedDocument:
    from batchnb.documents.spreadsheets import parse_xlsx

    return parse_xlsx(data)


def _parse_csv(data: bytes) -> ParsedDocument:
    from batchnb.documents.spreadsheets import parse_csv

    return parse_csv(data)


def _parse_image(data: bytes, kind: str) -> ParsedDocument:
    # OCR is chosen by BATCHNB_OCR_ENGINE (batchnb.documents.ocr_policy).
    from batchnb.documents.ocr import parse_image
    from batchnb.documents.ocr_policy import default_engine

    return parse_image(data, kind, default_engine())


def _parse_png(data: bytes) -> ParsedDocument:
    return _parse_image(data, "png")


def _parse_jpeg(data: bytes) -> ParsedDocument:
    return _parse_image(data, "jpeg")


def _parse_tiff(data: bytes) -> ParsedDocument:
    return _parse_image(data, "tiff")


def _parse_markdown(data: bytes) -> ParsedDocument:
    text, encoding = decode_text("Markdown file", data)
    pages = tuple(Page(number, page) for number, page in enumerate(text.split("\f"), start=1))
    return ParsedDocument(
        pages=pages, parser=PARSER_VERSION["markdown"], metadata={"encoding": encoding}
    )


def _parse_html(data: bytes) -> ParsedDocument:
    from batchnb.documents.html import parse_html

    return parse_html(data)


_PARSERS: Mapping[str, Callable[[bytes], ParsedDocument]] = MappingProxyType(
    {
        "pdf": _parse_pdf,
        "text": _parse_text,
        "csv": _parse_csv,
        "markdown": _parse_markdown,
        "html": _parse_html,
        "docx": _parse_docx,
        "xlsx": _parse_xlsx,
        "png": _parse_png,
        "jpeg": _parse_jpeg,
        "tiff": _parse_tiff,
    }
)
