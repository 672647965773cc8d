"""OCR engines on the SROIE receipts of shared/eval: seconds per page and fields found.

For each engine, every receipt is read (grayscale, EXIF orientation applied, as batchnb does)
and the ground-truth ``total``, ``date``, ``company`` and ``address`` strings are looked for in
the OCR text, whitespace normalised and case ignored (text-level recall: extraction cannot find
what OCR did not read). Prints a Markdown table.

    .venv/bin/python benchmarks/ocr_engines.py [--limit N] [--eval DIR] [--engines ...]
        [--part K/N] [--smoke]

Raw engines: ``tesseract-psm3``, ``tesseract-psm6``, ``rapidocr-lines`` (rapidocr's own text
boxes, one per line, as rapidocr returns them). batchnb's ``BATCHNB_OCR_ENGINE`` policies, the
engines documents are read with: ``tesseract-fallback`` (policy ``tesseract``: psm 3, psm 6
first on tall receipts and when psm 3 finds fewer than 5 words or no digit), ``rapidocr`` (words
re-spaced, rows joined; also ``auto`` when installed) and ``fallback`` (Tesseract, rapidocr
again for pages that look poor; the ``fallback`` column says how many). rapidocr needs
``batchnb[rapidocr]``; without it those rows are skipped with a message.
``--part K/N`` reads only the receipts of that part, split as ``batchnb eval --part`` splits.
``--smoke`` reads one receipt (checks the script; its figures mean nothing) and, without an
evaluation folder, says so and exits 0.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from batchnb.documents.ocr import TesseractEngine, iter_images
from batchnb.documents.ocr_policy import FallbackEngine, engine_for
from batchnb.errors import MissingDependencyError
from batchnb.evaluation.dataset import in_part, parse_part

# An evaluation folder (docs/evaluation.md): BATCHNB_EVAL_DIR, else the team copy.
DEFAULT_EVAL = Path(
    os.environ.get("BATCHNB_EVAL_DIR", Path(__file__).resolve().parents[2] / "shared" / "eval")
)
ENGINES = (
    "tesseract-psm3",
    "tesseract-psm6",
    "rapidocr-lines",
    "tesseract-fallback",
    "rapidocr",
    "fallback",
)
#: Rows that are batchnb's BATCHNB_OCR_ENGINE policies, by policy.
POLICY_ROWS = {"tesseract-fallback": "tesseract", "rapidocr": "rapidocr", "fallback": "fallback"}
FIELDS = ("total", "date", "company", "address")
_SPACES = re.compile(r"\s+")


def _normalise(text: str) -> str:
    return _SPACES.sub(" ", text).strip().lower()


def _tesseract(psm: tuple[int, ...]) -> Callable[[Any], str]:
    engine = TesseractEngine(psm=psm)
    return lambda image: engine.recognize(image).text


def _rapidocr() -> Callable[[Any], str] | None:
    try:
        import numpy as np
        from rapidocr_onnxruntime import RapidOCR
    except ImportError as exc:
        print(f"rapidocr: skipped ({exc}); pip install rapidocr-onnxruntime", flush=True)
        return None
    engine = RapidOCR()

    def recognize(image: Any) -> str:
        result, _ = engine(np.asarray(image.convert("RGB")))
        # Each result is (box, text, score), already in reading order line by line.
        return "\n".join(text for _box, text, _score in result or ())

    return recognize


class _Counted:
    """An ``auto`` engine's recognise, with the engine whose ``fallbacks`` count is shown."""

    def __init__(self, recognize: Callable[[Any], str]) -> None:
        self.recognize = recognize
        self.engine: FallbackEngine | None = None

    def __call__(self, image: Any) -> str:
        return self.recognize(image)


def _make(name: str) -> Callable[[Any], str] | None:
    if name == "rapidocr-lines":
        return _rapidocr()
    if name in POLICY_ROWS:
        try:
            engine = engine_for(POLICY_ROWS[name])
        except MissingDependencyError as exc:
            print(f"{name}: skipped ({exc})", flush=True)
            return None
        if isinstance(engine, FallbackEngine):
            fallback = FallbackEngine(engine.primary, engine.secondary)
            counted = _Counted(lambda image: fallback.recognize(image).text)
            counted.engine = fallback
            return counted
        return lambda image: engine.recognize(image).text
    psm = {"tesseract-psm3": (3,), "tesseract-psm6": (6,)}[name]
    return _tesseract(psm)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--limit", type=int, default=None, help="receipts to read (default all)")
    parser.add_argument("--eval", type=Path, default=DEFAULT_EVAL, help="evaluation folder")
    parser.add_argument("--engines", nargs="+", default=list(ENGINES), choices=ENGINES)
    parser.add_argument("--part", default=None, help="K/N: only that part (as batchnb eval)")
    parser.add_argument(
        "--smoke", action="store_true", help="one receipt: checks the script itself"
    )
    args = parser.parse_args()
    if args.smoke:
        args.limit = 1

    receipts = sorted((args.eval / "documents").glob("sroie__*.jpg"))
    if args.part:
        part = parse_part(args.part)
        receipts = [path for path in receipts if in_part(path.name, part)]
    receipts = receipts[: args.limit]
    if not receipts:
        message = f"no SROIE receipts under {args.eval / 'documents'} (see docs/evaluation.md)"
        if args.smoke:
            print(f"skipped: {message}")
            return
        sys.exit(message)
    truths = [
        json.loads((args.eval / "ground_truth" / f"{path.stem}.json").read_text())["fields"]
        for path in receipts
    ]
    images = [next(iter_images(path.read_bytes(), "jpeg")) for path in receipts]

    where = f" (part {args.part})" if args.part else ""
    print(f"{len(receipts)} SROIE receipts{where}\n")
    print("| engine | s/page | " + " | ".join(FIELDS) + " | fallback |")
    print("|---|---|" + "---|" * len(FIELDS) + "---|")
    for name in args.engines:
        recognize = _make(name)
        if recognize is None:
            continue
        recognize(images[0])  # warm up (model loading) outside the timing
        if isinstance(recognize, _Counted) and recognize.engine is not None:
            recognize.engine.fallbacks = 0
        found = dict.fromkeys(FIELDS, 0)
        started = time.perf_counter()
        for image, truth in zip(images, truths, strict=True):
            text = _normalise(recognize(image))
            for field in FIELDS:
                found[field] += _normalise(str(truth.get(field, ""))) in text
        per_page = (time.perf_counter() - started) / len(images)
        count = len(images)
        fallback = ""
        if isinstance(recognize, _Counted) and recognize.engine is not None:
            fallback = f"{recognize.engine.fallbacks}/{count}"
        cells = " | ".join(f"{found[field] / count:.0%}" for field in FIELDS)
        print(f"| {name} | {per_page:.2f} | {cells} | {fallback} |", flush=True)


if __name__ == "__main__":
    main()
