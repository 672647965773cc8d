"""rapidocr: a neural OCR engine (PaddleOCR models run by onnxruntime), offline, on the CPU.

``batchnb[rapidocr]`` installs ``rapidocr-onnxruntime``, which ships its models (about 16 MB;
with onnxruntime and OpenCV about 190 MB installed). On the SROIE receipts of the evaluation
set it finds the printed total in the text of more receipts than Tesseract
(``benchmarks/ocr_engines.py``), at a similar cost per page.

rapidocr detects text boxes (about one per printed phrase) and recognises each; its model
does not emit spaces between Latin words. Asked for per-character boxes
(``return_word_box=True``, no measurable extra cost), the engine puts the spaces back where
the gap between two characters is wide for their line, and turns each resulting word into a
:class:`~batchnb.documents.parsed.Word` with its box, so evidence boxes and layout work as
with Tesseract. Boxes that sit on the same printed row are joined into one text line, left
to right (a receipt's ``TOTAL`` and its amount are often two boxes).
"""

from __future__ import annotations

import itertools
import re
import statistics
import threading
from collections.abc import Sequence
from importlib import metadata
from typing import TYPE_CHECKING, Any

from batchnb.documents.ocr import OcrPage
from batchnb.documents.parsed import Word
from batchnb.errors import MissingDependencyError

if TYPE_CHECKING:
    from PIL import Image

#: A gap between two characters wider than this share of the line's median character width
#: (and clearly wider than the line's usual gap) is a space the model did not print.
SPACE_GAP = 0.7
#: Between two digits (or a digit and its decimal point) only a gap of a whole character width
#: splits: amounts are printed spaced out and must stay one word.
NUMBER_GAP = 1.0
_NUMERIC = re.compile(r"[0-9.,]")
_Box = tuple[int, int, int, int]
_ENGINE: RapidOcrEngine | None = None
_ENGINE_LOCK = threading.Lock()


class RapidOcrEngine:
    """rapidocr (``rapidocr-onnxruntime``): text boxes, recognition, words with boxes.

    The models load once per engine (about a second); use :func:`rapid_engine` for the one
    shared engine of the process. ``recognize`` takes a lock: rapidocr keeps per-call settings
    on the engine object, so two threads must not run it at once.

    Parameters
    ----------
    threads
        onnxruntime threads per inference; ``None`` lets onnxruntime use every core.
    """

    name = "rapidocr"

    def __init__(self, threads: int | None = None) -> None:
        module = _import_rapidocr()
        self._numpy = _import_numpy()
        options = {} if threads is None else {"intra_op_num_threads": threads}
        self._engine = module.RapidOCR(**options)
        self._lock = threading.Lock()
        self._version = metadata.version("rapidocr-onnxruntime")

    @property
    def version(self) -> str:
        """The ``rapidocr-onnxruntime`` package version, e.g. ``"1.4.4"``."""
        return self._version

    def recognize(self, image: Image.Image) -> OcrPage:
        """Read ``image``: rows of text boxes top to bottom, words left to right."""
        pixels = self._numpy.asarray(image.convert("RGB"))
        with self._lock:
            result, _elapsed = self._engine(pixels, return_word_box=True)
        return page_from_result(result or ())


def rapid_engine() -> RapidOcrEngine:
    """The process's rapidocr engine, created on first use (its models load once).

    One onnxruntime thread, as Tesseract gets one: on a busy 2-core machine it read receipts
    no slower (5.1 s a page against 5.9 s with every core), and batchnb runs a worker per core.
    A lock makes worker threads that start at once share one engine instead of loading two.
    """
    global _ENGINE
    with _ENGINE_LOCK:
        if _ENGINE is None:
            _ENGINE = RapidOcrEngine(threads=1)
        return _ENGINE


def page_from_result(result: Sequence[Sequence[Any]]) -> OcrPage:
    """An :class:`OcrPage` from rapidocr's ``[box, text, score, char_boxes, chars]`` items."""
    boxes: list[tuple[_Box, list[tuple[str, _Box]], float]] = []
    for item in result:
        text = str(item[1]).strip()
        if not text:
            continue
        box = _bounds(item[0])
        pieces = _words(item, box)
        if pieces:
            boxes.append((box, pieces, float(item[2])))
    parts: list[str] = []
    words: list[Word] = []
    offset = 0
    for row in _rows(boxes):
        if parts:
            parts.append("\n")
            offset += 1
        for position, (text, box, confidence) in enumerate(row):
            if position:
                parts.append(" ")
                offset += 1
            words.append(Word(text, offset, offset + len(text), box, round(confidence, 3)))
            parts.append(text)
            offset += len(text)
    return OcrPage("".join(parts), tuple(words))


