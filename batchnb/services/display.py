"""How public objects look in a notebook: short plain reprs and the HTML cards Jupyter shows.

The HTML is self-contained (inline styles, no script, no external resource), so it shows the
same in JupyterLab, Notebook 7, Voila and a saved page, offline. Text inherits the theme's
colour and backgrounds are translucent, so light and dark themes both read. Names are user
text: everything is escaped here, and only :class:`Html` built by this module goes in as is.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from batchnb.errors import NotFoundError

if TYPE_CHECKING:
    import pandas as pd

STATUSES = ("completed", "failed", "cancelled", "processing", "pending", "open")
"""Document statuses in the order a bar draws them, finished first (``open``: pending or
processing, as analytics counts them)."""

FINISHED = ("completed", "failed", "cancelled")

# Translucent, so each reads on a light and a dark background alike.
COLOURS = {
    "completed": "rgba(46, 160, 67, 0.85)",
    "completed_with_errors": "rgba(210, 153, 34, 0.85)",
    "failed": "rgba(218, 54, 51, 0.85)",
    "cancelled": "rgba(128, 128, 128, 0.6)",
    "expired": "rgba(128, 128, 128, 0.6)",
    "processing": "rgba(56, 139, 253, 0.85)",
    "pending": "rgba(128, 128, 128, 0.25)",
    "open": "rgba(128, 128, 128, 0.25)",
}
_CARD = (
    "display:inline-block;min-width:20em;max-width:56em;padding:0.5em 0.8em;"
    "border:1px solid rgba(128,128,128,0.35);border-radius:6px;"
    "background:rgba(128,128,128,0.06);color:inherit;font-size:inherit;line-height:1.45"
)
_TABLE = "border-collapse:collapse;margin:0.25em 0 0;color:inherit;background:transparent"
_CELL = "padding:0.1em 0.9em 0.1em 0;text-align:left;vertical-align:top;border:none"
_LABEL = f"{_CELL};font-weight:normal;opacity:0.7;white-space:nowrap"
# Jupyter stripes table rows with the theme's colours; a card's rows stay plain.
_PLAIN_ROW = "background:transparent"
MAX_TEXT = 60
"""Longest name a plain repr shows before cutting it short."""


class Html(str):
    """Markup made by this module: inserted as is, where any other value is escaped."""

    __slots__ = ()


def shorten(value: str, limit: int = MAX_TEXT) -> str:
    """``value`` cut to ``limit`` characters, with an ellipsis when cut."""
    return value if len(value) <= limit else value[: limit - 1] + "…"


_CREDENTIALS = re.compile(r"(?<=://)([^:/@]*):[^@/]*@")


def mask_url(url: str) -> str:
    """``url`` with any password replaced by ``***`` (``postgresql://me:***@host/db``)."""
    return _CREDENTIALS.sub(r"\1:***@", url)


def format_time(moment: datetime | None) -> str:
    """``2024-03-15 10:04:05 UTC``: to the second, in UTC (naive times are taken as UTC)."""
    if moment is None:
        return "-"
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return f"{moment:%Y-%m-%d %H:%M:%S} UTC"


def progress_text(counts: Mapping[str, int]) -> str:
    """``5/7 done, 1 failed``: documents finished out of all, then the failed and cancelled."""
    total = sum(counts.get(status, 0) for status in STATUSES)
    done = sum(counts.get(status, 0) for status in FINISHED)
    parts = [f"{done}/{total} done"]
    parts += [f"{counts[s]} {s}" for s in ("failed", "cancelled") if counts.get(s, 0)]
    return ", ".join(parts)


def breakdown_text(counts: Mapping[str, int]) -> str:
    """``3 completed, 1 failed, 2 pending``: every status that has documents."""
    parts = [f"{counts[s]} {s}" for s in STATUSES if counts.get(s, 0)]
    return ", ".join(parts) or "no documents"


def describe_or_fallback(kind: str, ident: int, build: Callable[[], str]) -> str:
    """``build()``, or ``Kind(id=N, ...)`` saying why not: a repr must never raise.

    Reprs read the database, which may be gone (a deleted row, a closed or moved workspace,
    a server down); the notebook should then still show what the object is.
    """
    try:
        return build()
    except NotFoundError:
        return f"{kind}(id={ident}, not found)"
    except Exception as exc:
        return f"{kind}(id={ident}, unavailable: {type(exc).__name__})"


def html_or_none(build: Callable[[], Html]) -> Html | None:
    """``build()``, or None when it fails: Jupyter then shows the plain repr instead."""
    try:
        return build()
    except Exception:
        # A failing _repr_html_ would print a traceback under the cell; None falls back.
        return None


def text(value: Any) -> Html:
    """``value`` as escaped HTML (markup from this module unchanged; times to the second)."""
    if isinstance(value, Html):
        return value
    if value is None:
        return Html("-")
    if isinstance(value, datetime):
        value = format_time(value)
    return Html(html.escape(str(value)))


def join(*parts: Any) -> Html:
    """The parts one after another, each escaped unless it is :class:`Html` already."""
    return Html("".join(text(part) for part in parts))


def note(value: Any) -> Html:
    """A line of secondary text (dimmed, in the theme's colour)."""
    return Html(f"<div style='opacity:0.7'>{text(value)}</div>")


def badge(status: str) -> Html:
    """A status as a small coloured pill."""
    colour = COLOURS.get(status, "rgba(128,128,128,0.25)")
    style = f"display:inline-block;padding:0 0.55em;border-radius:1em;background:{colour}"
    return Html(f"<span style='{style}'>{text(status)}</span>")


def status_bar(counts: Mapping[str, int], *, width: str = "16em") -> Html:
    """A bar of the documents per status, finished first, with the counts as its tooltip."""
    total = sum(counts.get(status, 0) for status in STATUSES)
    done = sum(counts.get(status, 0) for status in FINISHED)
    segments = "".join(
        f"<div style='width:{100 * counts[s] / total:.2f}%;background:{COLOURS[s]}'></div>"
        for s in STATUSES
        if total and counts.get(s, 0)
    )
    label = text(breakdown_text(counts))
    return Html(
        f"<div role='progressbar' aria-valuemin='0' aria-valuemax='{total}' "
        f"aria-valuenow='{done}' title='{label}' aria-label='{label}' "
        f"style='display:flex;width:{width};height:0.75em;border-radius:3px;overflow:hidden;"
        f"background:rgba(128,128,128,0.15);margin:0.2em 0'>{segments}</div>"
    )


def legend(counts: Mapping[str, int]) -> Html:
    """The counts per status, each with the colour it has in :func:`status_bar`."""
    items = []
    for status in STATUSES:
        if counts.get(status, 0):
            swatch = (
                "display:inline-block;width:0.7em;height:0.7em;border-radius:2px;"
                f"margin:0 0.25em 0 0.6em;vertical-align:baseline;background:{COLOURS[status]}"
            )
            items.append(f"<span style='{swatch}'></span>{counts[status]} {status}")
    return Html("".join(items) or "no documents")


def progress_html(counts: Mapping[str, int]) -> Html:
    """Bar, ``5/7 done`` and the legend: how a set of documents is getting on."""
    return join(
        status_bar(counts),
        progress_text(counts),
        Html(f" <span style='opacity:0.8'>{legend(counts)}</span>"),
    )


def table(columns: Sequence[str], rows: Iterable[Sequence[Any]], *, footer: str = "") -> Html:
    """A plain table of escaped cells, with an optional dimmed line under it."""
    head = "".join(f"<th style='{_LABEL}'>{text(column)}</th>" for column in columns)
    body = "".join(
        "<tr>" + "".join(f"<td style='{_CELL}'>{text(value)}</td>" for value in row) + "</tr>"
        for row in rows
    )
    return join(
        Html(
            f"<table style='{_TABLE}'><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
        ),
        note(footer) if footer else "",
    )


def frame_table(frame: pd.DataFrame, max_rows: int = 10, *, latest: bool = False) -> Html:
    """A DataFrame's first ``max_rows`` rows (``latest``: its last) as a :func:`table`."""
    if frame.empty:
        return note("none")
    shown = (frame.tail(max_rows) if latest else frame.head(max_rows)).astype(object)
    shown = shown.where(shown.notna(), None)
    footer = ""
    if len(shown) < len(frame):
        footer = f"the {'last' if latest else 'first'} {len(shown)} of {len(frame)} rows"
    return table(
        [str(c) for c in shown.columns], shown.itertuples(index=False, name=None), footer=footer
    )


def section(title: Any, body: Any) -> Html:
    """A folded section: its title shows, a click opens it (``<details>``, no script)."""
    return Html(
        "<details style='margin-top:0.3em'><summary style='cursor:pointer'>"
        f"{text(title)}</summary>{text(body)}</details>"
    )


def card(
    title: Any,
    facts: Sequence[tuple[str, Any]],
    *,
    status: str | None = None,
    after: Any = "",
) -> Html:
    """A box with a title, a status pill, a column of labelled facts, then ``after``."""
    pill = f" {badge(status)}" if status else ""
    rows = "".join(
        f"<tr style='{_PLAIN_ROW}'><th style='{_LABEL}'>{text(label)}</th>"
        f"<td style='{_CELL}'>{text(value)}</td></tr>"
        for label, value in facts
    )
    return Html(
        f"<div style='{_CARD}'><div style='font-weight:600'>{text(title)}{pill}</div>"
        f"<table style='{_TABLE}'>{rows}</table>{text(after)}</div>"
    )


def batch_card(
    batch_id: int,
    name: str,
    status: str,
    counts: Mapping[str, int],
    *,
    created_at: datetime | None,
    owner: str,
    extractor: str,
    refused: Sequence[tuple[str, str]] = (),
) -> Html:
    """The card of one batch (a :class:`Batch` handle and a listed :class:`BatchSummary`)."""
    after = ""
    if refused:
        after = Html(
            f"<div style='margin-top:0.4em'>{len(refused)} refused at intake:</div>"
            + table(("file", "reason"), refused)
        )
    return card(
        f"Batch {batch_id} · {name}",
        [
            ("documents", progress_html(counts)),
            ("created", created_at),
            ("owner", owner),
            ("extractor", extractor),
        ],
        status=status,
        after=after,
    )
