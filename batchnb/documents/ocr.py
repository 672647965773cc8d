"""OCR: images (PNG, JPEG, TIFF) and scanned PDF pages to text with word boxes.

An :class:`OcrEngine` turns one image into an :class:`OcrPage`; :class:`TesseractEngine` runs
the ``tesseract`` program through pytesseract. Pillow and pytesseract come with
``batchnb[ocr]`` and are imported on first use, so a missing one fails only when an image is
read, with a message that says what to install.

Tesseract settings: ``OMP_THREAD_LIMIT=1`` (measured, a page takes 2-3 s instead of 15-26 s
when Tesseract's threads fight each other; run one worker per core instead), page segmentation
``--psm 3`` with a fallback to ``--psm 6`` (uniform block, better on borderless tables) when
``--psm 3`` finds few words or no numbers. ``benchmarks/ocr_engines.py`` measures the choice on
receipts. rapidocr (:mod:`~batchnb.documents.ocr_rapid`, ``batchnb[rapidocr]``) is the other
engine; :mod:`~batchnb.documents.ocr_policy` chooses between them (``BATCHNB_OCR_ENGINE``).
"""

from __future__ import annotations

import io
import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from batchnb.documents.parsed import Page, ParsedDocument, Word
from batchnb.errors import DocumentError, MissingDependencyError

if TYPE_CHECKING:
    from PIL import Image

#: Images with more pixels are refused before decoding (a decompression bomb: a small file
#: that decodes to gigabytes). 60 megapixels is an A4 page at 900 dpi.
MAX_IMAGE_PIXELS = 60_000_000
#: Multi-page TIFFs with more frames are refused, as PDFs with too many OCR pages are.
MAX_IMAGE_FRAMES = 200
#: One page may not keep tesseract busy longer than this.
OCR_TIMEOUT_SECONDS = 120
#: Version of the OCR parsing around the engine; the engine's own version is added to it.
OCR_PARSER_VERSION = "ocr-1"

_FORMATS = {"png": ("PNG",), "jpeg": ("JPEG",), "tiff": ("TIFF",)}
_LABELS = {"png": "PNG", "jpeg": "JPEG", "tiff": "TIFF"}
_DIGIT = re.compile(r"\d")
#: Images at least this much taller than wide are read with ``--psm 6`` first: on till
#: receipts it finds more totals and dates than ``--psm 3`` (``benchmarks/ocr_engines.py``).
RECEIPT_ASPECT = 1.6


class MissingProgramError(MissingDependencyError):
    """A program (not a Python package) is needed for the feature that was asked for."""

    def __init__(self, program: str, feature: str, install: str) -> None:
        # Skip MissingDependencyError's pip message: this is not fixed by pip.
        Exception.__init__(self, f"{feature} needs the {program} program: {install}")
        self.package = program
        self.extra = "ocr"


@dataclass(frozen=True)
class OcrPage:
    """What an engine read on one image: text in reading order and its words with boxes."""

    text: str
    words: tuple[Word, ...] = ()


class OcrEngine(Protocol):
    """An OCR engine: ``recognize`` one grayscale or RGB image into text and word boxes."""

    name: str

    @property
    def version(self) -> str:
        """Engine version, part of the parser version stored with each result."""
        ...

    def recognize(self, image: Image.Image) -> OcrPage:
        """Read ``image``; lines of text joined by ``"\\n"``, words with offsets and boxes."""
        ...


