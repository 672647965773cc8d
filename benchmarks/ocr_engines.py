"""OCR engines on the SROIE receipts of shared/eval: seconds per page and fields found.

For each engine, every receipt is read (grayscale, EXIF orientation applied, as batchnb does)
and the ground-truth ``total`` and ``date`` strings are looked for in the OCR text, whitespace
normalised and case ignored. Prints a Markdown table.

    .venv/bin/python benchmarks/ocr_engines.py [--limit N] [--eval DIR] [--engines ...] [--smoke]

Engines: ``tesseract-psm3``, ``tesseract-psm6``, ``tesseract-fallback`` (batchnb's default:
psm 3, psm 6 when psm 3 finds fewer than 5 words or no digit), and ``rapidocr`` (optional:
skipped with a message when ``rapidocr_onnxruntime`` is not importable; it is not a batchnb
dependency). ``--smoke`` reads one receipt (checks the script; its figures mean nothing) and,
without an evaluation folder, says so and exits 0.
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

# An evaluation folder (docs/evaluation.md): BATCHNB_EVAL_DIR, else the team copy.
DEFAULT_EVAL = Path(
    os.environ.get("BATCHNB_EVAL_DIR", Path(__file__).resolve().parents[2] / "shared" / "eval")
)
ENGINES = ("tesseract-psm3", "tesseract-psm6", "tesseract-fallback", "rapidocr")
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


def _make(name: str) -> Callable[[Any], str] | None:
    if name == "rapidocr":
        return _rapidocr()
    psm = {"tesseract-psm3": (3,), "tesseract-psm6": (6,), "tesseract-fallback": (3, 6)}[name]
    return _tesseract(psm)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--limit", type=int, default=None, help="receipts to read (default all)")
    parser.add_argument("--eval", type=Path, default=DEFAULT_EVAL, help="evaluation folder")
    parser.add_argument("--engines", nargs="+", default=list(ENGINES), choices=ENGINES)
    parser.add_argument(
        "--smoke", action="store_true", help="one receipt: checks the script itself"
    )
    args = parser.parse_args()
    if args.smoke:
        args.limit = 1

    receipts = sorted((args.eval / "documents").glob("sroie__*.jpg"))[: args.limit]
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

    print(f"{len(receipts)} SROIE receipts\n")
    print("| engine | s/page | total found | date found | both |")
    print("|---|---|---|---|---|")
    for name in args.engines:
        recognize = _make(name)
        if recognize is None:
            continue
        recognize(images[0])  # warm up (model loading) outside the timing
        totals = dates = both = 0
        started = time.perf_counter()
        for image, truth in zip(images, truths, strict=True):
            text = _normalise(recognize(image))
            has_total = _normalise(truth["total"]) in text
            has_date = _normalise(truth["date"]) in text
            totals += has_total
            dates += has_date
            both += has_total and has_date
        per_page = (time.perf_counter() - started) / len(images)
        count = len(images)
        print(
            f"| {name} | {per_page:.2f} | {totals}/{count} ({totals / count:.0%}) | "
            f"{dates}/{count} ({dates / count:.0%}) | {both}/{count} ({both / count:.0%}) |",
            flush=True,
        )


if __name__ == "__main__":
    main()
