"""Scoring: normalise values, compare them, and count TP/FP/FN per field.

Pure functions, no I/O. A field is scored only where the ground truth labels it:

* labelled and predicted equal → 1 TP;
* labelled and predicted different → 1 FP + 1 FN (a wrong value is both a miss and a false claim);
* labelled and not predicted → 1 FN;
* not labelled → not scored, whatever was predicted.

Line items are paired item by item (greedily, most similar pair first) and then scored sub-field
by sub-field the same way; a labelled item left without a partner counts FN for each labelled
key, a predicted item left without a partner FP for each value it gives.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from batchnb.extract import Field, Schema, parse_date, parse_money, parse_number
from batchnb.extract.values import CURRENCY_CODES, CURRENCY_SYMBOLS

Kind = Literal["date", "amount", "currency", "fuzzy", "text"]
Section = Literal["header", "line_items"]
MismatchKind = Literal["wrong", "missing", "spurious"]

AMOUNT_TOLERANCE = 0.01
FUZZY_THRESHOLD = 0.8
# Field-name words that mark names, addresses and descriptions: compared fuzzily.
_FUZZY_WORDS = frozenset(
    {"name", "company", "issuer", "vendor", "seller", "buyer", "supplier", "customer"}
    | {"address", "description", "desc", "item", "merchant", "partner"}
)
_TOLERANCE_EPSILON = 1e-9  # 4.12 - 4.11 is 0.01000000000000023 in floats


@dataclass(frozen=True)
class Counts:
    """True positives, false positives and false negatives, with micro metrics."""

    tp: int = 0
    fp: int = 0
    fn: int = 0

    def __add__(self, other: Counts) -> Counts:
        return Counts(self.tp + other.tp, self.fp + other.fp, self.fn + other.fn)

    @property
    def precision(self) -> float | None:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else None

    @property
    def recall(self) -> float | None:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else None

    @property
    def f1(self) -> float | None:
        """2TP / (2TP + FP + FN); ``None`` when nothing was scored."""
        total = 2 * self.tp + self.fp + self.fn
        return 2 * self.tp / total if total else None


def total(counts: Iterable[Counts]) -> Counts:
    """The sum of counts: micro averaging adds counts first, then computes the metrics."""
    result = Counts()
    for count in counts:
        result = result + count
    return result


@dataclass(frozen=True)
class Mismatch:
    """One value the counts call wrong: labelled but missed or different, or a spurious item's.

    Kept beside the counts so an evaluation can show failures, not only count them.

    Parameters
    ----------
    expected:
        The labelled value; ``None`` for a value of a predicted item no labelled item matched.
    got:
        The predicted value; ``None`` when nothing was predicted.
    item:
        For line items, the 1-based position of the labelled item (of the predicted item for a
        spurious value); ``None`` for header fields.
    """

    expected: Any
    got: Any
    item: int | None = None

    @property
    def kind(self) -> MismatchKind:
        """``missing`` (nothing predicted), ``spurious`` (nothing labelled) or ``wrong``."""
        if self.expected is None:
            return "spurious"
        return "missing" if is_missing(self.got) else "wrong"


@dataclass(frozen=True)
class FieldScore:
    """The counts of one field of one document (``field`` is ``lines.name`` for item keys),
    with the values behind its FP and FN."""

    dataset: str
    document: str
    section: Section
    field: str
    counts: Counts
    mismatches: tuple[Mismatch, ...] = ()


def kind_of(field: Field) -> Kind:
    """How a field's values are compared, from its schema type and the words of its name."""
    words = set(field.name.split("_"))
    if field.type == "date":
        return "date"
    if field.type in ("number", "money"):
        return "amount"
    if "currency" in words:
        return "currency"
    if words & _FUZZY_WORDS:
        return "fuzzy"
    return "text"


def is_missing(value: Any) -> bool:
    """``None``, an empty string or list, or a money dict without an amount."""
    if value is None:
        return True
    if isinstance(value, str | list | tuple | dict) and not value:
        return True
    return isinstance(value, Mapping) and "amount" in value and value["amount"] is None


def normalise_text(value: Any) -> str:
    """Case-folded, whitespace collapsed, surrounding punctuation stripped."""
    return " ".join(str(value).split()).casefold().strip(" .,;:")


