"""Document types without a model: weighted keyword evidence in English, German, French, Dutch.

:func:`classify` tells an invoice from a receipt, a purchase order, a contract, a bank statement
or a résumé so that the "auto" strategy can pick that type's prompt. It is deterministic, needs no
network and costs well under a millisecond per page: the text is split into words once and every
known phrase is found by dictionary look-ups in one pass.

Scoring
-------
Each phrase carries a weight per type it hints at (a phrase may hint at several: "VAT" is
strong for invoices and weak for receipts). A type's score is the sum over its phrases of

    weight * (1 + 0.5 * (min(count, 5) - 1)) + heading bonus

so repeats count, with diminishing returns and a cap, and a phrase found in the first
:data:`HEADING_CHARS` characters (where titles such as "INVOICE" or "Kontoauszug" sit) counts its
weight once more. Text and phrases are compared as lower-case words, so punctuation and line breaks
between words do not matter ("P.O." is "p o"); where one phrase starts another ("invoice number"
and "invoice"), the longer one is matched.

German writes its terms as compounds ("Handelsrechnung", "Mietrechnung", "Rechnungssumme"), so
a word that starts or ends with one of the :data:`COMPOUND_STEMS` counts as that stem.

Two kinds of evidence do not come from one phrase, because the same words name both types:

* A **payment at the till**: a tender (cash, card) and change given back both printed, or a
  time of day printed (a sale's timestamp): receipts do both, invoices (which ask for a payment
  later) rarely. Till receipts are also often titled "tax invoice" (a GST/VAT rule in many
  countries) or print an "invoice no", so "invoice" words alone do not outweigh a till's signs.
* Order words ("Bestellung", "commande", "order date") are weak purchase-order evidence: every
  invoice cites the order it bills ("Rechnung gemäß Bestellung vom ...").

Confidence
----------
``confidence = exp(top / T) / sum(exp(score / T) for every type)`` with ``T =``
:data:`TEMPERATURE`, over all seven types, ``other`` scoring 0. It is the softmax share of the
winning type: close to 1 when one type has much more evidence than every other, about 0.5 when
two types tie, and low when the only evidence is a stray weak word (one hit of weight 1 gives
0.22). A document where nothing scores is ``other`` with confidence ``1/7``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from batchnb.documents.parsed import ParsedDocument

DOCUMENT_TYPES: tuple[str, ...] = (
    "invoice",
    "receipt",
    "purchase_order",
    "contract",
    "bank_statement",
    "resume",
    "other",
)
"""Types :func:`classify` may return; ``other`` means no known type had any evidence."""

OTHER = "other"
TEMPERATURE = 2.0
"""Softmax temperature: higher values spread confidence more evenly across types."""
HEADING_CHARS = 300
"""Phrases starting within this many characters of the text count their weight once more."""
MAX_PAGES = 5
"""Only the first pages are read: a document's type shows at its start, and long contracts
stay cheap to classify."""
_MAX_REPEATS = 5

COMPOUND_STEMS: tuple[str, ...] = ("rechnung", "gutschrift", "factuur", "quittung")
"""Phrases that also count inside a longer word starting or ending with them (German and Dutch
compounds: "Handelsrechnung", "Rechnungssumme", "Factuuradres")."""
TILL_PAYMENT_WEIGHT = 3.0
"""Receipt evidence for a tender and the change given back, both printed."""
TIME_OF_DAY_WEIGHT = 1.5
"""Receipt evidence for a printed time of day (counted once): a sale's timestamp."""
_TENDERS = frozenset(
    {("cash",), ("cash", "received"), ("tendered",), ("visa",), ("mastercard",)}
    | {("card", "payment"), ("bar",), ("espèces",)}
)
_CHANGE = frozenset(
    {("change",), ("change", "due"), ("rückgeld",), ("rendu",), ("monnaie", "rendue")}
)
_TIME_OF_DAY_RE = re.compile(r"(?<![\d:])(?:[01]?\d|2[0-3]):[0-5]\d(?::[0-5]\d)?(?![\d:])")
_SHORTEST_STEM = min(len(stem) for stem in COMPOUND_STEMS)
_COMPOUND_RE = re.compile(f"^(?:{'|'.join(COMPOUND_STEMS)})|(?:{'|'.join(COMPOUND_STEMS)})$")

