"""Which OCR engine reads a page: the ``BATCHNB_OCR_ENGINE`` policy.

``tesseract``
    Tesseract only (``batchnb[ocr]`` and the tesseract program).
``rapidocr``
    rapidocr only (``batchnb[rapidocr]``).
``fallback``
    Tesseract first; a page whose Tesseract text :func:`looks_poor` is read again by rapidocr.
``auto`` (default)
    rapidocr when it is installed, Tesseract otherwise: installing ``batchnb[rapidocr]`` is
    the choice of accuracy over speed.

Why ``auto`` is not ``fallback`` (figures in docs/extraction.md, from ``batchnb eval`` and
``benchmarks/ocr_engines.py`` on both halves of the SROIE receipts): rapidocr alone scored
the best header F1 on both halves and found every total in the text, at about 5x Tesseract's
time a page; the fallback fell in between on accuracy, because no page-level signal found
reliably the pages whose total Tesseract misread. Without rapidocr, ``auto`` keeps the
Tesseract behaviour that needs no extra.

"Looks poor" is decided on the page alone, not on the schema: OCR runs while the document is
parsed, before routing has chosen a schema ("auto" routing classifies the parsed text), and
the preview and document viewer parse without one. The signal is what the schemas of receipts
and invoices need from a page and Tesseract misses most: an amount with two decimals, and
words read with confidence.
"""

from __future__ import annotations

import functools
import importlib.util
import re
from typing import TYPE_CHECKING

from batchnb.documents.ocr import OcrEngine, OcrPage, TesseractEngine
from batchnb.errors import ConfigurationError

if TYPE_CHECKING:
    from PIL import Image

POLICIES = ("tesseract", "rapidocr", "fallback", "auto")
#: Kinds of documents whose parsing may run OCR (a PDF only for pages without a text layer).
OCR_KINDS = frozenset({"png", "jpeg", "tiff", "pdf"})
#: Pages whose words Tesseract read with a lower mean confidence (0-1) are read again.
MIN_MEAN_CONFIDENCE = 0.70
#: Pages with fewer words are read again.
MIN_WORDS = 5
_AMOUNT = re.compile(r"\d[.,]\d{2}(?!\d)")


class FallbackEngine:
    """Read with ``primary``; a page that :func:`looks_poor` is read again by ``secondary``."""

    def __init__(self, primary: OcrEngine, secondary: OcrEngine) -> None:
        self.primary = primary
        self.secondary = secondary
        self.name = f"{primary.name}+{secondary.name}"
        #: Pages read again by the secondary engine (a figure for benchmarks and logs).
        self.fallbacks = 0

    @property
    def version(self) -> str:
        """Both engines' versions, e.g. ``"5.3.0+1.4.4"``."""
        return f"{self.primary.version}+{self.secondary.version}"

    def recognize(self, image: Image.Image) -> OcrPage:
        """The primary engine's page, or the secondary's when the primary's looks poor."""
        page = self.primary.recognize(image)
        if looks_poor(page):
            self.fallbacks += 1
            return self.secondary.recognize(image)
        return page


def looks_poor(page: OcrPage) -> bool:
    """Whether a page's OCR lacks what extraction needs most: words, an amount, confidence."""
    if len(page.words) < MIN_WORDS or not _AMOUNT.search(page.text):
        return True
    mean = sum(word.confidence for word in page.words) / len(page.words)
    return mean < MIN_MEAN_CONFIDENCE


def check_policy(policy: str) -> str:
    """``policy`` if it names one; a ConfigurationError saying what to set otherwise."""
    if policy not in POLICIES:
        raise ConfigurationError(
            f"unknown OCR engine {policy!r}: set BATCHNB_OCR_ENGINE to one of {', '.join(POLICIES)}"
        )
    return policy


@functools.cache
def resolve_policy(policy: str) -> str:
    """The engine(s) ``policy`` reads with here: ``auto`` becomes what is installed.

    Cheap (no engine is built): it names the OCR part of the result cache key, so a result read
    by Tesseract is not reused once rapidocr reads those pages.
    """
    check_policy(policy)
    if policy == "fallback":
        return "tesseract+rapidocr"
    if policy != "auto":
        return policy
    return "rapidocr" if importlib.util.find_spec("rapidocr_onnxruntime") else "tesseract"


def cache_tag(kind: str, policy: str | None = None) -> str:
    """What the OCR policy adds to the parser part of a result cache key for ``kind``.

    Empty for kinds never read by OCR; ``policy`` defaults to ``BATCHNB_OCR_ENGINE``.
    """
    if kind not in OCR_KINDS:
        return ""
    if policy is None:
        from batchnb.config.settings import load_settings

        policy = load_settings().ocr_engine
    return f"+ocr:{resolve_policy(policy)}"


def default_engine() -> OcrEngine:
    """The engine documents are read with: the ``BATCHNB_OCR_ENGINE`` policy's, built once.

    Raises ``MissingDependencyError`` when the policy's engine is not installed.
    """
    from batchnb.config.settings import load_settings

    return engine_for(load_settings().ocr_engine)


@functools.cache
def engine_for(policy: str) -> OcrEngine:
    """The engine of ``policy``, built once per process (rapidocr loads its models once).

    Raises
    ------
    MissingDependencyError
        The policy's engine is not installed; the message says what to install.
    """
    resolved = resolve_policy(policy)
    if resolved == "tesseract":
        return TesseractEngine()
    from batchnb.documents.ocr_rapid import rapid_engine

    if resolved == "rapidocr":
        return rapid_engine()
    return FallbackEngine(TesseractEngine(), rapid_engine())
