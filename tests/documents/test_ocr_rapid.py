"""rapidocr behind the OcrEngine protocol, and the BATCHNB_OCR_ENGINE policies."""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
from collections.abc import Iterator

import pytest
from PIL import Image

from batchnb.documents import ocr, ocr_policy
from batchnb.documents.ocr import OcrPage, iter_images
from batchnb.documents.ocr_policy import FallbackEngine, cache_tag, engine_for, looks_poor
from batchnb.documents.parsed import Word
from batchnb.errors import ConfigurationError, MissingDependencyError
from batchnb.extract.registry import get_extractor
from batchnb.jobs.result_cache import result_cache_key
from tests.conftest import EVAL_DIR

HAS_RAPIDOCR = importlib.util.find_spec("rapidocr_onnxruntime") is not None
HAS_TESSERACT = shutil.which("tesseract") is not None
needs_rapidocr = pytest.mark.skipif(
    not HAS_RAPIDOCR, reason="rapidocr is not installed (pip install 'batchnb[rapidocr]')"
)
RECEIPT = "sroie__train_040"


@pytest.fixture(autouse=True)
def _fresh_policies() -> Iterator[None]:
    """Each test resolves the policy for itself (what is installed may be monkeypatched)."""
    engine_for.cache_clear()
    ocr_policy.resolve_policy.cache_clear()
    yield
    engine_for.cache_clear()
    ocr_policy.resolve_policy.cache_clear()


@needs_rapidocr
@pytest.mark.skipif(not EVAL_DIR.is_dir(), reason="shared/eval (SROIE receipts) is not here")
def test_rapidocr_reads_a_receipt_with_words_and_boxes() -> None:
    from batchnb.documents.ocr_rapid import rapid_engine

    truth = json.loads((EVAL_DIR / "ground_truth" / f"{RECEIPT}.json").read_text())["fields"]
    image = next(iter_images((EVAL_DIR / "documents" / f"{RECEIPT}.jpg").read_bytes(), "jpeg"))
    page = rapid_engine().recognize(image)
    assert truth["total"] in page.text
    assert len(page.words) > 20
    width, height = image.size
    for word in page.words:
        assert page.text[word.start : word.end] == word.text
        x0, y0, x1, y1 = word.box
        assert 0 <= x0 <= x1 <= width and 0 <= y0 <= y1 <= height
        assert 0 < word.confidence <= 1
    # The model prints no spaces; words are split again from the gaps between characters.
    assert "STOOGES" in page.text.split()
    total = next(word for word in page.words if word.text == truth["total"])
    label = [word for word in page.words if word.text == "TOTAL" and word.start < total.start][-1]
    # The label and its amount are two text boxes of one printed row: one line of text.
    assert page.text.count("\n", label.start, total.start) == 0


@needs_rapidocr
def test_rapid_engine_is_built_once() -> None:
    from batchnb.documents.ocr_rapid import RapidOcrEngine, rapid_engine

    assert rapid_engine() is rapid_engine()
    assert engine_for("rapidocr") is rapid_engine()
    assert isinstance(engine_for("rapidocr"), RapidOcrEngine)


def test_page_from_result_splits_words_at_wide_gaps() -> None:
    from batchnb.documents.ocr_rapid import page_from_result

    def quad(x0: int, x1: int, y0: int = 10, y1: int = 30) -> list[list[int]]:
        return [[x0, y0], [x1, y0], [x1, y1], [x0, y1]]

    # "NETTOTAL" with a wide gap after "NET"; "12.50" printed spaced out stays one word.
    chars = list("NETTOTAL")
    lefts = [0, 12, 24, 50, 62, 74, 86, 98]
    label = [quad(0, 110), "NETTOTAL", 0.9, [quad(x, x + 11) for x in lefts], chars]
    amount = [
        quad(200, 262, 12, 31),
        "12.50",
        0.8,
        [quad(x, x + 10, 12, 31) for x in (200, 213, 226, 239, 252)],
        list("12.50"),
    ]
    above = [quad(0, 60, 0, 8), "SHOP", 0.95, [], []]
    page = page_from_result([amount, label, above])
    assert page.text == "SHOP\nNET TOTAL 12.50"
    assert [word.text for word in page.words] == ["SHOP", "NET", "TOTAL", "12.50"]
    assert page.words[1].box == (0, 10, 35, 30)
    assert page.words[3].box == (200, 12, 262, 31)
    assert page.words[3].confidence == 0.8


