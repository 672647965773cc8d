"""Small views of the prompt editor: a schema as a table, a prompt's length against its limit,
an error line, and a debouncer that waits for typing to pause.

Kept apart from :mod:`batchnb.ui.prompt_editor` so the HTML can be tested as text. Everything a
user typed is escaped.
"""

from __future__ import annotations

import asyncio
import html
from collections.abc import Callable

from batchnb.extract.schema import MAX_PROMPT_CHARS, Field, Schema

_ERROR_STYLE = "color:rgb(218,54,51)"
_DIM = "opacity:0.7"
_CELL = "padding:0.05em 0.9em 0.05em 0;text-align:left;vertical-align:top"


def schema_html(schema: Schema) -> str:
    """The fields a schema names, with their types; an array lists its columns."""
    rows = "".join(_field_row(field) for field in schema.fields)
    return (
        f"<div style='{_DIM}'>{len(schema.fields)} field{'s' if len(schema.fields) != 1 else ''}"
        "</div><table style='border-collapse:collapse'><thead><tr>"
        f"<th style='{_CELL}'>field</th><th style='{_CELL}'>type</th>"
        f"<th style='{_CELL}'>from the words</th></tr></thead><tbody>{rows}</tbody></table>"
    )


def _field_row(field: Field) -> str:
    kind = html.escape(field.type)
    if field.type == "array":
        columns = ", ".join(
            f"{html.escape(sub.name)} <span style='{_DIM}'>({html.escape(sub.type)})</span>"
            for sub in field.fields
        )
        kind = f"array of rows: {columns}"
    description = f" — {html.escape(field.description)}" if field.description else ""
    return (
        f"<tr><td style='{_CELL}'><code>{html.escape(field.name)}</code></td>"
        f"<td style='{_CELL}'>{kind}</td>"
        f"<td style='{_CELL};{_DIM}'>{html.escape(field.label)}{description}</td></tr>"
    )


def counter_html(length: int, limit: int = MAX_PROMPT_CHARS) -> str:
    """``123 / 4,000 characters``; past the limit in red, saying by how much."""
    if length > limit:
        return (
            f"<span style='{_ERROR_STYLE}'>{length:,} / {limit:,} characters: "
            f"{length - limit:,} over the limit</span>"
        )
    return f"<span style='{_DIM}'>{length:,} / {limit:,} characters</span>"


def error_html(message: str) -> str:
    """One or more problems as red lines (empty when there is none)."""
    if not message:
        return ""
    lines = "".join(f"<div>{html.escape(line)}</div>" for line in message.splitlines())
    return f"<div role='alert' style='{_ERROR_STYLE}'>{lines}</div>"


def note_html(message: str) -> str:
    """A line of secondary text."""
    return f"<div style='{_DIM}'>{html.escape(message)}</div>"


class Debounce:
    """Call ``action`` once changes pause for ``delay`` seconds.

    In a kernel (an asyncio loop runs the widget's handlers) each call restarts a timer on that
    loop, so typing sends one update, not one per key. Without a running loop (a script, a
    test) the action runs at once, so the state is always current there.
    """

    def __init__(self, action: Callable[[], None], delay: float = 0.25) -> None:
        self.action = action
        self.delay = delay
        self._pending: asyncio.TimerHandle | None = None

    def __call__(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.action()
            return
        if self._pending is not None:
            self._pending.cancel()
        self._pending = loop.call_later(self.delay, self.flush)

    def flush(self) -> None:
        """Run the action now (and drop a pending call)."""
        if self._pending is not None:
            self._pending.cancel()
            self._pending = None
        self.action()
