"""The real type of a file, read from its first bytes rather than trusted from its name.

Intake uses this to refuse files that are not what their name says (an HTML error page saved
as ``invoice.pdf`` is the classic case) and to route each accepted file to the right parser.
The detector is deliberately small: magic numbers for binary formats, the member names of ZIP
containers for Office files, and a text check (UTF-8, UTF-16 with BOM, or legacy 8-bit text
without NULs) for everything text-like. Content it cannot name is reported as kind
``"unknown"`` rather than raising, so the caller decides how to word the refusal.
"""

from __future__ import annotations

import codecs
import posixpath
import re
import struct
import zipfile
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import BinaryIO

#: How many leading bytes :func:`detect_file_type` needs to see for a reliable answer.
HEAD_BYTES = 8192


@dataclass(frozen=True)
class FileType:
    """What a file really is.

    Attributes
    ----------
    kind:
        Short machine name (``"pdf"``, ``"png"``, ``"docx"``, ``"text"``, ...); ``"unknown"``
        when the content matched nothing.
    mime:
        The MIME type stored with the document.
    label:
        A human name for messages, e.g. ``"PDF document"``.
    """

    kind: str
    mime: str
    label: str

    @property
    def supported(self) -> bool:
        """Whether batchnb accepts files of this kind at intake."""
        return self.kind in SUPPORTED_KINDS


PDF = FileType("pdf", "application/pdf", "PDF document")
PNG = FileType("png", "image/png", "PNG image")
JPEG = FileType("jpeg", "image/jpeg", "JPEG image")
TIFF = FileType("tiff", "image/tiff", "TIFF image")
DOCX = FileType(
    "docx",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "Word document (.docx)",
)
XLSX = FileType(
    "xlsx",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "Excel workbook (.xlsx)",
)
CSV = FileType("csv", "text/csv", "CSV file")
TEXT = FileType("text", "text/plain", "text file")
MARKDOWN = FileType("markdown", "text/markdown", "Markdown file")
HTML = FileType("html", "text/html", "HTML page")

# Recognised so that the refusal can name them, but not accepted.
PPTX = FileType(
    "pptx",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    "PowerPoint presentation (.pptx)",
)
ODF = FileType("odf", "application/vnd.oasis.opendocument", "OpenDocument file")
EPUB = FileType("epub", "application/epub+zip", "EPUB e-book")
ZIP = FileType("zip", "application/zip", "ZIP archive")
OLE = FileType("ole", "application/x-ole-storage", "legacy Office 97-2003 file (.doc/.xls/.ppt)")
RTF = FileType("rtf", "application/rtf", "RTF document")
GIF = FileType("gif", "image/gif", "GIF image")
WEBP = FileType("webp", "image/webp", "WebP image")
HEIC = FileType("heic", "image/heic", "HEIC image")
GZIP = FileType("gzip", "application/gzip", "gzip archive")
SEVEN_ZIP = FileType("7z", "application/x-7z-compressed", "7-Zip archive")
RAR = FileType("rar", "application/vnd.rar", "RAR archive")
EMPTY = FileType("unknown", "application/x-empty", "empty file")
UNKNOWN = FileType("unknown", "application/octet-stream", "unrecognised binary data")

#: Kinds accepted at intake. Parsers may still lack support for some (see ``parsers``).
SUPPORTED_KINDS: frozenset[str] = frozenset(
    t.kind for t in (PDF, PNG, JPEG, TIFF, DOCX, XLSX, CSV, TEXT, MARKDOWN, HTML)
)

_TEXT_KINDS = frozenset({"text", "csv", "markdown", "html"})

# Binary formats with a fixed signature at offset 0, checked in order.
_MAGIC: tuple[tuple[bytes, FileType], ...] = (
    (b"\x89PNG\r\n\x1a\n", PNG),
    (b"\xff\xd8\xff", JPEG),
    (b"II*\x00", TIFF),
    (b"MM\x00*", TIFF),
    (b"II+\x00", TIFF),  # BigTIFF
    (b"MM\x00+", TIFF),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", OLE),
    (b"GIF87a", GIF),
    (b"GIF89a", GIF),
    (b"\x1f\x8b", GZIP),
    (b"7z\xbc\xaf\x27\x1c", SEVEN_ZIP),
    (b"Rar!\x1a\x07", RAR),
    (b"{\\rtf", RTF),
)
_ZIP_SIGNATURES = (b"PK\x03\x04", b"PK\x05\x06")
_HEIC_BRANDS = (b"heic", b"heix", b"heim", b"heis", b"mif1", b"msf1")
_TEXT_CONTROLS = frozenset("\t\n\r\f\x1b")
_HTML_START = re.compile(r"<!doctype\s+html|<html[\s>]|<body[\s>]", re.IGNORECASE)