def test_missing_rapidocr_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    from batchnb.documents.ocr_rapid import RapidOcrEngine

    monkeypatch.setitem(sys.modules, "rapidocr_onnxruntime", None)
    with pytest.raises(MissingDependencyError, match=r"pip install 'batchnb\[rapidocr\]'"):
        RapidOcrEngine()


def test_unknown_policy_says_what_to_set() -> None:
    with pytest.raises(ConfigurationError, match="BATCHNB_OCR_ENGINE"):
        engine_for("paddle")


@pytest.mark.skipif(not HAS_TESSERACT, reason="the tesseract program is not installed")
def test_policies_choose_their_engines() -> None:
    assert isinstance(engine_for("tesseract"), ocr.TesseractEngine)
    if HAS_RAPIDOCR:
        from batchnb.documents.ocr_rapid import RapidOcrEngine

        fallback = engine_for("fallback")
        assert isinstance(fallback, FallbackEngine)
        assert isinstance(fallback.primary, ocr.TesseractEngine)
        assert isinstance(fallback.secondary, RapidOcrEngine)
        assert ocr.parser_version(fallback).startswith("ocr-1+tesseract+rapidocr-")
        assert engine_for("auto") is engine_for("rapidocr")
    else:
        assert isinstance(engine_for("auto"), ocr.TesseractEngine)


def test_auto_is_rapidocr_only_when_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    if HAS_RAPIDOCR:
        assert ocr_policy.resolve_policy("auto") == "rapidocr"
        ocr_policy.resolve_policy.cache_clear()
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *args: None if name == "rapidocr_onnxruntime" else real(name, *args),
    )
    assert ocr_policy.resolve_policy("auto") == "tesseract"
    assert cache_tag("png", "auto") == "+ocr:tesseract"


def test_default_engine_follows_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BATCHNB_OCR_ENGINE", "paddle")
    with pytest.raises(ConfigurationError, match="tesseract, rapidocr, fallback, auto"):
        ocr_policy.default_engine()


class _Engine:
    """A stand-in OCR engine that always reads the same page (the policy is under test)."""

    def __init__(self, name: str, page: OcrPage) -> None:
        self.name, self.page, self.calls = name, page, 0

    @property
    def version(self) -> str:
        return "1"

    def recognize(self, image: Image.Image) -> OcrPage:
        self.calls += 1
        return self.page


def _page(text: str, confidence: float = 0.95) -> OcrPage:
    words, offset = [], 0
    for word in text.split(" "):
        words.append(Word(word, offset, offset + len(word), (0, 0, 1, 1), confidence))
        offset += len(word) + 1
    return OcrPage(text, tuple(words))


@pytest.mark.parametrize(
    ("first", "read_again"),
    [
        (_page("SHOP NAME ROAD 1 TOTAL 12.50"), False),
        (_page("SHOP NAME ROAD 1 TOTAL 12"), True),  # no amount
        (_page("TOTAL 12.50"), True),  # too few words
        (_page("SHOP NAME ROAD 1 TOTAL 12.50", confidence=0.5), True),  # unsure
    ],
)
def test_fallback_reads_poor_pages_again(first: OcrPage, read_again: bool) -> None:
    second = _page("SHOP NAME ROAD 1 TOTAL 12.50 RM")
    primary, secondary = _Engine("tesseract", first), _Engine("rapidocr", second)
    engine = FallbackEngine(primary, secondary)
    page = engine.recognize(Image.new("L", (4, 4)))
    assert looks_poor(first) is read_again
    assert page is (second if read_again else first)
    assert (secondary.calls, engine.fallbacks) == ((1, 1) if read_again else (0, 0))


def test_cache_key_differs_per_ocr_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    extractor = get_extractor("offline")
    route = {"schema": "abc"}
    keys = {}
    for policy in ("tesseract", "rapidocr", "fallback"):
        monkeypatch.setenv("BATCHNB_OCR_ENGINE", policy)
        keys[policy] = {
            kind: result_cache_key("hash", kind, extractor, route)
            for kind in ("jpeg", "pdf", "text")
        }
    assert keys["tesseract"]["jpeg"] != keys["rapidocr"]["jpeg"]
    assert keys["tesseract"]["pdf"] != keys["rapidocr"]["pdf"]
    assert keys["fallback"]["jpeg"] not in (keys["tesseract"]["jpeg"], keys["rapidocr"]["jpeg"])
    # Kinds never read by OCR keep their keys.
    assert keys["tesseract"]["text"] == keys["rapidocr"]["text"]
    assert cache_tag("text", "rapidocr") == ""