def normalise_date(value: Any) -> str | None:
    """ISO ``YYYY-MM-DD`` (day-first for ambiguous numeric dates), ``None`` when unreadable."""
    return parse_date(str(value)) if not is_missing(value) else None


def normalise_amount(value: Any) -> float | None:
    """A number from a number, a money dict ``{"amount", "currency"}`` or text ("RM 9.00")."""
    if isinstance(value, Mapping):
        value = value.get("amount")
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return float(value) if math.isfinite(value) else None
    money = parse_money(str(value))
    if money is not None and isinstance(money.get("amount"), int | float):
        return float(money["amount"])  # type: ignore[arg-type]
    return parse_number(str(value))


def normalise_currency(value: Any) -> str | None:
    """An ISO 4217 code from a code or a symbol ("$" → USD, "€" → EUR, "eur" → EUR)."""
    if isinstance(value, Mapping):
        value = value.get("currency")
    if is_missing(value):
        return None
    text = str(value).strip()
    if text.upper() in CURRENCY_CODES:
        return text.upper()
    return CURRENCY_SYMBOLS.get(text, text.upper())


def fuzzy_equal(expected: Any, predicted: Any, threshold: float = FUZZY_THRESHOLD) -> bool:
    """Names and addresses: equal when similar enough, ignoring case, spacing and punctuation.

    Two readings are tried: difflib's ratio over the strings, and the same over their sorted
    words (a token-set style comparison, for words in another order); either ≥ ``threshold``.
    """
    a, b = _plain_words(expected), _plain_words(predicted)
    if not a or not b:
        return a == b
    if difflib.SequenceMatcher(None, " ".join(a), " ".join(b)).ratio() >= threshold:
        return True
    sorted_a, sorted_b = " ".join(sorted(a)), " ".join(sorted(b))
    return difflib.SequenceMatcher(None, sorted_a, sorted_b).ratio() >= threshold


def _plain_words(value: Any) -> list[str]:
    return re.findall(r"\w+", str(value).casefold())


def values_equal(expected: Any, predicted: Any, kind: Kind) -> bool:
    """Whether a predicted value matches the labelled one under the rules of ``kind``."""
    if is_missing(expected) or is_missing(predicted):
        return False
    if kind == "amount":
        a, b = normalise_amount(expected), normalise_amount(predicted)
        if a is not None and b is not None:
            return abs(a - b) <= AMOUNT_TOLERANCE + _TOLERANCE_EPSILON
    elif kind == "date":
        a_date, b_date = normalise_date(expected), normalise_date(predicted)
        if a_date is not None and b_date is not None:
            return a_date == b_date
    elif kind == "currency":
        return normalise_currency(expected) == normalise_currency(predicted)
    elif kind == "fuzzy":
        return fuzzy_equal(_as_text(expected), _as_text(predicted))
    return normalise_text(_as_text(expected)) == normalise_text(_as_text(predicted))


def _as_text(value: Any) -> Any:
    if isinstance(value, Mapping) and "amount" in value:
        return value["amount"]
    return value


def score_value(expected: Any, predicted: Any, kind: Kind) -> Counts:
    """Counts for one labelled value (an unlabelled one is never passed here)."""
    if is_missing(predicted):
        return Counts(fn=1)
    if values_equal(expected, predicted, kind):
        return Counts(tp=1)
    return Counts(fp=1, fn=1)


def item_similarity(
    expected: Mapping[str, Any], predicted: Mapping[str, Any], kinds: Mapping[str, Kind]
) -> float:
    """Share of the labelled item's keys that the predicted item gets right (0..1)."""
    keys = [key for key in kinds if not is_missing(expected.get(key))]
    if not keys:
        return 0.0
    hits = sum(values_equal(expected[key], predicted.get(key), kinds[key]) for key in keys)
    return hits / len(keys)


def match_items(
    expected: Sequence[Mapping[str, Any]],
    predicted: Sequence[Mapping[str, Any]],
    kinds: Mapping[str, Kind],
) -> list[tuple[int, int]]:
    """Pairs (labelled index, predicted index), most similar first, each item used once.

    Only pairs sharing at least one equal value are made: an item with nothing in common with
    any other is a miss (or a spurious item), not a wrong one.
    """
    candidates = []
    for i, truth in enumerate(expected):
        for j, guess in enumerate(predicted):
            similarity = item_similarity(truth, guess, kinds)
            if similarity > 0:
                candidates.append((-similarity, i, j))
    pairs: list[tuple[int, int]] = []
    used_truth: set[int] = set()
    used_guess: set[int] = set()
    for _, i, j in sorted(candidates):
        if i not in used_truth and j not in used_guess:
            pairs.append((i, j))
            used_truth.add(i)
            used_guess.add(j)
    return sorted(pairs)