# What a file name's extension promises: the kinds it may hold and how to say it in a message.
_TEXT_PROMISE = (_TEXT_KINDS, "a text file")
_EXTENSION_PROMISES: dict[str, tuple[frozenset[str], str]] = {
    ".pdf": (frozenset({"pdf"}), "a PDF"),
    ".png": (frozenset({"png"}), "a PNG image"),
    ".jpg": (frozenset({"jpeg"}), "a JPEG image"),
    ".jpeg": (frozenset({"jpeg"}), "a JPEG image"),
    ".tif": (frozenset({"tiff"}), "a TIFF image"),
    ".tiff": (frozenset({"tiff"}), "a TIFF image"),
    ".docx": (frozenset({"docx"}), "a Word document"),
    ".xlsx": (frozenset({"xlsx"}), "an Excel workbook"),
    ".txt": _TEXT_PROMISE,
    ".text": _TEXT_PROMISE,
    ".csv": _TEXT_PROMISE,
    ".md": _TEXT_PROMISE,
    ".markdown": _TEXT_PROMISE,
    ".html": _TEXT_PROMISE,
    ".htm": _TEXT_PROMISE,
}

#: Every extension a document may have (lower case, with the dot); a name without one is
#: judged by its content alone.
DOCUMENT_EXTENSIONS: tuple[str, ...] = tuple(_EXTENSION_PROMISES)

#: The extensions under which text content is a document (see :func:`extension_mismatch`).
TEXT_DOCUMENT_EXTENSIONS: tuple[str, ...] = tuple(
    extension for extension, promise in _EXTENSION_PROMISES.items() if promise is _TEXT_PROMISE
)


def detect_file_type(head: bytes, name: str) -> FileType:
    """Say what a file is from its first bytes; the name only picks among text formats.

    Parameters
    ----------
    head:
        The first bytes of the file; :data:`HEAD_BYTES` is enough. A ZIP container is told
        apart by the member names found in ``head``; pass the whole stream to
        :func:`detect_stream_type` to read the ZIP's central directory instead.
    name:
        The file name. Its extension decides between markdown, CSV and plain text for
        text-like content, and is otherwise ignored.

    Returns
    -------
    FileType
        ``kind == "unknown"`` when the content is not recognised (never raises).
    """
    if not head:
        return EMPTY
    binary = _detect_binary(head)
    if binary is not None:
        return binary
    if head.startswith(_ZIP_SIGNATURES):
        return _classify_zip(_zip_names_from_head(head))
    return _detect_text(head, name)


def detect_stream_type(stream: BinaryIO, name: str) -> FileType:
    """Like :func:`detect_file_type`, reading from a seekable binary stream.

    Only :data:`HEAD_BYTES` are read, except for ZIP containers, whose central directory (at
    the end of the file) names every member. The stream is left at the position it had.
    """
    start = stream.tell()
    try:
        head = stream.read(HEAD_BYTES)
        file_type = detect_file_type(head, name)
        if file_type is not ZIP:
            return file_type
        stream.seek(start)
        try:
            with zipfile.ZipFile(stream) as archive:
                return _classify_zip(archive.namelist())
        except (zipfile.BadZipFile, OSError, ValueError, EOFError):
            return file_type
    finally:
        stream.seek(start)


def extension_mismatch(file_name: str, file_type: FileType) -> str | None:
    """Explain how a file's extension contradicts its content, or return ``None``.

    Binary extensions (``.pdf``, ``.png``, ``.docx``, ...) demand exactly their format; text
    extensions (``.txt``, ``.csv``, ``.md``, ``.html``) accept any text-like content. Text
    under any other extension (``.py``, ``.json``, ``.log``, ...) is code or data, not a
    document, and is refused; a name without an extension never contradicts.

    >>> extension_mismatch("report.pdf", PNG)
    'report.pdf is not a PDF: its content is a PNG image'
    """
    extension = posixpath.splitext(file_name)[1].lower()
    promise = _EXTENSION_PROMISES.get(extension)
    if promise is None:
        if extension and file_type.kind in _TEXT_KINDS:
            return (
                f"{file_name} is not a document: text is read as a document only from "
                f"{', '.join(TEXT_DOCUMENT_EXTENSIONS)} files (a {extension} file is code or data)"
            )
        return None
    kinds, expected = promise
    if file_type.kind in kinds:
        return None
    return f"{file_name} is not {expected}: its content is {with_article(file_type.label)}"