class TesseractEngine:
    """Tesseract through pytesseract: ``--psm 3``, falling back to ``--psm 6``.

    Parameters
    ----------
    language
        Tesseract language code(s), e.g. ``"eng"`` or ``"eng+deu"`` (the matching
        ``tesseract-ocr-LANG`` package must be installed).
    psm
        Page segmentation modes: the first is tried, the second is used when the first finds
        fewer than ``min_words`` words or no digit at all. One mode means no fallback.
    """

    name = "tesseract"

    def __init__(
        self,
        language: str = "eng",
        psm: tuple[int, ...] = (3, 6),
        min_words: int = 5,
        timeout: float = OCR_TIMEOUT_SECONDS,
    ) -> None:
        self._pytesseract = _import_pytesseract()
        if shutil.which(self._pytesseract.pytesseract.tesseract_cmd) is None:
            raise MissingProgramError(
                "tesseract",
                "OCR",
                "apt-get install tesseract-ocr (or brew install tesseract)",
            )
        # Tesseract's OpenMP threads fight each other: 15-26 s a page instead of 2-3 s. The
        # subprocess inherits this; a value the user set on purpose is kept.
        os.environ.setdefault("OMP_THREAD_LIMIT", "1")
        _detach_from_terminal_signals(self._pytesseract)
        self.language = language
        self.psm = psm
        self.min_words = min_words
        self.timeout = timeout
        self._version = str(self._pytesseract.get_tesseract_version())

    @property
    def version(self) -> str:
        """The tesseract program's version, e.g. ``"5.3.0"``."""
        return self._version

    def recognize(self, image: Image.Image) -> OcrPage:
        """Read ``image`` with the first page segmentation mode, the second if it looks poor.

        A narrow, tall image (a till receipt) tries ``--psm 6`` first when it is one of the modes.
        """
        modes = self.psm
        width, height = image.size
        if 6 in modes and height >= RECEIPT_ASPECT * width:
            modes = (6, *(psm for psm in modes if psm != 6))
        page = self.recognize_with(image, modes[0])
        for psm in modes[1:]:
            if not self._looks_poor(page):
                break
            page = self.recognize_with(image, psm)
        return page

    def recognize_with(self, image: Image.Image, psm: int) -> OcrPage:
        """Read ``image`` with one page segmentation mode (no fallback)."""
        try:
            data = self._pytesseract.image_to_data(
                image,
                lang=self.language,
                config=f"--psm {psm}",
                output_type=self._pytesseract.Output.DICT,
                timeout=self.timeout,
            )
        except RuntimeError as exc:
            if "timeout" in str(exc).lower():
                raise DocumentError(
                    f"OCR gave up on a page after {self.timeout:g} s (too large or too dense)",
                    kind="ocr",
                ) from None
            raise
        except self._pytesseract.TesseractError as exc:
            message = str(exc)
            if "Failed loading language" in message or "traineddata" in message:
                raise MissingProgramError(
                    f"tesseract language data for {self.language!r}",
                    "OCR",
                    f"apt-get install tesseract-ocr-{self.language.split('+')[0]}",
                ) from None
            raise DocumentError(f"OCR failed: {message}", kind="ocr") from None
        return _page_from_data(data)

    def _looks_poor(self, page: OcrPage) -> bool:
        return len(page.words) < self.min_words or not _DIGIT.search(page.text)


def _page_from_data(data: dict[str, list[Any]]) -> OcrPage:
    """Words of ``image_to_data`` grouped into lines by (block, paragraph, line) numbers."""
    lines: dict[tuple[int, int, int], list[tuple[str, tuple[int, int, int, int], float]]] = {}
    for index, raw in enumerate(data["text"]):
        text = str(raw).strip()
        if not text or int(data["level"][index]) != 5:
            continue
        key = (
            int(data["block_num"][index]),
            int(data["par_num"][index]),
            int(data["line_num"][index]),
        )
        left, top = int(data["left"][index]), int(data["top"][index])
        box = (left, top, left + int(data["width"][index]), top + int(data["height"][index]))
        confidence = max(0.0, float(data["conf"][index])) / 100
        # dicts keep insertion order: tesseract lists words in its reading order.
        lines.setdefault(key, []).append((text, box, confidence))
    parts: list[str] = []
    words: list[Word] = []
    offset = 0
    for line in lines.values():
        if parts:
            parts.append("\n")
            offset += 1
        for position, (text, box, confidence) in enumerate(line):
            if position:
                parts.append(" ")
                offset += 1
            words.append(Word(text, offset, offset + len(text), box, round(confidence, 3)))
            parts.append(text)
            offset += len(text)
    return OcrPage("".join(parts), tuple(words))


def parser_version(engine: OcrEngine) -> str:
    """The ``parser`` stored with a result read by ``engine``, e.g. ``ocr-1+tesseract-5.3.0``."""
    return f"{OCR_PARSER_VERSION}+{engine.name}-{engine.version}"


