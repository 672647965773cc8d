"""What the analytics dashboard draws: an :class:`~batchnb.AnalyticsSummary` as chart data.

:func:`dashboard_data` turns a summary into plain JSON (cards, and one list of points per chart)
that ``widgets/analytics.js`` draws as SVG. Every number is decided here, so a test reads the
figures a user sees without a browser; the browser only lays them out.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

import pandas as pd

from batchnb.services.analytics import AnalyticsSummary

__all__ = [
    "DOCUMENT_QUEUE",
    "MAX_DAYS",
    "STATUSES",
    "dashboard_data",
    "processing_times",
    "volume_points",
]

DOCUMENT_QUEUE = "batch_processing"
"""The queue whose items are documents: its p50/p95 are the cards' processing times."""
MAX_DAYS = 120
"""Longer periods are drawn per week, so that bars stay readable."""
STATUSES = ("completed", "failed", "cancelled", "open")
"""Document outcomes, in the order of the stacked bars and of the status chart."""


def _number(value: Any) -> float | None:
    """A JSON number: ``None`` for missing values (NaN), floats as they are."""
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return None
    return float(value)


def _day(value: Any) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return pd.Timestamp(value).date()


def volume_points(
    summary: AnalyticsSummary, first: date | None = None, last: date | None = None
) -> tuple[str, list[dict[str, Any]]]:
    """Documents per day (or per week past :data:`MAX_DAYS`) by outcome, gaps filled with zeros.

    ``first`` and ``last`` (inclusive) widen the axis to the period asked for; an open side
    ends at the first or last day with documents. Returns the unit (``"day"`` or ``"week"``)
    and one point per day or week: ``{"label", "created", "completed", "failed", ...}``.
    """
    daily = summary.volume_daily
    days = [_day(value) for value in daily["day"]]
    start = first or (min(days) if days else None)
    end = last or (max(days) if days else None)
    if start is None or end is None or end < start:
        return "day", []
    found = {
        day: {status: int(row[status]) for status in ("created", *STATUSES)}
        for day, (_, row) in zip(days, daily.iterrows(), strict=True)
    }
    unit = "day" if (end - start).days < MAX_DAYS else "week"
    if unit == "week":
        start -= timedelta(days=start.weekday())
    step = timedelta(days=1 if unit == "day" else 7)
    points: list[dict[str, Any]] = []
    moment = start
    while moment <= end:
        counts = dict.fromkeys(("created", *STATUSES), 0)
        for offset in range(step.days):
            for key, value in found.get(moment + timedelta(days=offset), {}).items():
                counts[key] += value
        points.append({"label": moment.isoformat(), **counts})
        moment += step
    return unit, points


def processing_times(summary: AnalyticsSummary, dimension: str) -> list[dict[str, Any]]:
    """p50, p95, mean (ms) and jobs per value of one timing dimension, in table order."""
    timing = summary.timing
    rows = timing[timing["dimension"] == dimension]
    return [
        {
            "label": str(row["value"]),
            "jobs": int(row["jobs"]),
            "p50": _number(row["p50_ms"]),
            "p95": _number(row["p95_ms"]),
            "mean": _number(row["mean_ms"]),
        }
        for row in rows.to_dict("records")
    ]


def _cards(summary: AnalyticsSummary) -> dict[str, Any]:
    documents = next(
        (row for row in processing_times(summary, "queue") if row["label"] == DOCUMENT_QUEUE),
        None,
    )
    return {
        "documents": summary.documents,
        "batches": summary.batches,
        "completed": summary.completed,
        "failed": summary.failed,
        "success_rate": summary.success_rate,
        "pages": summary.pages,
        "p50_ms": None if documents is None else documents["p50"],
        "p95_ms": None if documents is None else documents["p95"],
    }


def dashboard_data(
    summary: AnalyticsSummary, first: date | None = None, last: date | None = None
) -> dict[str, Any]:
    """Everything the dashboard shows of ``summary``, JSON-ready.

    Keys: ``cards`` (documents, batches, completed, failed, success_rate, pages, p50_ms,
    p95_ms), ``unit`` and ``volume`` (see :func:`volume_points`), ``status`` (one point per
    outcome), ``timing`` (per document type, see :func:`processing_times`) and ``failures``
    (kind, documents, share, example).
    """
    unit, volume = volume_points(summary, first, last)
    outcomes = {
        "completed": summary.completed,
        "failed": summary.failed,
        "cancelled": summary.cancelled,
        "open": summary.open,
    }
    failures = [
        {
            "label": str(row["kind"]),
            "documents": int(row["documents"]),
            "share": _number(row["share"]),
            "example": str(row["example"]),
        }
        for row in summary.failures.to_dict("records")
    ]
    return {
        "cards": _cards(summary),
        "unit": unit,
        "volume": volume,
        "status": [{"label": name, "documents": outcomes[name]} for name in STATUSES],
        "timing": processing_times(summary, "document_type"),
        "failures": failures,
    }