# Weights: 3-4 for a phrase that nearly names the type (a title, "opening balance"), 2 for strong
# hints, 1 or less for words that other documents use too.
_EVIDENCE: dict[str, dict[str, float]] = {
    "invoice": {
        "invoice": 3,
        "tax invoice": 2,
        "invoice number": 4,
        "invoice no": 4,
        "invoice date": 3,
        "invoice #": 4,
        "due date": 2,
        "payment due": 2,
        "due upon receipt": 2,
        "balance due": 2,
        "amount due": 2,
        "total due": 1.5,
        "bill to": 2,
        "billed to": 2,
        "payment terms": 1.5,
        "vat": 1,
        "vat number": 1.5,
        "subtotal": 0.5,
        "iban": 1,
        "bic": 0.5,
        "rechnung": 3,
        "gutschrift": 3,
        "rechnungsnummer": 4,
        "rechnungsdatum": 3,
        "fälligkeitsdatum": 2,
        "zahlungsziel": 2,
        "rechnungsempfänger": 2,
        "mwst": 1,
        "ust-idnr": 1.5,
        "leistungsempfänger": 2,
        "leistungsdatum": 2,
        "zahlungsbedingungen": 1.5,
        "zahlbetrag": 1.5,
        "fälligkeit": 1.5,
        "facture": 3,
        "numéro de facture": 4,
        "date de facture": 3,
        "date d'échéance": 2,
        "échéance": 1.5,
        "facturé à": 2,
        "tva": 1,
        "factuur": 3,
        "factuurnummer": 4,
        "factuurdatum": 3,
        "vervaldatum": 2,
        "btw": 1,
    },
    "receipt": {
        "receipt": 3,
        "sales receipt": 4,
        "tax invoice": 1,
        "simplified tax invoice": 4,
        "simplified invoice": 4,
        "cash bill": 3,
        "cash sale": 3,
        "cash": 1,
        "cash received": 2,
        "tendered": 2,
        "change": 1,
        "change due": 2,
        "rounding": 1.5,
        "item count": 2,
        "total qty": 1.5,
        "thank you": 1,
        "thank you for shopping": 2.5,
        "please come again": 2.5,
        "not returnable": 2.5,
        "not refundable": 2,
        "cashier": 2,
        "register": 1,
        "card payment": 1,
        "visa": 0.5,
        "mastercard": 0.5,
        "vat": 0.5,
        "kassenbon": 4,
        "kassabon": 4,
        "kassenzettel": 4,
        "quittung": 3,
        "beleg": 1.5,
        "bar": 0.5,
        "rückgeld": 2,
        "vielen dank": 1,
        "kasse": 1.5,
        "reçu": 3,
        "ticket": 2,
        "ticket de caisse": 4,
        "espèces": 1,
        "rendu": 1.5,
        "monnaie rendue": 2,
        "merci": 1,
        "caisse": 1.5,
    },
    "purchase_order": {
        "purchase order": 4,
        "po number": 3,
        "po no": 3,
        "po #": 3,
        "p.o.": 2,
        "order date": 1.5,
        "delivery date": 1,
        "ship to": 1.5,
        "requested by": 1,
        "vendor": 1,
        "supplier": 0.5,
        "bestellung": 1.5,
        "bestellnummer": 3,
        "bestelldatum": 2,
        "lieferdatum": 1,
        "lieferant": 0.5,
        "lieferadresse": 1,
        "bon de commande": 4,
        "commande": 1,
        "numéro de commande": 3,
        "date de commande": 2,
        "date de livraison": 1,
        "fournisseur": 1,
    },
    "contract": {
        "agreement": 3,
        "contract": 3,
        "party": 1.5,
        "parties": 2,
        "hereinafter": 3,
        "hereby": 1.5,
        "whereas": 2.5,
        "terms and conditions": 2,
        "governing law": 2.5,
        "termination": 1.5,
        "in witness whereof": 3,
        "effective date": 1.5,
        "signature": 0.5,
        "vertrag": 3,
        "vertragsparteien": 3,
        "vereinbarung": 2,
        "nachfolgend": 2,
        "kündigung": 1.5,
        "gerichtsstand": 2.5,
        "allgemeine geschäftsbedingungen": 2,
        "contrat": 3,
        "les parties": 2.5,
        "ci-après": 3,
        "conditions générales": 2,
        "résiliation": 1.5,
        "droit applicable": 2.5,
    },
    "bank_statement": {
        "statement": 2,
        "bank statement": 4,
        "account statement": 4,
        "statement period": 3,
        "opening balance": 4,
        "closing balance": 4,
        "balance brought forward": 3,
        "iban": 1,
        "bic": 0.5,
        "account number": 1,
        "sort code": 2,
        "transactions": 1,
        "withdrawal": 1.5,
        "deposit": 1,
        "kontoauszug": 4,
        "anfangssaldo": 4,
        "endsaldo": 4,
        "alter kontostand": 4,
        "neuer kontostand": 4,
        "kontostand": 2,
        "buchungstag": 2,
        "relevé": 2.5,
        "releve": 2,
        "relevé de compte": 4,
        "solde initial": 4,
        "solde final": 4,
        "ancien solde": 4,
        "nouveau solde": 4,
        "solde": 1.5,
    },
    "resume": {
        "curriculum vitae": 4,
        "cv": 2,
        "resume": 2,
        "résumé": 2,
        "experience": 1.5,
        "work experience": 3,
        "professional experience": 3,
        "education": 2,
        "skills": 2,
        "languages": 1,
        "references": 1,
        "lebenslauf": 4,
        "berufserfahrung": 3,
        "ausbildung": 2,
        "kenntnisse": 1.5,
        "sprachen": 1,
        "expérience professionnelle": 3,
        "expérience": 1.5,
        "formation": 1.5,
        "compétences": 2,
        "langues": 1,
    },
}