def parse_image(data: bytes, kind: str, engine: OcrEngine) -> ParsedDocument:
    """OCR an image file of ``kind`` (``png``, ``jpeg`` or ``tiff``): one page per frame.

    ``engine`` is usually :func:`batchnb.documents.ocr_policy.default_engine`.
    """
    label = _LABELS[kind]
    frames = list(iter_images(data, kind))
    pages = []
    for number, image in enumerate(frames, start=1):
        result = engine.recognize(image)
        pages.append(Page(number, result.text, words=result.words))
    if not any(page.text.strip() for page in pages):
        raise DocumentError(f"OCR found no text in the {label} image", kind="empty")
    return ParsedDocument(
        pages=tuple(pages),
        parser=parser_version(engine),
        metadata={"pages": str(len(pages)), "ocr_engine": f"{engine.name} {engine.version}"},
    )


def iter_images(data: bytes, kind: str) -> Iterator[Image.Image]:
    """Decode an image file into grayscale page images, upright (EXIF orientation applied).

    Raises ``DocumentError`` for an unreadable image, one larger than ``MAX_IMAGE_PIXELS`` (checked
    from the header, before decoding) or a TIFF with more than ``MAX_IMAGE_FRAMES`` frames.
    """
    image_module, image_ops = _import_pillow()
    label = _LABELS[kind]
    try:
        image = image_module.open(io.BytesIO(data), formats=_FORMATS[kind])
    except image_module.DecompressionBombError:
        raise _too_large(label, None) from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise DocumentError(f"not a readable {label} image: {exc}") from None
    with image:
        frame_count = int(getattr(image, "n_frames", 1))
        if frame_count > MAX_IMAGE_FRAMES:
            raise DocumentError(
                f"too many frames in the {label} image: {frame_count:,} (the limit is "
                f"{MAX_IMAGE_FRAMES}); split it into smaller files",
                kind="too_large",
            )
        for index in range(frame_count):
            try:
                image.seek(index)
                width, height = image.size
                if width * height > MAX_IMAGE_PIXELS:
                    raise _too_large(label, (width, height))
                yield _to_grayscale(image_module, image_ops.exif_transpose(image))
            except image_module.DecompressionBombError:
                raise _too_large(label, None) from None
            except (OSError, SyntaxError, ValueError, EOFError) as exc:
                where = f" (frame {index + 1})" if frame_count > 1 else ""
                raise DocumentError(f"not a readable {label} image{where}: {exc}") from None


def _to_grayscale(image_module: Any, image: Image.Image) -> Image.Image:
    # Transparent pixels are often black underneath: put them on white paper first.
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        paper = image_module.new("RGBA", rgba.size, "white")
        image = image_module.alpha_composite(paper, rgba)
    return image.convert("L")


def _too_large(label: str, size: tuple[int, int] | None) -> DocumentError:
    dimensions = f" ({size[0]:,} x {size[1]:,} pixels)" if size else ""
    return DocumentError(
        f"image too large{dimensions}: the {label} image has more than "
        f"{MAX_IMAGE_PIXELS // 1_000_000} megapixels; scan at 300 dpi or less",
        kind="too_large",
    )


def _import_pillow() -> tuple[Any, Any]:
    try:
        from PIL import Image, ImageOps
    except ModuleNotFoundError:
        raise MissingDependencyError("Pillow", "ocr", "reading images") from None
    return Image, ImageOps


def _detach_from_terminal_signals(pytesseract: Any) -> None:
    """Start tesseract in a session of its own, out of reach of the terminal's Ctrl-C.

    Ctrl-C signals the whole foreground process group: tesseract would die mid-page and the
    document fail with a cryptic message, while batchnb itself stops gracefully and puts the
    document back in the queue. pytesseract builds its ``Popen`` arguments in
    ``subprocess_args()``, the one place to add ``start_new_session``; done once per process.
    """
    module = pytesseract.pytesseract
    original = module.subprocess_args
    if os.name != "posix" or getattr(original, "batchnb_detached", False):
        return

    def subprocess_args(*args: Any, **kwargs: Any) -> dict[str, Any]:
        return {**original(*args, **kwargs), "start_new_session": True}

    subprocess_args.batchnb_detached = True  # type: ignore[attr-defined]
    module.subprocess_args = subprocess_args


def _import_pytesseract() -> Any:
    try:
        import pytesseract
    except ModuleNotFoundError:
        raise MissingDependencyError("pytesseract", "ocr", "OCR") from None
    return pytesseract
