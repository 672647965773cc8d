"""How the review widgets write a value for a person, and read what a person typed.

The results grid and the document view both show values as text (money with its currency,
dates as ISO dates, yes/no) and offer the same text to edit; what is typed goes to
:func:`batchnb.services.review.correct_value` as it is, which types it against the field (and
says what would do when it cannot).
"""

from __future__ import annotations

import datetime as dt
import json
import math
from typing import Any

from batchnb.errors import BatchnbError


def shown(value: Any) -> str:
    """``value`` as text for a cell: money ``1,234.50 USD``, dates ``2024-03-15``, arrays
    ``4 items``, nothing as ``""``."""
    if _missing(value):
        return ""
    if isinstance(value, dict) and "amount" in value:
        amount = value.get("amount")
        number = f"{amount:,.2f}" if isinstance(amount, int | float) else str(amount or "")
        return f"{number} {value.get('currency') or ''}".strip()
    if isinstance(value, list):
        return f"{len(value)} item{'s' if len(value) != 1 else ''}"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dt.datetime | dt.date):
        return value.strftime("%Y-%m-%d")
    if hasattr(value, "isoformat"):  # pandas Timestamp
        return str(value.isoformat())[:10]
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else f"{value:g}"
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def editable_text(value: Any) -> str:
    """The text an edit box starts with: what :func:`correct_value` reads back as ``value``
    (money without thousands separators, ``EUR 12.50``)."""
    if _missing(value):
        return ""
    if isinstance(value, dict) and "amount" in value:
        amount = value.get("amount")
        currency = value.get("currency")
        number = f"{amount:.2f}" if isinstance(amount, int | float) else str(amount or "")
        return f"{currency} {number}" if currency else number
    return shown(value)


def percent(confidence: Any) -> str:
    """A confidence as ``90%``; ``""`` when there is none."""
    if not isinstance(confidence, int | float) or _missing(confidence):
        return ""
    return f"{confidence:.0%}"


def error_message(error: Exception) -> str:
    """What to show in place of an edit that was refused: the service's own message for our
    errors, the kind and message otherwise."""
    if isinstance(error, BatchnbError):
        return str(error)
    return f"{type(error).__name__}: {error}"


def _missing(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    try:
        import pandas as pd

        return bool(value is pd.NaT or (not isinstance(value, list | dict) and pd.isna(value)))
    except (TypeError, ValueError):
        return False
