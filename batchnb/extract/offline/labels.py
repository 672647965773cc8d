"""Which printed labels can introduce a field's value, and how to find them in a line.

A field is matched to a :class:`Concept` (invoice number, date, total, ...) from the words of
its label; the concept brings synonyms ("amount due", "balance due" for a total) and rules
that keep a label from matching the wrong thing ("total" right after "sub", "date" right after
"due"). :func:`label_variants` turns a field into the ordered list of labels to look for, each
with the confidence a match on it deserves.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from dataclasses import dataclass
from typing import Literal

from batchnb.extract.schema import Field
from batchnb.extract.words import fold, words_of

EXACT_CONFIDENCE = 0.9
"""A printed label containing every word of the user's own label."""
SYNONYM_CONFIDENCE = 0.75
"""A built-in synonym of the field's concept."""
HEAD_WORD_CONFIDENCE = 0.5
"""Only the last word of a multi-word label ("address" for "shipping address")."""

_IDENTIFIER_WORDS = frozenset(
    {"number", "no", "nr", "num", "id", "#", "code", "ref", "reference", "nummer", "numero"}
)
_GENERIC_WORDS = frozenset({"number", "no", "id", "name", "value", "the", "of", "amount", "date"})


@dataclass(frozen=True)
class Concept:
    """A kind of field that invoices and receipts print under well-known labels.

    Parameters
    ----------
    name:
        Identifier of the concept ("total").
    labels:
        Printed labels, lowercase.
    pick:
        Which occurrence wins when the same label appears several times: totals, subtotals
        and taxes are summed up last (after per-group subtotals), most other things come first.
    not_after, not_before:
        Words that disqualify a match when they come right before/after the label on the line.
    identifier:
        The value is a code with digits (INV-001), read as one token.
    fallback:
        A broader concept whose labels are tried when none of this one's are printed: an
        invoice without an "amount due" line is due its total.
    """

    name: str
    labels: tuple[str, ...]
    pick: Literal["first", "last"] = "first"
    not_after: frozenset[str] = frozenset()
    not_before: frozenset[str] = frozenset()
    identifier: bool = False
    fallback: str | None = None