def with_article(label: str) -> str:
    """``"PNG image"`` → ``"a PNG image"``; ``"HTML page"`` → ``"an HTML page"``."""
    vowel_sound = label[:1].lower() in "aeiou" or label.startswith(("HTML", "HEIC", "RTF"))
    return f"{'an' if vowel_sound else 'a'} {label}"


def _detect_binary(head: bytes) -> FileType | None:
    # PDF readers accept the header anywhere in the first KiB (some tools prepend junk), so
    # whatever a reader would open is called a PDF here too.
    if head.find(b"%PDF-", 0, 1024) != -1:
        return PDF
    for signature, file_type in _MAGIC:
        if head.startswith(signature):
            return file_type
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return WEBP
    if head[4:8] == b"ftyp" and head[8:12] in _HEIC_BRANDS:
        return HEIC
    return None


def _zip_names_from_head(head: bytes) -> list[str]:
    """Member names from the local file headers that fit in ``head``.

    Also inflates ``[Content_Types].xml`` when it is there (Office writes it first), because
    it names the main part even when that part's own header lies beyond ``head``.
    """
    names: list[str] = []
    offset = 0
    while True:
        offset = head.find(b"PK\x03\x04", offset)
        if offset == -1 or offset + 30 > len(head):
            return names
        (flags, method, compressed, name_len, extra_len) = struct.unpack_from(
            "<2xHH8xI4xHH", head, offset + 4
        )
        name_start = offset + 30
        name = head[name_start : name_start + name_len].decode("utf-8", "replace")
        names.append(name)
        data_start = name_start + name_len + extra_len
        if name == "[Content_Types].xml":
            names.extend(_content_type_hints(head[data_start:], method))
        has_descriptor = bool(flags & 0x08)
        offset = data_start if has_descriptor or compressed == 0 else data_start + compressed


def _content_type_hints(data: bytes, method: int) -> list[str]:
    """Pseudo member names for the main parts that ``[Content_Types].xml`` declares."""
    if method == 8:
        try:
            data = zlib.decompressobj(-15).decompress(data, 65536)
        except zlib.error:
            return []
    elif method != 0:
        return []
    text = data.decode("utf-8", "replace")
    hints = []
    if "wordprocessingml.document.main" in text:
        hints.append("word/document.xml")
    if "spreadsheetml.sheet.main" in text:
        hints.append("xl/workbook.xml")
    if "presentationml.presentation.main" in text:
        hints.append("ppt/presentation.xml")
    return hints


def _classify_zip(names: Iterable[str]) -> FileType:
    members = set(names)
    if "word/document.xml" in members:
        return DOCX
    if "xl/workbook.xml" in members:
        return XLSX
    if "ppt/presentation.xml" in members:
        return PPTX
    if "mimetype" in members and "META-INF/container.xml" in members:
        return EPUB
    if "mimetype" in members and "content.xml" in members:
        return ODF
    return ZIP


def _detect_text(head: bytes, name: str) -> FileType:
    text = _decode_text_head(head)
    if text is None:
        return UNKNOWN
    stripped = text.lstrip("\ufeff \t\r\n")
    if stripped.startswith("<") and _HTML_START.search(stripped[:1024]):
        return HTML
    extension = posixpath.splitext(name.replace("\\", "/"))[1].lower()
    if extension in {".md", ".markdown"}:
        return MARKDOWN
    if extension == ".csv":
        return CSV
    if extension in {".html", ".htm"}:
        return HTML
    return TEXT


def _decode_text_head(head: bytes) -> str | None:
    """The head as text if it is text-like, else ``None``.

    Text-like: UTF-16 with a byte order mark, UTF-8, or legacy 8-bit text (cp1252, latin-1),
    with no NUL and few other control characters. The head may end in the middle of a
    multi-byte character, hence the incremental decoders (``final=False``).
    """
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        encodings: tuple[str, ...] = ("utf-16",)
    elif b"\x00" in head:
        return None
    else:
        encodings = ("utf-8-sig", "latin-1")
    for encoding in encodings:
        try:
            text = codecs.getincrementaldecoder(encoding)().decode(head, final=False)
        except UnicodeDecodeError:
            continue
        controls = sum(1 for char in text if char < " " and char not in _TEXT_CONTROLS)
        return None if "\x00" in text or controls > len(text) // 50 else text
    return None