def score_items(
    expected: Sequence[Mapping[str, Any]],
    predicted: Sequence[Mapping[str, Any]],
    kinds: Mapping[str, Kind],
) -> dict[str, Counts]:
    """Counts per item key for one document's labelled and predicted line items.

    Keys are those of ``kinds`` (the schema's item keys) that some labelled item uses; an item
    whose labelled keys are all outside them (e.g. a note line) is not an item to score.
    """
    return {
        key: counts
        for key, (counts, _) in score_items_in_detail(expected, predicted, kinds).items()
    }


def score_items_in_detail(
    expected: Sequence[Mapping[str, Any]],
    predicted: Sequence[Mapping[str, Any]],
    kinds: Mapping[str, Kind],
) -> dict[str, tuple[Counts, list[Mismatch]]]:
    """:func:`score_items`, with the mismatches behind each key's FP and FN."""
    truth_items = [item for item in expected if any(not is_missing(item.get(k)) for k in kinds)]
    labelled = {k for item in truth_items for k in kinds if not is_missing(item.get(k))}
    keys = [k for k in kinds if k in labelled] if truth_items else list(kinds)
    guesses = [item if isinstance(item, Mapping) else {} for item in predicted]
    scored: dict[str, tuple[Counts, list[Mismatch]]] = {key: (Counts(), []) for key in keys}

    def add(key: str, counts: Counts, mismatch: Mismatch) -> None:
        total_counts, mismatches = scored[key]
        scored[key] = (total_counts + counts, mismatches)
        if counts.fp or counts.fn:
            mismatches.append(mismatch)

    pairs = match_items(truth_items, guesses, {k: kinds[k] for k in keys})
    matched_truth = {i for i, _ in pairs}
    matched_guess = {j for _, j in pairs}
    for i, j in pairs:
        for key in keys:
            if not is_missing(truth_items[i].get(key)):
                expected_value, got = truth_items[i][key], guesses[j].get(key)
                counts = score_value(expected_value, got, kinds[key])
                add(key, counts, Mismatch(expected_value, got, i + 1))
    for i, item in enumerate(truth_items):
        if i not in matched_truth:
            for key in keys:
                if not is_missing(item.get(key)):
                    add(key, Counts(fn=1), Mismatch(item[key], None, i + 1))
    for j, item in enumerate(guesses):
        if j not in matched_guess:
            for key in keys:
                if not is_missing(item.get(key)):
                    add(key, Counts(fp=1), Mismatch(None, item[key], j + 1))
    return scored


def score_document(
    truth: Mapping[str, Any],
    predicted: Mapping[str, Any],
    schema: Schema,
    *,
    dataset: str = "",
    document: str = "",
) -> list[FieldScore]:
    """Scores of one document's labelled fields.

    ``truth`` is the ground truth's ``fields``, ``predicted`` the result already keyed by the
    ground truth's names (a failed document passes ``{}``: every labelled field is FN). Only the
    schema's fields are scored; array fields become one row per item key, ``name.key``.
    """
    scores = []
    for field in schema.fields:
        expected = truth.get(field.name)
        if field.name not in truth or expected is None:
            continue
        if field.type == "array":
            kinds = {sub.name: kind_of(sub) for sub in field.fields}
            guess = predicted.get(field.name)
            items = _as_items(expected)
            per_key = score_items_in_detail(items, _as_items(guess), kinds)
            for key, (counts, mismatches) in per_key.items():
                name = f"{field.name}.{key}"
                scores.append(
                    FieldScore(dataset, document, "line_items", name, counts, tuple(mismatches))
                )
        else:
            got = predicted.get(field.name)
            counts = score_value(expected, got, kind_of(field))
            wrong = (Mismatch(expected, got),) if counts.fp or counts.fn else ()
            scores.append(FieldScore(dataset, document, "header", field.name, counts, wrong))
    return scores


def _as_items(value: Any) -> list[Mapping[str, Any]]:
    if not isinstance(value, list | tuple):
        return []
    return [item if isinstance(item, Mapping) else {} for item in value]
