"""In-app help: a collapsible "?" panel with a short how-to per component and a link to its docs.

:class:`HelpPanel` shows one topic of :data:`TOPICS` (``HelpPanel("analytics")``); an app puts
it above the component it explains. Widgets embed the same text through :func:`help_html`, and
a widget class gains a ``help()`` method by inheriting :class:`Helpful` and naming its topic,
and :func:`with_help` puts the panel above any widget (``with_help(BatchWizard(), "wizard")``).

Links point at the topic's page on the documentation site (the mkdocs build of ``docs/``) named
by the ``docs_url`` setting (``BATCHNB_DOCS_URL``; ``batchnb app --docs-url``), by
:func:`set_docs_url`, or by ``docs_url=``. Without a site the panel names the docs page
without a link: a relative link would lead nowhere from a notebook's folder or a Voila page.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Any, ClassVar

import anywidget
import ipywidgets as widgets
import traitlets

from batchnb.config import load_settings
from batchnb.ui.assets import asset

__all__ = [
    "TOPICS",
    "HelpPanel",
    "HelpTopic",
    "Helpful",
    "help_html",
    "set_docs_url",
    "with_help",
]


@dataclass(frozen=True)
class HelpTopic:
    """One component's help: a title, what it is for, how-tos, and its docs page."""

    title: str
    summary: str
    steps: tuple[str, ...]
    page: str
    """A file of ``docs/``, optionally with an anchor: ``"analytics.md#in-a-notebook"``."""


TOPICS: dict[str, HelpTopic] = {
    "dropzone": HelpTopic(
        "Adding files",
        "Drop files on the area, or pick them; they upload in chunks and resume after a break.",
        (
            "Drag files (or a whole selection) onto the dashed area, or click Choose files.",
            "Files already on the server: type a path, folder or glob in the picker, then Add.",
            "Each file is checked against the plan before any byte moves; refusals say why.",
            "A file stopped half way resumes where it stopped when you add it again.",
        ),
        "notebook.md",
    ),
    "prompts": HelpTopic(
        "Writing prompts",
        "Say in plain words what to extract; the schema it becomes is shown as you type.",
        (
            "List the fields, separated by commas: invoice number, date, total.",
            "Nested lists: line items (description, quantity, unit price).",
            "Per document: give a file its own prompt; Auto: classify first, one prompt per type.",
            "Preview runs one file now, in the kernel, and marks where each value was found.",
        ),
        "notebook.md",
    ),
    "wizard": HelpTopic(
        "New batch",
        "Files, then prompts, then a review; submit and follow the batch's progress.",
        (
            "Next is enabled once the step is complete; its reason is shown otherwise.",
            "The review lists the files and the prompt strategy before anything is queued.",
            "After submitting, the wizard becomes the batch's progress panel.",
        ),
        "notebook.md",
    ),
    "progress": HelpTopic(
        "Batch progress",
        "Live counts, rate and time left of one batch; it keeps updating while cells run.",
        (
            "A worker must run: start one with `batchnb.start_worker()` or `batchnb worker`.",
            "Failed documents are listed with their error; retry them from the batch manager.",
            "Cancel stops the documents not yet started; finished results are kept.",
        ),
        "notebook.md",
    ),
    "manager": HelpTopic(
        "Managing batches",
        "Find batches again, and export, retry, cancel or delete one or many at once.",
        (
            "Filter by status, date and failures, search names and file names, sort any column.",
            "Select rows to act on them together; each action asks for confirmation first.",
            "Only the owner (or an admin) may change a batch; a refusal changes nothing.",
        ),
        "managing.md",
    ),
    "results": HelpTopic(
        "Results and review",
        "Check what was extracted and why, correct values and mark documents reviewed.",
        (
            "Failed documents show their error; flagged and low-confidence values are marked.",
            "Open a document to see each value's evidence highlighted on its page.",
            "Corrections are kept with who made them; exports use them unless asked not to.",
        ),
        "results-view.md",
    ),
    "analytics": HelpTopic(
        "Analytics",
        "How the system performs: volumes, success rate, processing times and failures.",
        (
            "Pick a period with the dates or a preset; the cards and charts follow.",
            "Hover a bar or a slice to read its value.",
            "Admins may choose a user (empty: everyone); others see their own documents.",
            "Download the period as an Excel workbook or a self-contained HTML page.",
        ),
        "analytics.md#in-a-notebook",
    ),
    "magics": HelpTopic(
        "Magics",
        "Short commands in a cell: `%load_ext batchnb`, then `%batchnb` and `%%extract`.",
        (
            "`%batchnb status [BATCH]`, `%batchnb list`, `%batchnb health`: cards as in Python.",
            "`%batchnb worker start` and `%batchnb worker stop`: a worker inside this kernel.",
            "`%%extract PROMPT`, then file paths or text in the cell: a DataFrame, at once.",
        ),
        "magics.md",
    ),
}