def _words(item: Sequence[Any], box: _Box) -> list[tuple[str, _Box]]:
    """The words of one text box: split at spaces and at wide gaps between characters."""
    text = str(item[1])
    chars = [str(char) for char in item[4]] if len(item) > 4 and item[4] else []
    char_boxes = [_bounds(points) for points in item[3]] if len(item) > 3 and item[3] else []
    if not chars or len(chars) != len(char_boxes) or "".join(chars) != text:
        return _proportional_words(text, box)
    # A space the model did print separates words; its own box is not kept.
    kept = [index for index, char in enumerate(chars) if not char.isspace()]
    if not kept:
        return []
    median_width = statistics.median(char_boxes[index][2] - char_boxes[index][0] for index in kept)
    gaps = {
        after: char_boxes[after][0] - char_boxes[before][2]
        for before, after in itertools.pairwise(kept)
    }
    threshold = SPACE_GAP * median_width
    if gaps:
        threshold = max(threshold, 1.8 * statistics.median(gaps.values()))
    words: list[tuple[str, _Box]] = []
    current = [kept[0]]
    for before, index in itertools.pairwise(kept):
        limit = threshold
        if _NUMERIC.match(chars[before]) and _NUMERIC.match(chars[index]):
            # Receipts print amounts with wide letter spacing: "343.95", not "34 3.9 5".
            limit = max(threshold, NUMBER_GAP * median_width)
        if gaps[index] > limit or index - before > 1:
            words.append(_join(chars, char_boxes, current, box))
            current = []
        current.append(index)
    words.append(_join(chars, char_boxes, current, box))
    return words


def _join(chars: list[str], boxes: list[_Box], indexes: list[int], line: _Box) -> tuple[str, _Box]:
    left = max(line[0], min(boxes[index][0] for index in indexes))
    right = min(line[2], max(boxes[index][2] for index in indexes))
    return "".join(chars[index] for index in indexes), (left, line[1], max(right, left), line[3])


def _proportional_words(text: str, box: _Box) -> list[tuple[str, _Box]]:
    """Words of ``text`` with boxes cut from the line's box in proportion to their offsets."""
    left, top, right, bottom = box
    scale = (right - left) / max(len(text), 1)
    words: list[tuple[str, _Box]] = []
    start = 0
    for word in text.split():
        start = text.index(word, start)
        end = start + len(word)
        words.append((word, (left + round(start * scale), top, left + round(end * scale), bottom)))
        start = end
    return words


def _rows(
    boxes: list[tuple[_Box, list[tuple[str, _Box]], float]],
) -> list[list[tuple[str, _Box, float]]]:
    """Text boxes grouped into printed rows (vertical overlap), top to bottom, left to right."""
    rows: list[tuple[list[int], list[tuple[_Box, list[tuple[str, _Box]], float]]]] = []
    for entry in sorted(boxes, key=lambda entry: (entry[0][1], entry[0][0])):
        box = entry[0]
        centre = (box[1] + box[3]) / 2
        for span, members in rows:
            if span[0] <= centre <= span[1]:
                members.append(entry)
                break
        else:
            rows.append(([box[1], box[3]], [entry]))
    ordered: list[list[tuple[str, _Box, float]]] = []
    for _span, members in rows:
        members.sort(key=lambda entry: entry[0][0])
        ordered.append(
            [
                (text, word_box, score)
                for _box, pieces, score in members
                for text, word_box in pieces
            ]
        )
    return ordered


def _bounds(points: Any) -> _Box:
    """The upright bounding box of a (possibly rotated) quadrilateral, as integers."""
    xs = [float(point[0]) for point in points]
    ys = [float(point[1]) for point in points]
    return (round(min(xs)), round(min(ys)), round(max(xs)), round(max(ys)))


def _import_rapidocr() -> Any:
    try:
        import rapidocr_onnxruntime
    except ModuleNotFoundError:
        raise MissingDependencyError(
            "rapidocr-onnxruntime", "rapidocr", "OCR with rapidocr"
        ) from None
    return rapidocr_onnxruntime


def _import_numpy() -> Any:
    try:
        import numpy
    except ModuleNotFoundError:
        raise MissingDependencyError("numpy", "rapidocr", "OCR with rapidocr") from None
    return numpy