@dataclass(frozen=True)
class Classification:
    """The type of a document, how sure the classifier is, and every type's raw score.

    Parameters
    ----------
    type:
        One of :data:`DOCUMENT_TYPES`.
    confidence:
        0..1, the softmax share of the winning type (see the module docstring).
    scores:
        Type → summed evidence weight (``other`` is always 0); useful to see why.
    """

    type: str
    confidence: float
    scores: Mapping[str, float]


_TOKEN_RE = re.compile(r"\w+|#")
Hints = tuple[tuple[str, float], ...]


def _tokens(text: str) -> list[str]:
    return _TOKEN_RE.findall(text.lower())


def _build() -> dict[str, tuple[tuple[tuple[str, ...], Hints], ...]]:
    """First word → the phrases starting with it (longest first) and their (type, weight) hints.

    Matching word tuples rather than one big regular expression keeps a page under a millisecond:
    an alternation of a few hundred phrases is tried at every character.
    """
    table: dict[tuple[str, ...], list[tuple[str, float]]] = {}
    for doc_type, phrases in _EVIDENCE.items():
        for phrase, weight in phrases.items():
            table.setdefault(tuple(_tokens(phrase)), []).append((doc_type, float(weight)))
    by_first: dict[str, list[tuple[tuple[str, ...], Hints]]] = {}
    for words, hints in table.items():
        by_first.setdefault(words[0], []).append((words, tuple(hints)))
    return {
        first: tuple(sorted(entries, key=lambda e: (-len(e[0]), e[0])))
        for first, entries in by_first.items()
    }


_PHRASES = _build()
_STEM_HINTS: dict[str, Hints] = {
    stem: tuple(
        (doc_type, float(phrases[stem]))
        for doc_type, phrases in _EVIDENCE.items()
        if stem in phrases
    )
    for stem in COMPOUND_STEMS
}


def _match(words: list[str], position: int) -> tuple[tuple[str, ...], Hints] | None:
    """The longest phrase starting at ``words[position]``, else a compound of a stem."""
    word = words[position]
    for phrase, phrase_hints in _PHRASES.get(word, ()):
        if tuple(words[position : position + len(phrase)]) == phrase:
            return phrase, phrase_hints
    compound = _COMPOUND_RE.search(word) if len(word) > _SHORTEST_STEM else None
    if compound is None:
        return None
    return (compound.group(),), _STEM_HINTS[compound.group()]


def score_text(text: str) -> dict[str, float]:
    """Evidence score per type for ``text`` (``other`` is 0), as described in the module doc."""
    words = _tokens(text)
    heading_words = len(_tokens(text[:HEADING_CHARS]))
    counts: dict[tuple[str, ...], int] = {}
    hints: dict[tuple[str, ...], Hints] = {}
    in_heading: set[tuple[str, ...]] = set()
    position = 0
    while position < len(words):
        found = _match(words, position)
        if found is None:
            position += 1
            continue
        phrase, phrase_hints = found
        counts[phrase] = counts.get(phrase, 0) + 1
        hints[phrase] = phrase_hints
        if position < heading_words:
            in_heading.add(phrase)
        position += len(phrase)
    scores = dict.fromkeys(DOCUMENT_TYPES, 0.0)
    for phrase, count in counts.items():
        repeat = 1 + 0.5 * (min(count, _MAX_REPEATS) - 1)
        for doc_type, weight in hints[phrase]:
            scores[doc_type] += weight * repeat + (weight if phrase in in_heading else 0.0)
    if not _TENDERS.isdisjoint(counts) and not _CHANGE.isdisjoint(counts):
        scores["receipt"] += TILL_PAYMENT_WEIGHT
    if _TIME_OF_DAY_RE.search(text):
        scores["receipt"] += TIME_OF_DAY_WEIGHT
    return scores


def classify_text(text: str) -> Classification:
    """Classify plain text; see :func:`classify`."""
    scores = score_text(text)
    # Ties go to the type listed first in DOCUMENT_TYPES, so the result never depends on order.
    best = max(DOCUMENT_TYPES, key=lambda t: (scores[t], -DOCUMENT_TYPES.index(t)))
    if scores[best] <= 0.0:
        best = OTHER
    top = scores[best]
    denominator = sum(math.exp((score - top) / TEMPERATURE) for score in scores.values())
    return Classification(
        type=best,
        confidence=round(1.0 / denominator, 4),
        scores=MappingProxyType({t: round(s, 3) for t, s in scores.items()}),
    )


def classify(document: ParsedDocument) -> Classification:
    """The document's type among :data:`DOCUMENT_TYPES`, with a confidence in 0..1.

    Reads the first :data:`MAX_PAGES` pages. ``other`` when no phrase of any type is found.
    """
    text = "\n".join(page.text for page in document.pages[:MAX_PAGES])
    return classify_text(text)