CONCEPTS: dict[str, Concept] = {
    concept.name: concept
    for concept in (
        Concept(
            "invoice_number",
            (
                "invoice number", "invoice no", "invoice #", "invoice nr", "invoice num",
                "invoice id", "inv no", "inv #", "bill number", "bill no", "receipt number",
                "receipt no", "receipt #", "invoice",
                # German: "Rechnungs-Nr.", "Handelsrechnung (380) Nr.", "Beleg-Nr"
                "rechnungsnummer", "rechnungs nr", "rechnungsnr", "*rechnung nr", "*rechnung #",
                "belegnummer", "beleg nr", "rechnung",
                # French: "N° de facture", "Facture n°", "Avoir" (credit note)
                "numéro de facture", "no de facture", "facture no", "facture numéro", "facture",
                "avoir",
                # Dutch
                "factuurnummer", "factuur nr", "factuurnr", "factuur",
            ),
            identifier=True,
        ),
        Concept(
            "order_number",
            (
                "order number", "order no", "order #", "order id", "po number", "purchase order",
                "bestellnummer", "bestell nr", "auftragsnummer", "numéro de commande",
                "bon de commande", "ordernummer",
            ),
            identifier=True,
        ),
        Concept(
            "due_date",
            (
                "due date", "payment due", "date due", "due by", "pay by", "due",
                "fälligkeitsdatum", "fällig am", "fälligkeit", "zahlbar bis", "zahlbar",
                "zahlungsziel", "date d'échéance", "date limite de paiement", "échéance",
                "vervaldatum", "uiterste betaaldatum", "te betalen voor",
            ),
        ),
        Concept(
            "date",
            (
                "invoice date", "date of issue", "issue date", "date issued", "receipt date",
                "billing date", "issued", "dated", "date",
                "rechnungsdatum", "belegdatum", "beleg datum", "ausstellungsdatum", "datum",
                "date de facture", "date de facturation", "date d'émission", "factuurdatum",
            ),
            not_after=frozenset(
                {"due", "delivery", "order", "ship", "shipping", "expiry", "expiration", "birth"}
                | {"start", "end", "service", "payment", "check", "departure", "arrival"}
                | {"liefer", "leistungs", "bestell", "lieferschein", "auftrag"}
            ),
            not_before=frozenset({"d", "echeance", "limite"}),
        ),
        Concept(
            "subtotal",
            (
                "subtotal", "sub total", "sub-total", "net amount", "net total",
                "amount before tax",
                "nettobetrag", "summe netto", "nettosumme", "netto summe", "gesamt netto",
                "rechnungssumme ohne ust", "summe ohne ust", "zwischensumme",
                "total ht", "montant ht", "sous-total", "total hors taxes",
                "subtotaal", "totaal excl btw", "exclusief btw", "bedrag excl btw",
            ),
            pick="last",
        ),
        Concept(
            "tax",
            (
                "total tax", "tax amount", "sales tax", "vat amount", "tax", "vat", "gst",
                "steuerbetrag", "mwst betrag", "ust betrag", "ust gesamt", "mwst gesamt",
                "umsatzsteuer", "mehrwertsteuer", "mwst", "ust",
                "total taxes", "total tva", "montant tva", "tva",
                "btw bedrag", "totaal btw", "btw",
            ),
            pick="last",
            not_after=frozenset(
                {"excl", "excluding", "incl", "including", "before", "after", "ohne", "inkl"}
                | {"exclusief", "inclusief", "hors", "zuzuglich"}
            ),
            not_before=frozenset(
                {"id", "number", "no", "rate", "reg", "registration", "code", "invoice", "exempt"}
                | {"idnr", "identnr", "nummer", "nr", "satz", "client", "intracommunautaire"}
                | {"numero", "befreit"}
            ),
        ),
        Concept(
            "total",
            (
                "grand total", "total due", "amount due", "balance due", "total amount",
                "invoice total", "amount payable", "total payable", "total",
                "gross total", "bruttosumme", "bruttobetrag", "gesamtbetrag", "rechnungsbetrag",
                "gesamtsumme", "endbetrag", "rechnungssumme", "summe",
                "total ttc", "montant ttc", "montant total",
                "totaal", "factuur totaal", "totaalbedrag", "totaal incl btw",
            ),
            pick="last",
            not_after=frozenset({"sub"}),
            not_before=frozenset(
                {"tax", "vat", "gst", "excl", "excluding", "before", "net", "items", "item"}
                | {"quantity", "qty", "weight", "discount", "savings", "hours", "pages"}
                | {"ht", "hors", "taxes", "tva", "netto", "ohne", "der", "excl", "btw", "mwst"}
            ),
        ),
        Concept(
            "amount_due",
            (
                "amount due", "balance due", "total due", "amount payable", "total payable",
                "zahlbetrag", "zu zahlen", "zu zahlender betrag", "offener betrag",
                "net à payer", "solde à payer", "reste à payer", "montant à payer",
                "te betalen", "openstaand bedrag",
            ),
            pick="last",
            fallback="total",
        ),
        Concept(
            "vat_id",
            (
                "vat id", "vat number", "vat no", "vat reg no", "vat registration number",
                "tax id", "ust id nr", "ust idnr", "ust id", "umsatzsteuer id",
                "umsatzsteuer identifikationsnummer", "ust identnr",
                "numéro de tva", "no tva", "tva intracommunautaire", "tva",
                "btw nummer", "btw nr", "btw id", "btw",
            ),
            identifier=True,
            not_before=frozenset({"client", "kunde", "klant", "customer", "buyer"}),
        ),
        Concept(
            "company",
            (
                "company name", "company", "vendor", "seller", "supplier", "sold by", "issuer",
                "merchant", "from", "verkäufer", "lieferant", "rechnungssteller",
                "vendeur", "fournisseur", "émetteur", "leverancier",
            ),
        ),
        Concept(
            "customer",
            (
                "bill to", "billed to", "customer name", "customer", "sold to",
                "rechnungsempfänger", "käufer", "kunde", "leistungsempfänger",
                "adresse de facturation", "facturé à", "client", "acheteur",
                "adresse de livraison", "klant", "factuuradres",
            ),
        ),
        Concept("address", ("address", "anschrift", "adresse", "adres")),
        Concept("currency", ("currency", "währung", "rechnungswährung", "devise", "valuta")),
    )
}  # fmt: skip