_docs_url: str | None = None


def set_docs_url(url: str | None) -> None:
    """Point every help link at the documentation site at ``url`` (``None``: back to the
    ``docs_url`` setting)."""
    global _docs_url
    _docs_url = url.rstrip("/") if url else None


def _topic(name: str) -> HelpTopic:
    try:
        return TOPICS[name]
    except KeyError:
        known = ", ".join(sorted(TOPICS))
        raise ValueError(f"no help topic {name!r}; choose one of: {known}") from None


def docs_link(topic: str, docs_url: str | None = None) -> str | None:
    """The URL of ``topic``'s page on the documentation site at ``docs_url`` (default: what
    :func:`set_docs_url` set, else the ``docs_url`` setting); ``None`` without a site.

    The site is the mkdocs build of ``docs/``: page ``analytics.md#in-a-notebook`` is at
    ``<site>/analytics/#in-a-notebook``.
    """
    base = docs_url or _docs_url or load_settings().docs_url
    if not base:
        return None
    page, _, anchor = _topic(topic).page.partition("#")
    return f"{base.rstrip('/')}/{page.removesuffix('.md')}/" + (f"#{anchor}" if anchor else "")


def _text(words: str) -> str:
    """Escaped text; words between backticks become code (commands, names)."""
    parts = html.escape(words).split("`")
    return "".join(
        f"<code>{part}</code>" if index % 2 else part for index, part in enumerate(parts)
    )


def help_html(topic: str, docs_url: str | None = None) -> str:
    """The body of a help panel: summary, how-tos and the docs link, as escaped HTML."""
    found = _topic(topic)
    steps = "".join(f"<li>{_text(step)}</li>" for step in found.steps)
    url = docs_link(topic, docs_url)
    page = html.escape(f"docs/{found.page.split('#')[0]}")
    more = (
        f"<a href='{html.escape(url, quote=True)}' target='_blank' rel='noopener'>{page}</a>"
        if url
        else f"<code>{page}</code>"
    )
    return (
        f"<p class='batchnb-help-summary'>{_text(found.summary)}</p>"
        f"<ul class='batchnb-help-steps'>{steps}</ul>"
        f"<p class='batchnb-help-more'>More in {more}</p>"
    )


class HelpPanel(anywidget.AnyWidget):
    """A collapsible "?" panel with the how-tos of one component and a link to its docs.

    Parameters
    ----------
    topic:
        A key of :data:`TOPICS`: dropzone, prompts, wizard, progress, manager, results,
        analytics or magics.
    docs_url:
        The documentation site's URL (default: what :func:`set_docs_url` set, else the
        ``docs_url`` setting; none: the page is named without a link).
    expanded:
        Whether the panel starts unfolded.

    Examples
    --------
    >>> HelpPanel("analytics")  # doctest: +SKIP
    """

    _esm = asset("help.js")
    _css = asset("help.css")

    topic = traitlets.Unicode().tag(sync=True)
    title = traitlets.Unicode().tag(sync=True)
    body = traitlets.Unicode().tag(sync=True)
    expanded = traitlets.Bool(False).tag(sync=True)

    def __init__(
        self, topic: str, *, docs_url: str | None = None, expanded: bool = False, **kwargs: Any
    ) -> None:
        found = _topic(topic)
        body = help_html(topic, docs_url)
        super().__init__(topic=topic, title=found.title, body=body, expanded=expanded, **kwargs)

    def __repr__(self) -> str:
        return f"HelpPanel({self.topic!r})"


class Helpful:
    """Gives a widget class a ``help()`` method: set ``help_topic`` to a key of :data:`TOPICS`."""

    help_topic: ClassVar[str] = ""

    def help(self, *, expanded: bool = True) -> HelpPanel:
        """The help panel of this component (unfolded), to display beside it."""
        return HelpPanel(self.help_topic, expanded=expanded)


def with_help(widget: widgets.Widget, topic: str, *, expanded: bool = False) -> widgets.VBox:
    """``widget`` with the "?" panel of ``topic`` above it, as an app shows a component."""
    box = widgets.VBox([HelpPanel(topic, expanded=expanded), widget])
    box.add_class("batchnb-with-help")
    return box
