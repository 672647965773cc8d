"""Printed words folded for matching: without accents and case, with offsets kept.

Label and header matching compare words as printed in English, German, French and Dutch
("Quantité", "Rechnungs-Nr."); folding makes "quantite" match without moving any offset, so a
match in the folded text is a span of the original. Shared by the offline backend's labels and
the table reading at the root.
"""

from __future__ import annotations

import functools
import re
import unicodedata

# Characters folded for matching that NFKD leaves alone: the degree sign of "N°" reads as "o".
_EXTRA_FOLDS = {"°": "o", "\u2019": "'", "\u2018": "'", "\u00b4": "'", "\u2010": "-", "\u2011": "-"}


def fold(text: str) -> str:
    """``text`` without accents, for matching only: same length, so offsets stay valid.

    Each character is replaced by the base letter of its NFKD decomposition when that is a
    single character ("é" → "e", "º" → "o"); others ("ß", ligatures) are kept as they are.
    """
    if text.isascii():
        return text
    return "".join(_fold_char(char) for char in text)


@functools.lru_cache(maxsize=4096)
def _fold_char(char: str) -> str:
    if char in _EXTRA_FOLDS:
        return _EXTRA_FOLDS[char]
    base = "".join(c for c in unicodedata.normalize("NFKD", char) if not unicodedata.combining(c))
    return base if len(base) == 1 else char


def words_of(text: str) -> list[str]:
    """Lowercase, accent-free words of a label; ``#`` counts as a word ("invoice #")."""
    return re.findall(r"[a-z0-9]+|#", fold(text).lower())