MONEY_CONCEPTS = frozenset({"total", "amount_due", "subtotal", "tax"})


@dataclass(frozen=True)
class LabelVariant:
    """One label to look for, its precompiled pattern and the confidence a match deserves."""

    text: str
    confidence: float
    pattern: re.Pattern[str]
    keyword: str
    """Folded lowercase first word: text without it cannot match (a cheap test before the regex)."""
    tier: int = 1
    """1 for the field's own labels, 0 for those of its concept's fallback: any own label wins."""
    specificity: int = dataclasses.field(init=False)
    """More words = more specific: "grand total" beats "total"."""
    compound: bool = dataclasses.field(init=False)
    """The label may end a compound word (``*rechnung nr``): it may start mid-word."""
    order: tuple[int, int] = dataclasses.field(init=False)
    """(tier, specificity): a value found with a higher one outranks it, whatever it finds."""
    other_words: tuple[str, ...] = dataclasses.field(init=False)
    """The label's words after the first: text without one of them cannot match either."""

    def __post_init__(self) -> None:
        # Worked out once: the label search asks for these for every variant of every document.
        object.__setattr__(self, "specificity", len(self.text.split()))
        object.__setattr__(self, "compound", self.text.startswith("*"))
        object.__setattr__(self, "order", (self.tier, self.specificity))
        object.__setattr__(self, "other_words", tuple(self.text.split()[1:]))


def concept_for(field: Field) -> Concept | None:
    """The concept a field stands for, judged from the words of its label, name and hint."""
    for text in (field.label, field.name.replace("_", " "), field.description):
        words = set(words_of(text))
        concept = _concept_from_words(words, field.type) if words else None
        if concept is not None:
            return concept
    return None


def _concept_from_words(words: set[str], field_type: str) -> Concept | None:
    identifier = bool(words & _IDENTIFIER_WORDS)
    money_like = field_type in ("money", "number")
    rules: tuple[tuple[str, bool], ...] = (
        ("invoice_number", bool(words & {"invoice", "inv", "bill", "receipt"}) and identifier),
        ("invoice_number", words == {"invoice"}),
        ("order_number", "order" in words and identifier),
        ("vat_id", bool(words & {"vat", "tax", "tva", "btw", "ust"}) and identifier),
        ("due_date", "due" in words and field_type in ("date", "string")),
        ("date", field_type == "date" and bool(words & {"date", "issued", "dated"})),
        (
            "subtotal",
            (money_like and bool(words & {"subtotal", "untaxed", "net"}))
            or {"sub", "total"} <= words
            or {"before", "tax"} <= words,
        ),
        ("tax", money_like and bool(words & {"tax", "vat", "gst"}) and not identifier),
        ("amount_due", money_like and bool(words & {"due", "payable"})),
        (
            "total",
            money_like
            and bool(words & {"total", "amount", "grand", "balance", "due", "payable", "sum"}),
        ),
        (
            "company",
            bool(words & {"company", "vendor", "seller", "supplier", "issuer", "merchant"})
            or words & {"store", "shop", "business"} == words,
        ),
        ("customer", bool(words & {"customer", "buyer", "client"})),
        ("address", "address" in words),
        ("currency", "currency" in words),
    )
    return next((CONCEPTS[name] for name, matched in rules if matched), None)


@functools.lru_cache(maxsize=1024)
def label_variants(field: Field) -> tuple[LabelVariant, ...]:
    """Labels to look for, most specific first: the user's label, its concept's synonyms,
    the field description, and for unknown multi-word labels their head word; then the labels
    of the concept's fallback, if it has one.

    Cached: every document of a batch asks for the same fields, and compiling the patterns
    cost more than searching with them.
    """
    user_label = " ".join(words_of(field.label.rstrip("?"))) or field.name.replace("_", " ")
    user_words = set(user_label.split())
    concept = concept_for(field)
    texts = [user_label, field.name.replace("_", " ")]
    if field.description and len(field.description.split()) <= 4:
        texts.append(" ".join(words_of(field.description)))
    if concept is not None:
        texts.extend(_label_text(label) for label in concept.labels)
    variants: dict[str, tuple[float, int]] = {}
    for text in texts:
        text = text.strip()
        if text and text not in variants:
            exact = user_words <= set(words_of(text)) or text == user_label
            variants[text] = (EXACT_CONFIDENCE if exact else SYNONYM_CONFIDENCE, 1)
    head = user_label.split()[-1] if user_label else ""
    if concept is None and len(user_words) > 1 and head not in _GENERIC_WORDS | variants.keys():
        variants[head] = (HEAD_WORD_CONFIDENCE, 1)
    if concept is not None and concept.fallback is not None:
        for label in CONCEPTS[concept.fallback].labels:
            variants.setdefault(_label_text(label), (SYNONYM_CONFIDENCE, 0))
    ordered = sorted(variants.items(), key=lambda item: (-item[1][1], -len(item[0].split())))
    return tuple(
        LabelVariant(text, conf, label_pattern(text), text.split()[0].lstrip("*"), tier)
        for text, (conf, tier) in ordered
    )


def _label_text(label: str) -> str:
    """A built-in label as words to match; a leading ``*`` (compound tail) is kept."""
    words = " ".join(words_of(label))
    return "*" + words if label.startswith("*") else words


def label_pattern(label: str) -> re.Pattern[str]:
    """Case-insensitive pattern for a label at a line start or after whitespace, to run on
    :func:`fold`-ed text.

    Words may be separated by spaces, dots, dashes, apostrophes or nothing ("Inv. No.",
    "sub-total", "d'échéance"), and by a short parenthesised code ("Rechnung (380) Nr."); the
    label must not run on into a longer word ("total" does not match "totally"). A label
    starting with ``*`` may also end a compound word ("*rechnung nr" in "Handelsrechnung Nr.").
    """
    compound = label.startswith("*")
    words = [re.escape(word) for word in label.lstrip("*").split()]
    body = r"\.?(?:[ \t]*[-_'/]?[ \t]*)(?:\([^()\n]{1,12}\)[ \t]*)?".join(words)
    prefix = r"[^\W\d_]*" if compound else ""
    return re.compile(
        r"(?:^|(?<=[\s(\[|*]))" + prefix + body + r"\.?(?![A-Za-z0-9])", re.IGNORECASE
    )


_LANGUAGE_WORDS: dict[str, frozenset[str]] = {
    "de": frozenset({"rechnung", "datum", "betrag", "summe", "mwst", "ust", "netto", "brutto"}),
    "fr": frozenset({"facture", "montant", "tva", "ttc", "ht", "echeance", "prix", "quantite"}),
    "nl": frozenset({"factuur", "btw", "bedrag", "totaal", "aantal", "prijs", "omschrijving"}),
}
DAY_FIRST_LANGUAGES = frozenset({"de", "fr", "nl"})
"""Languages whose documents write numeric dates day first (03/04/2024 is 3 April)."""


def document_language(text: str) -> str | None:
    """A cheap guess at a document's language from its label words: "de", "fr", "nl" or None.

    Two hits are needed, so one borrowed word ("Total HT" on an English page) does not count.
    """
    lower = fold(text[:20000]).lower()
    hits = {
        lang: sum(_word_count(lower, marker) for marker in markers if marker in lower)
        for lang, markers in _LANGUAGE_WORDS.items()
    }
    language, count = max(hits.items(), key=lambda item: item[1])
    return language if count >= 2 else None


def _word_count(text: str, word: str) -> int:
    """How often ``word`` (ASCII letters) is a whole word of ``text``'s runs of ``a-z``.

    The same count as among ``re.findall("[a-z]+", text)``, without splitting a whole page
    into words to look for a few.
    """
    count = 0
    position = text.find(word)
    while position >= 0:
        end = position + len(word)
        if (position == 0 or not "a" <= text[position - 1] <= "z") and (
            end == len(text) or not "a" <= text[end] <= "z"
        ):
            count += 1
        position = text.find(word, position + 1)
    return count


def neighbour_words(line: str, start: int, end: int) -> tuple[str, str]:
    """The word right before ``line[start:end]`` and the word right after it, lowercase.

    Give it the :func:`fold`-ed line so accented words compare with the concepts' word lists.
    """
    before = _WORD.findall(line, 0, start)
    after = _NEXT_WORD.search(line, end)
    return (before[-1].lower() if before else "", after.group().lower() if after else "")


_WORD = re.compile(r"[A-Za-z0-9]+")
_NEXT_WORD = re.compile(r"[A-Za-z0-9%]+")
